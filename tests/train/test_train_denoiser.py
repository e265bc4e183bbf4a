"""train_denoiser.py: a tiny run exports a loadable Denoiser with its card; held-out images are dropped; the
pairs are the crops plus Gaussian noise of one level per crop."""

from __future__ import annotations

import json

import torch
from PIL import Image

import ganzoo
from ganzoo.models import Denoiser
from ganzoo.models.denoiser import SIGMA_MAX

from conftest import load_train_script, save


def test_tiny_run_exports_a_denoiser_and_drops_held_out_images(run_script, lai_set, tmp_path):
    train = tmp_path / "train"
    for i in range(2):
        save(torch.rand(1, 3, 40, 40), train / f"fresh_{i}.png")
    Image.open(lai_set / "sharp" / "chelsea.png").save(train / "copy.png")  # an evaluation image
    out = tmp_path / "run"
    run_script("train_denoiser", ["--train-dirs", train, "--held-out", lai_set, "--crop-size", "16",
                                  "--batch-size", "2", "--channels", "8", "--layers", "3", "--max-steps", "2",
                                  "--report-to", "none", "--cpu", "--sample-every", "100", "--output-dir", out])
    model = ganzoo.load(out / "final", expected=(Denoiser,))
    config = json.loads((out / "final" / "config.json").read_text())
    assert (config["channels"], config["layers"]) == (8, 3) and len(model.body) == 2 * 3 - 1
    card = (out / "final" / "README.md").read_text()
    assert "2 clean photos" in card and "1 of\n  them dropped" in card and "train_denoiser.py" in card
    history = json.loads((out / "final" / "training_history.json").read_text())
    assert [h["steps"] for h in history] == [2]


def test_noisy_pairs_draw_one_level_per_crop_within_range():
    script = load_train_script("train_denoiser")
    clean = torch.full((64, 3, 8, 8), 0.5)
    noisy, sigma = script.noisy_pairs(clean, torch.Generator().manual_seed(0))
    assert sigma.shape == (64,) and 0 <= sigma.min() and sigma.max() <= SIGMA_MAX and sigma.std() > 0.03
    measured = (noisy - clean).flatten(1).std(1)
    torch.testing.assert_close(measured, sigma, atol=0.03, rtol=0.2)
