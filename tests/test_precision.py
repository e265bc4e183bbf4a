import json
from pathlib import Path

import pytest
import torch

from ganzoo import gate_records, pipelines, precision, quality_gate


@pytest.mark.parametrize("override, native", [("0", False), ("1", True)])
def test_the_override_wins_over_detection(monkeypatch, override, native):
    """GANZOO_CPU_BF16 beats what the CPU reports (detection faked to say the opposite)."""
    monkeypatch.setattr(precision, "_detect", lambda: precision.Bf16Support(not native, "faked detection"))
    monkeypatch.setenv(precision.OVERRIDE_ENV, override)
    support = precision.cpu_bf16_support()
    assert support.native is native and support.reason == f"{precision.OVERRIDE_ENV}={override}"
    assert precision.resolve_cpu_precision("auto") == ("bf16" if native else "fp32")


def test_explicit_choices_pass_through_and_bad_ones_are_refused(monkeypatch):
    monkeypatch.setenv(precision.OVERRIDE_ENV, "0")
    assert precision.resolve_cpu_precision("bf16") == "bf16"
    assert precision.resolve_cpu_precision("fp32") == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve_cpu_precision("fp16")
    monkeypatch.setenv(precision.OVERRIDE_ENV, "yes")
    with pytest.raises(ValueError, match="must be 0 or 1"):
        precision.cpu_bf16_support()


@pytest.fixture()
def fake_cpu(monkeypatch):
    """Detection with torch's checks and /proc/cpuinfo's flags faked: set(avx512=..., amx=..., flags=...)."""
    monkeypatch.delenv(precision.OVERRIDE_ENV, raising=False)

    def set_cpu(avx512: bool, amx: bool, flags: set[str]) -> precision.Bf16Support:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
        monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
        precision._detect.cache_clear()
        return precision.cpu_bf16_support()
    yield set_cpu
    precision._detect.cache_clear()


def test_detection_on_each_kind_of_cpu(fake_cpu):
    avx2 = fake_cpu(False, False, {"avx2", "fma"})  # this project's AVX2-only machines
    assert not avx2.native and "_is_avx512_bf16_supported() is false" in avx2.reason
    zen4 = fake_cpu(True, False, {"avx2", "avx512f", "avx512_bf16"})  # AMD Zen 4/5
    assert zen4.native and zen4.reason == "torch.cpu._is_avx512_bf16_supported() is true"
    sapphire_rapids = fake_cpu(False, True, {"amx_tile", "amx_bf16"})
    assert sapphire_rapids.native and "_is_amx_tile_supported" in sapphire_rapids.reason
    flags_only = fake_cpu(False, False, {"avx512_bf16"})  # torch says no, the kernel's flags say yes
    assert flags_only.native and flags_only.reason == "CPU flags avx512_bf16"


CPU = torch.device("cpu")


def write_gate(path: Path, model: torch.nn.Module, passed: bool) -> Path:
    path.write_text(json.dumps({"tiny": {"weights_sha256": quality_gate.weights_sha256(model), "passed": passed}}))
    return path


def test_auto_is_fp32_without_native_bf16(monkeypatch, tiny_sr, tmp_path):
    monkeypatch.setenv(precision.OVERRIDE_ENV, "0")
    monkeypatch.setattr(gate_records, "GATE_FILE", write_gate(tmp_path / "gate.json", tiny_sr, True))
    assert pipelines.model_precision(tiny_sr, CPU) == "fp32"
    assert pipelines.model_precision(tiny_sr, CPU, "bf16") == "bf16"  # explicit: emulated, slow, but asked for


def test_auto_is_bf16_on_a_bf16_cpu_only_for_weights_that_passed_the_gate(monkeypatch, tiny_sr, tmp_path):
    monkeypatch.setenv(precision.OVERRIDE_ENV, "1")
    monkeypatch.setattr(gate_records, "GATE_FILE", tmp_path / "missing.json")
    assert pipelines.model_precision(tiny_sr, CPU) == "fp32"  # never gated
    monkeypatch.setattr(gate_records, "GATE_FILE", write_gate(tmp_path / "failed.json", tiny_sr, False))
    assert pipelines.model_precision(tiny_sr, CPU) == "fp32"
    monkeypatch.setattr(gate_records, "GATE_FILE", write_gate(tmp_path / "passed.json", tiny_sr, True))
    assert pipelines.model_precision(tiny_sr, CPU) == "bf16"
    assert pipelines.model_precision(tiny_sr, CPU, "fp32") == "fp32"
    assert pipelines.model_precision(tiny_sr, torch.device("meta")) == "fp32"  # unmeasured off the CPU
    with torch.no_grad():
        tiny_sr.tail.bias.add_(1e-3)  # other weights: the gate's verdict no longer applies
    assert pipelines.model_precision(tiny_sr, CPU) == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        pipelines.model_precision(tiny_sr, CPU, "int8")


# -- CUDA: the same rule, with the GPU's own gate record (the capability is faked: nothing runs on the GPU) --------

CUDA = torch.device("cuda")  # model_precision reads only the device's type


def write_cuda_gate(path: Path, model: torch.nn.Module, passed: bool, speedup: float | None) -> Path:
    cuda = {"weights_sha256": quality_gate.weights_sha256(model), "passed": passed}
    if speedup is not None:
        cuda["bf16_speedup"] = speedup
    path.write_text(json.dumps({"tiny": {"weights_sha256": cuda["weights_sha256"], "passed": True, "cuda": cuda}}))
    return path


@pytest.mark.parametrize("cpu_bf16", ["0", "1"])  # the CPU's rule has no say on the GPU
@pytest.mark.parametrize("gpu_bf16, passed, speedup, expected", [
    (True, True, 1.6, "bf16"),
    (True, True, None, "bf16"),  # a record without a timing: quality decides
    (True, True, 0.9, "fp32"),  # passed, but slower in bf16 there (deblur-unet at 512 x 512 on an H200)
    (True, False, 1.6, "fp32"),
    (False, True, 1.6, "fp32"),  # no native bf16 (before compute capability 8.0)
])
def test_auto_on_cuda_follows_the_cuda_record(monkeypatch, tiny_sr, tmp_path, cpu_bf16, gpu_bf16, passed, speedup,
                                              expected):
    monkeypatch.setenv(precision.OVERRIDE_ENV, cpu_bf16)
    monkeypatch.setattr(pipelines, "cuda_bf16_support", lambda device: precision.Bf16Support(gpu_bf16, "faked"))
    monkeypatch.setattr(gate_records, "GATE_FILE", write_cuda_gate(tmp_path / "gate.json", tiny_sr, passed, speedup))
    assert pipelines.model_precision(tiny_sr, CUDA) == expected
    assert pipelines.model_precision(tiny_sr, CUDA, "bf16") == "bf16"  # --precision means the same as on the CPU
    assert pipelines.model_precision(tiny_sr, CUDA, "fp32") == "fp32"


def test_a_cpu_record_alone_never_turns_on_bf16_on_cuda(monkeypatch, tiny_sr, tmp_path):
    monkeypatch.setattr(pipelines, "cuda_bf16_support", lambda device: precision.Bf16Support(True, "faked"))
    monkeypatch.setattr(gate_records, "GATE_FILE", write_gate(tmp_path / "gate.json", tiny_sr, True))
    assert pipelines.model_precision(tiny_sr, CUDA) == "fp32"


def test_cuda_support_is_false_for_a_cpu_device():
    support = precision.cuda_bf16_support(torch.device("cpu"))
    assert not support.native and "not an available CUDA device" in support.reason
