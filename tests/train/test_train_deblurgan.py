"""train_deblurgan.py: tiny smoke runs, its stages and refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ganzoo
from ganzoo.hub import ModelLoadError
from ganzoo.models import DeblurGANGenerator, PatchGANCritic

from conftest import load_train_script, save, shake


def test_training_smoke_synthetic_and_pairs(run_script, levin_like, tmp_path):
    sharp_dir = tmp_path / "sharp_images"
    for i in range(3):
        save(torch.rand(1, 3, 48, 56), sharp_dir / f"{i}.png")
    kernel_dir = tmp_path / "kernels"
    kernel_dir.mkdir()
    np.savez(kernel_dir / "k.npz", a=shake(5).numpy())
    out = tmp_path / "run"
    run_script("train_deblurgan", [
        "--train-dirs", sharp_dir, "--pair-dirs", levin_like, "--kernels-dir", kernel_dir, "--kernel-size", "9",
        "--val-dir", levin_like, "--eval-every", "2", "--crop-size", "32", "--batch-size", "4",
        "--channels", "4", "--num-blocks", "1", "--critic-channels", "4", "--vgg-weights", "random",
        "--max-steps", "2", "--output-dir", out, "--report-to", "none", "--cpu", "--sample-every", "2"])
    model = ganzoo.load(out / "final")
    assert isinstance(model, DeblurGANGenerator) and model.tail[1].in_channels == 4
    card = (out / "final" / "README.md").read_text()
    assert "fixed random weights" in card and "WGAN-GP" in card
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any("eval/psnr" in row for row in log) and all(np.isfinite(row.get("gp", 0)) for row in log)
    assert (out / "samples" / "step_0000002.png").is_file()


def test_training_two_stages_l1_then_gan(run_script, levin_like, tmp_path):
    """The L1 stage builds no critic; the GAN stage starts from its weights."""
    common = ["--pair-dirs", levin_like, "--crop-size", "32", "--batch-size", "2", "--report-to", "none", "--cpu",
              "--max-steps", "1", "--sample-every", "100"]
    stage1 = tmp_path / "l1"
    run_script("train_deblurgan", [*common, "--channels", "4", "--num-blocks", "1", "--adversarial-weight", "0",
                                   "--perceptual-weight", "0", "--pixel-weight", "1", "--beta1", "0.9",
                                   "--lr", "1e-2", "--output-dir", stage1])
    assert not (stage1 / "critic").exists()
    card = (stage1 / "final" / "README.md").read_text()
    assert "no critic" in card and "WGAN-GP critic" not in card and "betas 0.9/0.999" in card
    pretrained = ganzoo.load(stage1 / "final")
    assert pretrained.tail[1].weight.abs().sum() > 0  # it trained: the zero-initialised tail moved
    stage2 = tmp_path / "gan"
    run_script("train_deblurgan", [*common, "--init-from", stage1 / "final", "--critic-channels", "4",
                                   "--vgg-weights", "random", "--lr", "0", "--output-dir", stage2])
    model = ganzoo.load(stage2 / "final")
    for name, value in pretrained.state_dict().items():  # lr 0: the GAN stage kept the loaded weights
        torch.testing.assert_close(model.state_dict()[name], value)
    assert (stage2 / "critic" / "model.safetensors").is_file()
    card2 = (stage2 / "final" / "README.md").read_text()
    assert f"Started from `{stage1 / 'final'}`" in card2
    assert "\nchannels = 4\n" in card2 and "\nnum_blocks = 1\n" in card2  # the loaded model's, not the flags' defaults
    script = load_train_script("train_deblurgan")

    def start(*flags: str):
        return script.load_generator(script.parse_args(["--pair-dirs", str(levin_like), *flags,
                                                        "--output-dir", str(tmp_path / "unused")]))

    checkpoint = str(stage1 / "checkpoints" / "checkpoint-1")  # the L1 stage's checkpoint is a valid start too
    from_checkpoint = start("--channels", "4", "--num-blocks", "1", "--init-from-checkpoint", checkpoint)
    for name, value in pretrained.state_dict().items():
        torch.testing.assert_close(from_checkpoint.state_dict()[name], value)
    with pytest.raises(ModelLoadError, match="wrong shape"):  # the flags must give the checkpoint's architecture
        start("--init-from-checkpoint", checkpoint)
    with pytest.raises(ModelLoadError, match="config.json"):  # --init-from takes models: no guessing at checkpoints
        start("--init-from", checkpoint)
    with pytest.raises(SystemExit):  # one start or the other
        start("--init-from", str(stage1 / "final"), "--init-from-checkpoint", checkpoint)


def test_init_from_keeps_the_loaded_architecture_and_refuses_flags_that_differ(levin_like, tmp_path):
    DeblurGANGenerator(channels=4, num_blocks=1).save_pretrained(tmp_path / "start")
    script = load_train_script("train_deblurgan")
    common = ["--pair-dirs", str(levin_like), "--init-from", str(tmp_path / "start"), "--output-dir", str(tmp_path)]
    args = script.parse_args([*common, "--channels", "4"])  # a flag that agrees is fine
    script.load_generator(args)
    assert (args.channels, args.num_blocks, args.dropout) == (4, 1, 0.0)  # the card's arguments say what trains
    with pytest.raises(SystemExit, match="--num-blocks 2 conflicts with --init-from .*num_blocks=1"):
        script.load_generator(script.parse_args([*common, "--num-blocks", "2"]))
    args = script.parse_args(["--pair-dirs", str(levin_like), "--output-dir", str(tmp_path), "--num-blocks", "2"])
    assert script.load_generator(args)._hub_mixin_config == {"channels": 64, "num_blocks": 2, "dropout": 0.0}


def test_training_rejects_bad_start_and_weights(run_script, levin_like, tmp_path):
    not_a_deblurrer = tmp_path / "critic"
    PatchGANCritic(channels=4).save_pretrained(not_a_deblurrer)
    with pytest.raises(SystemExit, match="DeblurGANGenerator"):
        run_script("train_deblurgan", ["--pair-dirs", levin_like, "--init-from", not_a_deblurrer,
                                       "--output-dir", tmp_path, "--adversarial-weight", "0", "--perceptual-weight", "0",
                                       "--pixel-weight", "1"])
    with pytest.raises(SystemExit):
        run_script("train_deblurgan", ["--pair-dirs", levin_like, "--output-dir", tmp_path, "--adversarial-weight",
                                       "0", "--perceptual-weight", "0"])


def test_training_needs_data(run_script, tmp_path):
    with pytest.raises(SystemExit):
        run_script("train_deblurgan", ["--output-dir", tmp_path, "--vgg-weights", "random"])


def test_a_training_run_refuses_held_out_kernels(run_script, lai_set, photos, tmp_path):
    with pytest.raises(ValueError, match="held-out evaluation set"):
        run_script("train_deblurgan", ["--train-dirs", photos, "--kernels-dir", lai_set / "kernels",
                                       "--held-out", lai_set, "--output-dir", tmp_path / "run",
                                       "--vgg-weights", "random", "--max-steps", "1", "--cpu"])
    assert not (tmp_path / "run" / "final").exists()
