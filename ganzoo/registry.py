"""Short model names -> the bundled folder in this package or a Hub repo id; `ganzoo.load`.

The table of known models is `catalog` (data, the bottom layer); this module loads them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled
from safetensors import SafetensorError

from ganzoo.catalog import (DEFAULT_DEBLUR_MODEL, DEFAULT_DENOISER, DEFAULT_SR_MODEL, KINDS, MODELS, PRETRAINED_DIR,
                            ModelEntry, fast_style_name, list_models)
from ganzoo.hub import CONFIG_NAME, GanzooModel, ModelLoadError
from ganzoo.models import MODEL_CLASSES

__all__ = ["DEFAULT_DEBLUR_MODEL", "DEFAULT_DENOISER", "DEFAULT_SR_MODEL", "KINDS", "MODELS", "PRETRAINED_DIR",
           "ModelEntry", "fast_style_name", "list_models", "load", "read_config", "resolve"]

MAX_CONFIG_BYTES = 1 << 20
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")  # org/name: a bare word is a (mistyped) short name


def resolve(name_or_path: str | os.PathLike) -> str:
    """A short name, a local folder or a Hub repo id -> a folder path or repo id to load from."""
    name = str(name_or_path)
    if name in MODELS:
        entry = MODELS[name]
        return str(entry.bundled_path) if entry.is_bundled else entry.repo_id
    if os.path.isdir(name):
        return name
    if os.path.exists(name) or name.startswith((".", "/", "~")) or not _REPO_ID.match(name):
        raise ModelLoadError(f"{name!r} is neither a ganzoo model name ({', '.join(MODELS)}), "
                             "a model folder, nor a Hub repo id")
    return name


def read_config(source: str, **download: Any) -> dict[str, Any]:
    """config.json of a folder or repo, size-checked before it is parsed."""
    path = os.path.join(source, CONFIG_NAME) if os.path.isdir(source) else \
        hf_hub_download(repo_id=source, filename=CONFIG_NAME, **download)
    if not os.path.isfile(path):
        raise ModelLoadError(f"{source}: no {CONFIG_NAME}")
    if os.path.getsize(path) > MAX_CONFIG_BYTES:
        raise ModelLoadError(f"{source}: {CONFIG_NAME} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ModelLoadError(f"{source}: {CONFIG_NAME} is not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{source}: {CONFIG_NAME} must hold a JSON object")
    return config


ModelClasses = type[GanzooModel] | tuple[type[GanzooModel], ...]


def load(name_or_path: str | os.PathLike, device: str = "cpu", allow_pickle: bool = False,
         expected: ModelClasses | None = None, **download: Any) -> GanzooModel:
    """Load any ganzoo model by short name, folder or Hub repo id (the class comes from config.json).

    Every failure (a bad name, config or weights file, a Hub or file-system error, a model of another
    class than `expected`) is a `ModelLoadError` that names the model.
    """
    try:
        model = _load(name_or_path, device, allow_pickle, **download)
    except ModelLoadError:
        raise
    except OSError as err:  # file system or Hub
        raise ModelLoadError(f"cannot load model {str(name_or_path)!r}: {err}") from None
    except (SafetensorError, RecursionError) as err:  # garbage weights; a config nested too deeply to parse
        raise ModelLoadError(f"cannot load model {str(name_or_path)!r}: {type(err).__name__}: {err}") from None
    if expected is not None and not isinstance(model, expected):
        names = " or ".join(cls.__name__ for cls in (expected if isinstance(expected, tuple) else (expected,)))
        raise ModelLoadError(f"{str(name_or_path)!r} is a {type(model).__name__}, not a {names}")
    return model


def _load(name_or_path: str | os.PathLike, device: str, allow_pickle: bool, **download: Any) -> GanzooModel:
    source = resolve(name_or_path)
    try:
        config = read_config(source, **download)
    except (HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled) as err:
        hint = " (its weights are not bundled in this install)" if str(name_or_path) in MODELS else ""
        raise ModelLoadError(f"{name_or_path}{hint}: could not fetch {source} from the Hugging Face Hub "
                             f"and it is not in the local cache: {type(err).__name__}") from err
    class_name = config.get("_class_name")
    if class_name not in MODEL_CLASSES:
        raise ModelLoadError(f"{source}: {CONFIG_NAME} names no ganzoo model class "
                             f"(_class_name={class_name!r}; known: {sorted(MODEL_CLASSES)})")
    return MODEL_CLASSES[class_name].from_pretrained(source, map_location=device, allow_pickle=allow_pickle,
                                                     **download)
