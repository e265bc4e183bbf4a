"""`ganzoo deblur`: results and errors."""

from __future__ import annotations

import json

import numpy as np

from ganzoo import cli


def test_cli_deblur_and_evaluate(levin_like, kernels, tiny_deblur_dir, tmp_path, capsys):
    out = tmp_path / "out"
    inputs = levin_like / "blurred_noisefree"
    assert cli.main(["deblur", str(inputs), "-o", str(out), "--model", str(tiny_deblur_dir)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in inputs.iterdir())
    kernel_file = tmp_path / "kernels.npz"
    np.savez(kernel_file, **{f"k{i}": k.numpy() for i, k in enumerate(kernels, 1)})
    capsys.readouterr()
    assert cli.main(["evaluate", "deblur", "--model", str(tiny_deblur_dir), "--data", str(levin_like),
                     "--kernels", str(kernel_file), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 4 and {"psnr", "ssim", "psnr_input", "ssim_input", "psnr_richardson_lucy"} <= set(result)
    assert cli.main(["evaluate", "deblur", "--model", "none", "--data", str(levin_like / "sharp"),
                     "--trajectories", "2"]) == 0
    assert "mean (4)" in capsys.readouterr().out


def test_cli_deblur_errors(tiny_deblur_dir, levin_like, tmp_path, capsys):
    assert cli.main(["deblur", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o"),
                     "--model", str(tiny_deblur_dir)]) == 1  # per-file error, the run goes on
    assert "missing.png" in capsys.readouterr().err
    assert cli.main(["evaluate", "deblur", "--model", "none", "--data", str(levin_like / "sharp"),
                     "--kernels", str(tmp_path), "--trajectories", "2"]) == 2
    assert "not both" in capsys.readouterr().err
