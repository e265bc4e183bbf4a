"""train_deblur_unet.py: held-out sets and the GAN fine-tuning stage."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo.hub import ModelLoadError
from ganzoo.models import DeblurUNet

from conftest import TINY_UNET, load_train_script, save


def test_train_script_holds_out_and_keeps_history_across_runs(run_script, lai_set, tmp_path):
    train = tmp_path / "train"
    for i in range(2):
        save(torch.rand(1, 3, 48, 48), train / f"fresh_{i}.png")
    Image.open(lai_set / "sharp" / "chelsea.png").save(train / "copy.png")  # an evaluation image
    common = ["--train-dirs", train, "--held-out", lai_set, "--crop-size", "16", "--max-kernel", "15",
              "--lengths", "2", "20", "--batch-size", "2", "--channels", "4", "--encoder-blocks", "1", "1",
              "--middle-blocks", "1", "--decoder-blocks", "1", "1", "--report-to", "none", "--cpu",
              "--sample-every", "100"]
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


def test_train_script_starts_from_a_checkpoint_only_when_told(run_script, tmp_path):
    train = tmp_path / "train"
    for i in range(2):
        save(torch.rand(1, 3, 48, 48), train / f"fresh_{i}.png")
    tiny = ["--channels", "4", "--encoder-blocks", "1", "1", "--middle-blocks", "1", "--decoder-blocks", "1", "1"]
    first = tmp_path / "first"
    run_script("train_deblur_unet", ["--train-dirs", train, "--crop-size", "16", "--max-kernel", "15", "--lengths",
                                     "2", "20", "--batch-size", "2", *tiny, "--report-to", "none", "--cpu",
                                     "--max-steps", "1", "--sample-every", "100", "--output-dir", first])
    script = load_train_script("train_deblur_unet")

    def start(*flags: str) -> DeblurUNet:
        return script.load_model(script.parse_args(["--train-dirs", str(train), *flags, "--output-dir", "unused"]))

    checkpoint = str(first / "checkpoints" / "checkpoint-1")
    trained = ganzoo.load(first / "final").state_dict()
    for name, value in start(*tiny, "--init-from-checkpoint", checkpoint).state_dict().items():
        torch.testing.assert_close(value, trained[name])
    with pytest.raises(ModelLoadError, match="config.json"):  # --init-from takes models: no guessing at checkpoints
        start("--init-from", checkpoint)
    with pytest.raises(SystemExit, match="--middle-blocks 2 conflicts with --init-from"):
        start("--init-from", str(first / "final"), "--middle-blocks", "2")


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
                                   "--vgg-weights", "random", "--vgg-pool", "avg", "--pixel-weight", "100",
                                   "--max-steps", "1",
                                   "--report-to", "none", "--cpu", "--sample-every", "100", "--output-dir", out])
    assert isinstance(ganzoo.load(out / "final"), DeblurUNet)
    card = (out / "final" / "README.md").read_text()
    assert "fine-tuned with the DeblurGAN losses" in card and "WGAN-GP" in card
    assert "average pooling" in card and "clipped after the blur) in 20 % of crops" in card  # what the run did
    assert "Recipe: `train_scripts/train_deblurgan.sh`" in card
    assert json.loads((out / "final" / "training_history.json").read_text())[-1]["steps"] == 1
