"""`--precision` on each image command, and what the JSON reports."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo import gate_records, precision
from ganzoo.cli import main
from ganzoo.models import DeblurGANGenerator, TransformerNet
from ganzoo.models.srgan import SRResNet

from conftest import crops


def deblurrer_with_a_residual() -> DeblurGANGenerator:
    """A tiny DeblurGAN whose output is not its input (the tail starts at zero), so that bf16 shows in 8 bits."""
    model = DeblurGANGenerator(8, 1)
    torch.nn.init.normal_(model.tail[1].weight, std=0.005)
    return model


@pytest.fixture
def model_dirs(tmp_path: Path) -> dict[str, Path]:
    # each model seeded on its own, so that a change in one constructor's initialisation leaves the others' weights
    dirs = {"sr": tmp_path / "sr", "deblur": tmp_path / "deblur", "style": tmp_path / "style"}
    for kind, build in (("sr", lambda: SRResNet(scale=4, num_blocks=1, channels=8)),
                        ("deblur", deblurrer_with_a_residual),
                        ("style", lambda: TransformerNet(channels=4, num_blocks=1))):
        torch.manual_seed(0)
        build().save_pretrained(dirs[kind])
    return dirs


@pytest.mark.parametrize("command", ["upscale", "deblur", "stylize"])
def test_precision_option_on_each_image_command(command, model_dirs, tmp_path, capsys, monkeypatch, cpu_bf16):
    """"auto" is bf16 only on a CPU with native bf16, and there only for weights that passed the quality gate."""
    images = crops(tmp_path / "in", 24, count=1)
    kind = {"upscale": "sr", "deblur": "deblur", "stylize": "style"}[command]
    model = ["--style" if command == "stylize" else "--model", str(model_dirs[kind])]

    def run(choice: str, out: str) -> np.ndarray:
        assert main([command, str(images), "-o", str(tmp_path / out), *model, "--device", "cpu",
                     "--precision", choice]) == 0
        return np.asarray(Image.open(tmp_path / out / "0.png"), dtype=float)

    outputs = {choice: run(choice, choice) for choice in ("fp32", "bf16", "auto")}
    # a sanity bound for tiny random weights (bf16 keeps ~3 significant digits); the quality bar for trained
    # models is the gate's (tests/test_quality_gate.py)
    assert 0 < np.abs(outputs["fp32"] - outputs["bf16"]).mean() < 3.0
    assert np.array_equal(outputs["auto"], outputs["fp32"])  # weights the gate never saw: fp32 on any CPU
    monkeypatch.setattr(gate_records, "bf16_passed", lambda model, *where, **on: True)
    assert np.array_equal(run("auto", "auto-gated"), outputs["bf16" if cpu_bf16 else "fp32"])
    with pytest.raises(SystemExit):
        main([command, str(images), "-o", str(tmp_path / "x"), *model, "--precision", "fp16"])
    assert "invalid choice" in capsys.readouterr().err


def test_evaluate_json_reports_the_precision_that_ran(monkeypatch, model_dirs, tmp_path, capsys):
    hr = crops(tmp_path / "hr", 32)
    on_cpu = ["--json", "--device", "cpu"]
    monkeypatch.setenv(precision.OVERRIDE_ENV, "0")
    for choice, expected in (("auto", "fp32"), ("fp32", "fp32"), ("bf16", "bf16")):
        assert main(["evaluate", "sr", "--model", str(model_dirs["sr"]), "--data", str(hr), *on_cpu,
                     "--precision", choice]) == 0
        assert json.loads(capsys.readouterr().out)["precision"] == expected
    monkeypatch.setenv(precision.OVERRIDE_ENV, "1")
    assert main(["evaluate", "sr", "--model", str(model_dirs["sr"]), "--data", str(hr), *on_cpu]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "fp32"  # native bf16, but weights never gated
    monkeypatch.setattr(gate_records, "bf16_passed", lambda model, *where, **on: True)
    assert main(["evaluate", "sr", "--model", str(model_dirs["sr"]), "--data", str(hr), *on_cpu]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "bf16"
    sharp = crops(tmp_path / "sharp", 96)  # room for the blur kernel's border
    assert main(["evaluate", "deblur", "--model", str(model_dirs["deblur"]), "--data", str(sharp), "--trajectories",
                 "1", "--no-reference", *on_cpu, "--precision", "fp32"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "fp32"
