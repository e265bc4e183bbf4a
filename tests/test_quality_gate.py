"""ganzoo.quality_gate: the bf16 gate on tiny and bundled models, and its records."""

import json

import pytest
import torch

import ganzoo
from ganzoo import pipelines, quality_gate
from ganzoo.inference import to_bf16
from ganzoo.models.srgan import SRResNet

from conftest import crops


def test_bundled_srresnet_passes_the_bf16_bar_on_small_crops(tmp_path):
    model = ganzoo.load("srresnet-x4")
    result = quality_gate.gate_sr(model, [crops(tmp_path / "hr", 64)])["hr"]
    assert result["passed"] and result["n"] == 2
    assert abs(result["delta"]["psnr_y"]) <= quality_gate.BAR["psnr_db"]
    assert abs(result["delta"]["ssim_y"]) <= quality_gate.BAR["ssim"]
    assert result["delta"]["psnr_y"] != 0.0  # the bf16 run really was bf16


def test_bundled_style_network_passes_the_bf16_bar_on_small_crops(tmp_path):
    result = quality_gate.gate_style(ganzoo.load("style-mosaic"), crops(tmp_path / "content", 48))["content"]
    assert result["passed"] and 0 < result["mean_abs_diff"] < 1 / 255


def test_the_gate_fails_a_model_whose_bf16_form_is_off(monkeypatch, tmp_path, tiny_sr):
    def noisy(model):
        form = to_bf16(model)
        form.register_forward_hook(lambda module, args, out: out + 0.05)
        return form
    monkeypatch.setattr(pipelines, "to_bf16", noisy)
    result = quality_gate.gate_sr(tiny_sr, [crops(tmp_path / "hr", 32)])["hr"]
    assert not result["passed"] and abs(result["delta"]["psnr_y"]) > quality_gate.BAR["psnr_db"]


def fake_gate(monkeypatch, passed: bool, speedup: float | None = None) -> list:
    """gate_model replaced by a record of `passed` (and on CUDA `bf16_speedup`); returns the calls' arguments."""
    calls = []

    def gate_model(model, data_dir, device="cpu", sr_sets=quality_gate.SR_SETS):
        calls.append((device, tuple(sr_sets)))
        record = {"weights_sha256": quality_gate.weights_sha256(model), "passed": passed}
        return record if speedup is None else {**record, "bf16_speedup": speedup}
    monkeypatch.setattr(quality_gate, "gate_model", gate_model)
    return calls


def test_gate_records_are_found_by_weights_and_written_by_main(monkeypatch, tmp_path, tiny_sr):
    fake_gate(monkeypatch, True)
    gate = tmp_path / "gate.json"
    assert quality_gate.main(["--models", "tiny", "--write", "--gate-file", str(gate)], load=lambda name: tiny_sr) == 0
    record = json.loads(gate.read_text())["tiny"]
    assert record["command"].startswith("python -m ganzoo.quality_gate --models tiny")
    assert quality_gate.bf16_passed(tiny_sr, gate)
    assert not quality_gate.bf16_passed(tiny_sr, gate, device_type="cuda")  # a CPU run says nothing of the GPU
    assert not quality_gate.bf16_passed(SRResNet(scale=4, num_blocks=1, channels=8), gate)


def test_a_cuda_run_is_recorded_beside_the_cpu_record_and_both_survive_each_other(monkeypatch, tmp_path, tiny_sr):
    gate = tmp_path / "gate.json"
    args = ["--models", "tiny", "--write", "--gate-file", str(gate)]
    monkeypatch.setattr(quality_gate.pipelines, "pick_device", torch.device)  # "cuda" without a GPU: gate is faked
    fake_gate(monkeypatch, False)
    quality_gate.main(args, load=lambda name: tiny_sr)
    calls = fake_gate(monkeypatch, True, speedup=1.7)
    quality_gate.main([*args, "--device", "cuda", "--sr-sets", "Set5"], load=lambda name: tiny_sr)
    record = json.loads(gate.read_text())["tiny"]
    assert calls == [("cuda", ("Set5",))]
    assert record["passed"] is False and record["cuda"]["passed"] is True and record["cuda"]["bf16_speedup"] == 1.7
    assert record["cuda"]["command"] == ("python -m ganzoo.quality_gate --device cuda --models tiny "
                                         "--data-dir ../shared/data --sr-sets Set5 --write")
    assert quality_gate.bf16_passed(tiny_sr, gate, device_type="cuda") and not quality_gate.bf16_passed(tiny_sr, gate)
    fake_gate(monkeypatch, True)
    quality_gate.main(args, load=lambda name: tiny_sr)  # a later CPU run keeps the CUDA entry
    record = json.loads(gate.read_text())["tiny"]
    assert record["passed"] is True and record["cuda"]["bf16_speedup"] == 1.7


def test_the_bundled_gate_file_is_consistent():
    records = json.loads(quality_gate.GATE_FILE.read_text())
    for record in records.values():
        assert record["passed"] == all(r["passed"] for r in record["results"].values())
        assert record["command"].startswith("python -m ganzoo.quality_gate")
    # the key is stable across loads, and no record is stale: each bundled model is found by its weights
    # (a retrained model must be gated again, or `auto` would quietly run it in fp32)
    for name, record in records.items():
        digest = quality_gate.weights_sha256(ganzoo.load(name))
        assert record["weights_sha256"] == digest, f"{name}: re-run the gate"
        if "cuda" in record:  # a GPU run of the gate, for the same weights
            assert record["cuda"]["weights_sha256"] == digest, f"{name}: re-run the gate on a GPU"
            assert record["cuda"]["command"].startswith("python -m ganzoo.quality_gate --device cuda")


def test_every_deblurring_class_has_a_bar(tmp_path, lai_set):
    """gate_model reads <data>/blur/bench/levin; the U-Net (a deblurring model too) is gated like DeblurGAN's."""
    levin = tmp_path / "data" / "blur" / "bench" / "levin"
    levin.parent.mkdir(parents=True)
    levin.symlink_to(lai_set, target_is_directory=True)
    record = quality_gate.gate_model(ganzoo.load("deblur-unet"), tmp_path / "data")
    assert record["class"] == "DeblurUNet" and record["results"]["levin"]["n"] > 0
    levin = record["results"]["levin"]
    assert levin["delta"]["psnr"] != 0.0 and set(levin["fp32"]) == set(levin["bf16"]) == {"psnr"}


@pytest.mark.parametrize("bf16_psnr, bf16_ssim, passed", [
    (30.96, 0.9000, True),  # 0.04 dB below: inside the 0.05 dB bar
    (31.04, 0.9009, True),  # above fp32 counts the same as below
    (30.94, 0.9000, False),  # 0.06 dB below
    (30.99, 0.8985, False),  # PSNR fine, SSIM 0.0015 below
])
def test_the_bar_in_numbers(bf16_psnr, bf16_ssim, passed):
    fp32 = {"psnr_y": 31.0, "ssim_y": 0.9, "n": 5}
    bf16 = {"psnr_y": bf16_psnr, "ssim_y": bf16_ssim, "n": 5}
    bars = {"psnr_y": quality_gate.BAR["psnr_db"], "ssim_y": quality_gate.BAR["ssim"]}
    result = quality_gate._compare(fp32, bf16, bars)
    assert result["passed"] is passed and result["n"] == 5
    assert result["delta"]["psnr_y"] == pytest.approx(bf16_psnr - 31.0)


def test_one_failing_set_fails_the_model(monkeypatch, tiny_sr, tmp_path):
    verdicts = iter([True, False])
    monkeypatch.setattr(quality_gate, "gate_sr", lambda model, folders, device: {
        folder.name: {"passed": next(verdicts)} for folder in folders})
    record = quality_gate.gate_model(tiny_sr, tmp_path)
    assert record["passed"] is False and [r["passed"] for r in record["results"].values()] == [True, False]
