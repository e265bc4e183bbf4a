"""The refiner of blind deblurring: make_refiner_pairs.py's pairs, and train_deblur_unet.py --pair-dirs on them."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

import ganzoo
from ganzoo import imaging
from ganzoo.degrade import add_noise, blur, sized_shake_kernel
from ganzoo.metrics import psnr

from conftest import TINY_UNET, load_train_script, save

TINY_FLAGS = ["--channels", str(TINY_UNET["channels"]), "--encoder-blocks", "1", "1", "--middle-blocks", "1",
              "--decoder-blocks", "1", "1"]


def test_a_pair_is_the_blind_pipelines_deconvolution() -> None:
    """`make_pair` deconvolves with the kernel estimated from the blurred crop, not the true one: the result is
    much sharper than its input; a flat crop gives no pair (its estimate is not trusted)."""
    script = load_train_script("make_refiner_pairs")
    sharp = imaging.image_to_tensor(Image.fromarray(skdata.camera()[96:256, 160:320]))[0]
    kernel = sized_shake_kernel(13, torch.Generator().manual_seed(3))
    blurred = imaging.quantize(add_noise(blur(sharp, kernel), 0.005, torch.Generator().manual_seed(0)))
    restored, estimate = script.make_pair(blurred)
    assert restored is not None and restored.shape == blurred.shape and 0 <= restored.min() <= restored.max() <= 1
    assert estimate.kernel.size > 1 and not estimate.note
    assert psnr(restored, sharp).item() > psnr(blurred, sharp).item() + 2
    flat, estimate = script.make_pair(torch.full((1, 3, 96, 96), 0.5))
    assert flat is None and "flat" in estimate.note


def test_pairs_are_written_in_the_paired_layout_and_skip_held_out_images(tmp_path) -> None:
    script = load_train_script("make_refiner_pairs")
    train, held_out = tmp_path / "train", tmp_path / "held_out"
    train.mkdir()
    held_out.mkdir()
    Image.fromarray(skdata.camera()[:200, :200]).convert("RGB").save(train / "camera.png")  # grey: R = G = B
    Image.fromarray(skdata.astronaut()[:200, :200]).save(train / "astronaut.png")  # colour, and held out:
    shutil.copy(train / "astronaut.png", held_out / "astronaut.png")  # an evaluation image is never read
    out = tmp_path / "pairs"
    script.main(["--train-dirs", str(train), "--held-out", str(held_out), "--output", str(out), "--count", "2",
                 "--crop-size", "96", "--max-kernel", "11", "--lengths", "4", "10", "--sized-fraction", "0",
                 "--saturation", "0", "--seed", "0", "--time-limit", "3"])
    records = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert len(records) == 2 and [r["name"] for r in records] == ["s0_00000", "s0_00001"]
    for folder in ("blur_deconvolved", "sharp", "input"):
        assert sorted(p.stem for p in (out / folder).iterdir()) == ["s0_00000", "s0_00001"], folder
    from ganzoo.data import blur_pairs
    pairs = blur_pairs(out)
    assert [(b.parent.name, s.parent.name) for b, s in pairs] == [("blur_deconvolved", "sharp")] * 2
    for _, sharp in pairs:
        crop = np.asarray(Image.open(sharp)).astype(int)
        assert crop.shape == (96, 96, 3) and (crop[..., 0] == crop[..., 1]).all()  # from the camera image only
    assert all(r["kernel"] >= 3 and r["deconvolved_psnr"] > 0 for r in records)


def test_train_script_learns_from_pairs_and_refuses_held_out_ones(run_script, lai_set, tmp_path) -> None:
    pairs = tmp_path / "pairs"
    for i in range(2):
        sharp = torch.rand(1, 3, 32, 32)
        save(sharp, pairs / "sharp" / f"p{i}.png")
        save((sharp + 0.05 * torch.randn_like(sharp)).clamp(0, 1), pairs / "blur_deconvolved" / f"p{i}.png")
    out = tmp_path / "run"
    common = ["--pair-dirs", pairs, "--held-out", lai_set, "--crop-size", "16", "--batch-size", "2", *TINY_FLAGS,
              "--report-to", "none", "--cpu", "--sample-every", "100", "--max-steps", "2"]
    run_script("train_deblur_unet", [*common, "--card", "deblur-refiner.md", "--output-dir", out])
    card = (out / "final" / "README.md").read_text()
    assert "the refiner of blind deblurring" in card and "2 (deconvolved, sharp) pairs" in card
    assert isinstance(ganzoo.load(out / "final"), ganzoo.models.DeblurUNet)
    assert "Half of each batch" not in card
    train = tmp_path / "train"
    save(torch.rand(1, 3, 48, 48), train / "fresh.png")
    mixed = tmp_path / "mixed"  # pairs and synthetic blur, half a batch each
    run_script("train_deblur_unet", [*common, "--train-dirs", train, "--max-kernel", "15", "--lengths", "2", "20",
                                     "--card", "deblur-refiner.md", "--output-dir", mixed])
    card = (mixed / "final" / "README.md").read_text()
    assert "2 (deconvolved, sharp) pairs" in card and "Half of each batch: 1 sharp images" in card
    Image.open(next((lai_set / "sharp").iterdir())).save(pairs / "sharp" / "p1.png")  # now an evaluation image
    with pytest.raises(SystemExit, match="held-out"):
        run_script("train_deblur_unet", [*common, "--output-dir", tmp_path / "refused"])
    with pytest.raises(SystemExit):  # neither sharp images nor pairs
        load_train_script("train_deblur_unet").parse_args(["--output-dir", str(tmp_path / "x")])
