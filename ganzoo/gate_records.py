"""The bf16 quality gate's records, and the identity of weights they are keyed by.

`quality_gate` measures a model in fp32 and bf16 and writes its verdict to `bf16_gate.json` (GATE_FILE);
`pipelines.model_precision` reads it here (`bf16_passed`) to let "auto" pick bf16 only for weights that
passed. This module sits below both, so that neither imports the other.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["GATE_FILE", "bf16_passed", "weights_key", "weights_sha256"]

GATE_FILE = Path(__file__).with_name("bf16_gate.json")


def weights_key(model: nn.Module) -> tuple:
    """Changes whenever a weight or buffer of `model` is replaced or changed in place (cheap, no hashing)."""
    return tuple((t.data_ptr(), t._version) for t in [*model.parameters(), *model.buffers()])


_DIGESTS: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, str]] = weakref.WeakKeyDictionary()


def weights_sha256(model: nn.Module) -> str:
    """SHA-256 of every tensor of `model.state_dict()` (names, dtypes, shapes and bytes), cached per weights."""
    key = weights_key(model)
    cached = _DIGESTS.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    _DIGESTS[model] = (key, digest.hexdigest())
    return digest.hexdigest()


@cache
def _records(path: Path) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def bf16_passed(model: nn.Module, path: Path | None = None, device_type: str = "cpu") -> bool:
    """Whether the gate file holds a passing bf16 entry for exactly these weights on `device_type`
    ("cpu": the record itself; "cuda": its "cuda" entry, which must also not have been slower in bf16)."""
    digest = weights_sha256(model)
    entries = [record if device_type == "cpu" else record.get(device_type, {})
               for record in _records(path or GATE_FILE).values()]
    return any(entry.get("weights_sha256") == digest and entry.get("passed") is True
               and entry.get("bf16_speedup", 1.0) >= 1.0 for entry in entries)
