"""`ganzoo evaluate sr|style|deblur`: JSON results and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from ganzoo import cli, degrade, gate_records
from ganzoo.cli import main as cli_main
from ganzoo.evaluate import evaluate_deblur

from conftest import needs_bundled


SR_KEYS = {"n", "psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "grid", "detail"}


def skimage_folder(folder: Path, size: int = 64) -> Path:
    """Two natural-image crops from skimage.data."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data.astronaut()[160:160 + size, 180:180 + size]).save(folder / "astronaut.png")
    Image.fromarray(data.chelsea()[100:100 + size, 150:150 + size]).save(folder / "chelsea.png")
    return folder


def evaluate_json(capsys, *argv: str) -> dict:
    code = cli_main(["evaluate", "sr", *argv, "--json", "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_cli_evaluate_sr_json(tiny_model_dir, tmp_path, capsys):
    folder = skimage_folder(tmp_path / "bench", size=40)
    result = evaluate_json(capsys, "--model", str(tiny_model_dir), "--data", str(folder))
    assert SR_KEYS <= set(result) and result["n"] == 2 and result["scale"] == 4
    assert all(np.isfinite(result[k]) for k in SR_KEYS - {"n"})
    assert 0 < result["ssim_y"] <= 1 and [row["image"] for row in result["images"]] == ["astronaut", "chelsea"]
    tiled = evaluate_json(capsys, "--model", str(tiny_model_dir), "--data", str(folder), "--tile", "33")
    assert tiled["psnr_y"] == pytest.approx(result["psnr_y"], abs=1e-3)


def test_cli_evaluate_sr_wrong_scale_is_an_error(tiny_model_dir, tmp_path, capsys):
    folder = skimage_folder(tmp_path / "bench", size=40)
    code = cli_main(["evaluate", "sr", "--model", str(tiny_model_dir), "--data", str(folder), "--scale", "2",
                     "--device", "cpu"])
    assert code == 2 and "upscales x4, not x2" in capsys.readouterr().err


@needs_bundled
def test_bundled_srresnet_beats_bicubic(tmp_path, capsys):
    folder = skimage_folder(tmp_path / "bench", size=64)
    model = evaluate_json(capsys, "--model", "srresnet-x4", "--data", str(folder))
    bicubic = evaluate_json(capsys, "--model", "bicubic", "--data", str(folder))
    assert model["n"] == bicubic["n"] == 2
    assert model["psnr_y"] > bicubic["psnr_y"], (model["psnr_y"], bicubic["psnr_y"])


def evaluate_style(*argv: str) -> int:
    return cli_main(["evaluate", "style", *argv, "--device", "cpu"])


def test_cli_evaluate_style_fast_and_adain(model_dirs, tmp_path, capsys, monkeypatch, cpu_bf16):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(data.astronaut()[::8, ::8]).save(photos / "astronaut.png")
    Image.fromarray(data.coffee()[::8, ::8]).save(photos / "coffee.png")
    assert evaluate_style("--model", str(model_dirs["fast"]), "--data", str(photos), "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 2 and [r["image"] for r in result["images"]] == ["astronaut", "coffee"]
    assert all(np.isfinite(result[k]) for k in ("grid", "grid_input", "structure_ssim"))
    assert -1 <= result["structure_ssim"] <= 1 and result["grid_input"] < 1
    assert result["precision"] == "fp32"  # weights the bf16 gate never saw: fp32 on either kind of CPU
    monkeypatch.setattr(gate_records, "bf16_passed", lambda model, *where, **on: True)
    assert evaluate_style("--model", str(model_dirs["fast"]), "--data", str(photos), "--json") == 0
    assert json.loads(capsys.readouterr().out)["precision"] == ("bf16" if cpu_bf16 else "fp32")
    assert evaluate_style("--model", str(model_dirs["fast"]), "--data", str(photos), "--json",
                          "--precision", "fp32") == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "fp32"
    # alpha 0 returns the photos: structure SSIM 1 and the photos' own grid score
    assert evaluate_style("--model", str(model_dirs["fast"]), "--data", str(photos), "--alpha", "0", "--json",
                          "--precision", "fp32") == 0
    same = json.loads(capsys.readouterr().out)
    assert same["structure_ssim"] == pytest.approx(1) and same["grid"] == pytest.approx(same["grid_input"])
    style = tmp_path / "style.png"
    Image.fromarray(data.rocket()).save(style)
    assert evaluate_style("--model", str(model_dirs["adain"]), "--data", str(photos), "--reconstruct",
                          "--max-size", "48") == 0
    assert "structure_ssim" in capsys.readouterr().out
    assert evaluate_style("--model", str(model_dirs["fast"]), "--data", str(photos), "--reconstruct") == 2
    assert "AdaIN models only" in capsys.readouterr().err
    assert evaluate_style("--model", str(model_dirs["adain"]), "--data", str(photos), "--style", str(style),
                          "--alpha", "0.5") == 0


def test_lai_set_evaluates_with_the_richardson_lucy_row(lai_set):
    result = evaluate_deblur(None, lai_set, progress=False)
    assert result["n"] == 6
    explicit = evaluate_deblur(None, lai_set, degrade.load_kernels(lai_set / "kernels"), progress=False)
    assert result["psnr_richardson_lucy"] == explicit["psnr_richardson_lucy"]  # kernels/ read, numbers matched
    assert cli.main(["evaluate", "deblur", "--model", "none", "--data", str(lai_set), "--no-reference",
                     "--device", "cpu"]) == 0
