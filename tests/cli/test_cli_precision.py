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


@pytest.fixture
def model_dirs(tmp_path: Path) -> dict[str, Path]:
    # each model seeded on its own, so that a change in one constructor's initialisation leaves the others' weights
    dirs = {"sr": tmp_path / "sr", "deblur": tmp_path / "deblur", "style": tmp_path / "style"}
    for kind, build in (("sr", lambda: SRResNet(scale=4, num_blocks=1, channels=8)),
                        ("deblur", lambda: DeblurGANGenerator(8, 1)),
                        ("style", lambda: TransformerNet(channels=4, num_blocks=1))):
        torch.manual_seed(0)
        build().save_pretrained(dirs[kind])
    return dirs


@pytest.mark.parametrize("command", ["upscale", "deblur", "stylize"])
def test_precision_option_on_each_image_command(command, model_dirs, tmp_path, capsys):
    images = crops(tmp_path / "in", 24, count=1)
    kind = {"upscale": "sr", "deblur": "deblur", "stylize": "style"}[command]
    model = ["--style" if command == "stylize" else "--model", str(model_dirs[kind])]
    outputs = {}
    for choice in ("fp32", "bf16", "auto"):
        assert main([command, str(images), "-o", str(tmp_path / choice), *model, "--precision", choice]) == 0
        outputs[choice] = np.asarray(Image.open(tmp_path / choice / "0.png"), dtype=float)
    # a sanity bound for tiny random weights (bf16 keeps ~3 significant digits); the quality bar for trained
    # models is the gate's, tested above
    assert np.abs(outputs["fp32"] - outputs["bf16"]).mean() < 3.0
    assert np.array_equal(outputs["auto"], outputs["fp32"]) or precision.cpu_bf16_support().native
    with pytest.raises(SystemExit):
        main([command, str(images), "-o", str(tmp_path / "x"), *model, "--precision", "fp16"])
    assert "invalid choice" in capsys.readouterr().err


def test_evaluate_json_reports_the_precision_that_ran(monkeypatch, model_dirs, tmp_path, capsys):
    hr = crops(tmp_path / "hr", 32)
    monkeypatch.setenv(precision.OVERRIDE_ENV, "0")
    for choice, expected in (("auto", "fp32"), ("fp32", "fp32"), ("bf16", "bf16")):
        assert main(["evaluate", "sr", "--model", str(model_dirs["sr"]), "--data", str(hr), "--json",
                     "--precision", choice]) == 0
        assert json.loads(capsys.readouterr().out)["precision"] == expected
    monkeypatch.setenv(precision.OVERRIDE_ENV, "1")
    monkeypatch.setattr(gate_records, "bf16_passed", lambda model, *where, **on: True)
    assert main(["evaluate", "sr", "--model", str(model_dirs["sr"]), "--data", str(hr), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "bf16"
    assert main(["evaluate", "deblur", "--model", str(model_dirs["deblur"]), "--data", str(hr), "--trajectories",
                 "1", "--no-reference", "--json", "--precision", "fp32"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "fp32"
