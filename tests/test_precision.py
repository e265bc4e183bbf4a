import json
from pathlib import Path

import pytest
import torch

from ganzoo import pipelines, precision, quality_gate


def test_auto_follows_native_support(monkeypatch):
    monkeypatch.setenv(precision.OVERRIDE_ENV, "1")
    assert precision.cpu_bf16_support().native
    assert precision.resolve_cpu_precision("auto") == "bf16"
    monkeypatch.setenv(precision.OVERRIDE_ENV, "0")
    assert not precision.cpu_bf16_support().native
    assert precision.resolve_cpu_precision("auto") == "fp32"


def test_explicit_choices_pass_through_and_bad_ones_are_refused(monkeypatch):
    monkeypatch.setenv(precision.OVERRIDE_ENV, "0")
    assert precision.resolve_cpu_precision("bf16") == "bf16"
    assert precision.resolve_cpu_precision("fp32") == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve_cpu_precision("fp16")
    monkeypatch.setenv(precision.OVERRIDE_ENV, "yes")
    with pytest.raises(ValueError, match="must be 0 or 1"):
        precision.cpu_bf16_support()


def test_detection_gives_a_reason(monkeypatch):
    monkeypatch.delenv(precision.OVERRIDE_ENV, raising=False)
    support = precision.cpu_bf16_support()
    assert isinstance(support.native, bool) and support.reason


CPU = torch.device("cpu")


def write_gate(path: Path, model: torch.nn.Module, passed: bool) -> Path:
    path.write_text(json.dumps({"tiny": {"weights_sha256": quality_gate.weights_sha256(model), "passed": passed}}))
    return path


def test_auto_is_fp32_without_native_bf16(monkeypatch, tiny_sr, tmp_path):
    monkeypatch.setenv(precision.OVERRIDE_ENV, "0")
    monkeypatch.setattr(quality_gate, "GATE_FILE", write_gate(tmp_path / "gate.json", tiny_sr, True))
    assert pipelines.model_precision(tiny_sr, CPU) == "fp32"
    assert pipelines.model_precision(tiny_sr, CPU, "bf16") == "bf16"  # explicit: emulated, slow, but asked for


def test_auto_is_bf16_on_a_bf16_cpu_only_for_weights_that_passed_the_gate(monkeypatch, tiny_sr, tmp_path):
    monkeypatch.setenv(precision.OVERRIDE_ENV, "1")
    monkeypatch.setattr(quality_gate, "GATE_FILE", tmp_path / "missing.json")
    assert pipelines.model_precision(tiny_sr, CPU) == "fp32"  # never gated
    monkeypatch.setattr(quality_gate, "GATE_FILE", write_gate(tmp_path / "failed.json", tiny_sr, False))
    assert pipelines.model_precision(tiny_sr, CPU) == "fp32"
    monkeypatch.setattr(quality_gate, "GATE_FILE", write_gate(tmp_path / "passed.json", tiny_sr, True))
    assert pipelines.model_precision(tiny_sr, CPU) == "bf16"
    assert pipelines.model_precision(tiny_sr, CPU, "fp32") == "fp32"
    assert pipelines.model_precision(tiny_sr, torch.device("meta")) == "fp32"  # unmeasured off the CPU
    with torch.no_grad():
        tiny_sr.tail.bias.add_(1e-3)  # other weights: the gate's verdict no longer applies
    assert pipelines.model_precision(tiny_sr, CPU) == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        pipelines.model_precision(tiny_sr, CPU, "int8")
