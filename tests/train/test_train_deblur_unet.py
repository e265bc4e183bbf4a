"""train_deblur_unet.py: held-out sets and the GAN fine-tuning stage."""

from __future__ import annotations

import json

import torch
from PIL import Image

import ganzoo
from ganzoo.models import DeblurUNet

from conftest import TINY_UNET, save


def test_train_script_holds_out_and_keeps_history_across_runs(run_script, lai_set, tmp_path):
    train = tmp_path / "train"
    for i in range(2):
        save(torch.rand(1, 3, 48, 48), train / f"fresh_{i}.png")
    Image.open(lai_set / "sharp" / "chelsea.png").save(train / "copy.png")  # an evaluation image
    common = ["--train-dirs", train, "--held-out", lai_set, "--crop-size", "16", "--max-kernel", "15",
              "--lengths", "2", "20", "--batch-size", "2", "--width", "4", "--encoder-blocks", "1", "1",
              "--middle-blocks", "1", "--decoder-blocks", "1", "1", "--report-to", "none", "--sample-every", "100"]
    first = tmp_path / "first"
    run_script("train_deblur_unet", [*common, "--max-steps", "2", "--output-dir", first])
    card = (first / "final" / "README.md").read_text()
    assert "2 sharp images" in card and "1 of them dropped" in card
    second = tmp_path / "second"
    run_script("train_deblur_unet", [*common, "--max-steps", "1", "--init-from", first / "final",
                                     "--output-dir", second])
    history = json.loads((second / "final" / "training_history.json").read_text())
    assert [h["steps"] for h in history] == [2, 1] and history[1]["init_from"] == str(first / "final")
    assert "**3 steps," in (second / "final" / "README.md").read_text()


def test_the_gan_stage_fine_tunes_a_unet_on_shake_blur(run_script, lai_set, tmp_path):
    start = tmp_path / "unet"
    torch.manual_seed(0)
    DeblurUNet(**TINY_UNET).save_pretrained(start)
    train = tmp_path / "train"
    for i in range(2):
        save(torch.rand(1, 3, 48, 48), train / f"{i}.png")
    out = tmp_path / "gan"
    run_script("train_deblurgan", ["--train-dirs", train, "--held-out", lai_set, "--init-from", start,
                                   "--shake-lengths", "2", "20", "--max-kernel", "15", "--sized-fraction", "0.5",
                                   "--crop-size", "32", "--batch-size", "2", "--critic-channels", "4",
                                   "--vgg-weights", "random", "--pixel-weight", "100", "--max-steps", "1",
                                   "--report-to", "none", "--sample-every", "100", "--output-dir", out])
    assert isinstance(ganzoo.load(out / "final"), DeblurUNet)
    card = (out / "final" / "README.md").read_text()
    assert "fine-tuned with the DeblurGAN losses" in card and "WGAN-GP" in card
    assert json.loads((out / "final" / "training_history.json").read_text())[-1]["steps"] == 1
