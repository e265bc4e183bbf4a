"""`ganzoo deblur`: results and errors."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image
from skimage import data as skdata

from ganzoo import cli, degrade, imaging, pipelines
from ganzoo.metrics import psnr


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


# -- non-blind: --kernel FILE, and evaluate --method true-kernel --------------------------------------

def _sharp_and_blurred(kernel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    sharp = imaging.image_to_tensor(Image.fromarray(skdata.astronaut()[80:176, 180:276]))[0]
    return sharp, imaging.quantize(degrade.blur(sharp, kernel))


def test_cli_deblur_with_a_kernel_file(tmp_path, capsys):
    kernel = degrade.shake_kernel(15.0, torch.Generator().manual_seed(4))
    sharp, blurred = _sharp_and_blurred(kernel)
    np.save(tmp_path / "k.npy", kernel.numpy())
    folder = tmp_path / "in"
    folder.mkdir()
    imaging.tensor_to_image(blurred).save(folder / "colour.png")
    imaging.tensor_to_image(blurred).convert("L").save(folder / "grey.png")
    rgba = imaging.tensor_to_image(blurred).convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 128))
    rgba.save(folder / "alpha.png")
    grey16 = (blurred[0].mean(0).numpy() * 65535).round().astype(np.uint16)
    Image.fromarray(grey16).save(folder / "grey16.png")
    assert cli.main(["deblur", str(folder), "-o", str(tmp_path / "out"), "--kernel", str(tmp_path / "k.npy")]) == 0
    out = {p.stem: Image.open(p) for p in (tmp_path / "out").iterdir()}
    assert {name: image.mode for name, image in out.items()} == {
        "colour": "RGB", "grey": "L", "alpha": "RGBA", "grey16": "I;16"}
    assert all(image.size == (96, 96) for image in out.values())
    assert np.array_equal(np.asarray(out["alpha"])[..., 3], np.full((96, 96), 128))
    restored = imaging.image_to_tensor(out["colour"])[0]
    assert psnr(restored, sharp).item() > psnr(blurred, sharp).item() + 4
    # the same through the pipeline, with an explicit noise level
    assert cli.main(["deblur", str(folder / "colour.png"), "-o", str(tmp_path / "out2"), "--kernel",
                     str(tmp_path / "k.npy"), "--noise-sigma", "0.01"]) == 0
    expected = pipelines.deblur_with_kernel(folder / "colour.png", kernel, noise_sigma=0.01)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out2" / "colour.png")), np.asarray(expected))


def test_cli_deblur_kernel_errors(tmp_path, capsys):
    image = tmp_path / "small.png"
    Image.new("RGB", (20, 20), "grey").save(image)
    np.save(tmp_path / "neg.npy", -np.ones((3, 3)))
    np.save(tmp_path / "big.npy", np.ones((31, 31)))
    (tmp_path / "k.txt").write_text("1")
    for argv, code, message in [
        (["--kernel", str(tmp_path / "neg.npy")], 2, "negative"),
        (["--kernel", str(tmp_path / "k.txt")], 2, "unknown kernel file type"),
        (["--kernel", str(tmp_path / "missing.png")], 2, "no such kernel file"),
        (["--kernel", str(tmp_path / "big.npy")], 1, "larger than the 20x20 image"),  # per file: the run goes on
        (["--kernel", str(tmp_path / "big.npy"), "--model", "deblur-unet"], 2, "not both"),
        (["--noise-sigma", "0.01", "--method", "network"], 2, "apply to --kernel or an estimate method"),
    ]:
        assert cli.main(["deblur", str(image), "-o", str(tmp_path / "o"), *argv]) == code, argv
        assert message in capsys.readouterr().err, argv


def test_cli_evaluate_true_kernel_reports_aligned_and_unaligned(levin_like, kernels, tmp_path, capsys):
    kernel_file = tmp_path / "kernels.npz"
    np.savez(kernel_file, **{f"k{i}": k.numpy() for i, k in enumerate(kernels, 1)})
    assert cli.main(["evaluate", "deblur", "--method", "true-kernel", "--data", str(levin_like),
                     "--kernels", str(kernel_file), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == "true-kernel" and result["model"] is None and result["n"] == 4
    assert {"psnr", "ssim", "psnr_aligned", "ssim_aligned", "psnr_input_aligned", "psnr_richardson_lucy"} <= set(result)
    assert result["psnr"] > result["psnr_richardson_lucy"] > result["psnr_input"]
    assert set(result["protocol"]) == {"aligned", "unaligned"}
    assert cli.main(["evaluate", "deblur", "--method", "true-kernel", "--data", str(levin_like),
                     "--kernels", str(kernel_file), "--no-aligned", "--no-reference"]) == 0
    table = capsys.readouterr().out
    assert "mean (4)" in table and "psnr_aligned" not in table and "unaligned: RGB" in table
    # no kernels: a clear error, not a crash
    assert cli.main(["evaluate", "deblur", "--method", "true-kernel", "--data", str(levin_like)]) == 2
    assert "needs the kernels" in capsys.readouterr().err
    assert cli.main(["evaluate", "deblur", "--method", "true-kernel", "--model", "deblur-unet",
                     "--data", str(levin_like)]) == 2
    assert "takes no --model" in capsys.readouterr().err


def test_cli_deblur_with_a_kernel_and_the_learned_prior(tmp_path, capsys):
    """--deconvolution pnp: the bundled denoiser as the prior (DPIR's plug-and-play HQS), as the pipeline does it."""
    kernel = degrade.shake_kernel(15.0, torch.Generator().manual_seed(4))
    sharp, blurred = _sharp_and_blurred(kernel)
    np.save(tmp_path / "k.npy", kernel.numpy())
    imaging.tensor_to_image(blurred).save(tmp_path / "colour.png")
    assert cli.main(["deblur", str(tmp_path / "colour.png"), "-o", str(tmp_path / "out"), "--kernel",
                     str(tmp_path / "k.npy"), "--deconvolution", "pnp"]) == 0
    restored = Image.open(tmp_path / "out" / "colour.png")
    assert psnr(imaging.image_to_tensor(restored)[0], sharp).item() > psnr(blurred, sharp).item() + 4
    expected = pipelines.deblur_with_kernel(tmp_path / "colour.png", kernel, method="pnp")
    assert np.array_equal(np.asarray(restored), np.asarray(expected))
    assert pipelines.DEFAULT_DECONVOLUTION == "pnp"  # the default prior: the same without the flag
    assert np.array_equal(np.asarray(pipelines.deblur_with_kernel(tmp_path / "colour.png", kernel)),
                          np.asarray(expected))
    assert cli.main(["deblur", str(tmp_path / "colour.png"), "-o", str(tmp_path / "hqs"), "--kernel",
                     str(tmp_path / "k.npy"), "--deconvolution", "hqs"]) == 0
    hqs = pipelines.deblur_with_kernel(tmp_path / "colour.png", kernel, method="hqs")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "hqs" / "colour.png")), np.asarray(hqs))
    assert not np.array_equal(np.asarray(hqs), np.asarray(expected))
    # the prior applies to a known kernel only
    assert cli.main(["deblur", str(tmp_path / "colour.png"), "-o", str(tmp_path / "o2"), "--deconvolution",
                     "pnp"]) == 2
    assert "--deconvolution applies to --kernel" in capsys.readouterr().err


def test_cli_evaluate_true_kernel_with_the_learned_prior(levin_like, kernels, tmp_path, capsys):
    kernel_file = tmp_path / "kernels.npz"
    np.savez(kernel_file, **{f"k{i}": k.numpy() for i, k in enumerate(kernels, 1)})
    assert cli.main(["evaluate", "deblur", "--method", "true-kernel", "--deconvolution", "pnp", "--data",
                     str(levin_like), "--kernels", str(kernel_file), "--no-aligned", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 4 and result["psnr"] > result["psnr_input"] + 3 and result["deconvolution"] == "pnp"
    assert cli.main(["evaluate", "deblur", "--method", "true-kernel", "--deconvolution", "hqs", "--data",
                     str(levin_like), "--kernels", str(kernel_file), "--no-aligned", "--no-reference", "--json"]) == 0
    hqs = json.loads(capsys.readouterr().out)
    assert hqs["deconvolution"] == "hqs" and hqs["psnr"] != result["psnr"]
    assert cli.main(["evaluate", "deblur", "--deconvolution", "pnp", "--data", str(levin_like)]) == 2
    assert "--deconvolution applies to --method true-kernel" in capsys.readouterr().err
