"""Deblurring end to end: blurred/sharp pair discovery, the benchmark, the pipeline, the CLI and training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import load_train_script
from PIL import Image
from skimage import data as skdata

import ganzoo
from ganzoo import cli, degrade, imaging, pipelines
from ganzoo.data import PairedImageBank, blur_pairs
from ganzoo.evaluate import deblur_cases, evaluate_deblur, richardson_lucy
from ganzoo.hub import ModelLoadError
from ganzoo.metrics import psnr
from ganzoo.models import DeblurGANGenerator, PatchGANCritic


def shake(seed: int, size: int = 9) -> torch.Tensor:
    return degrade.random_trajectory_kernel(size, torch.Generator().manual_seed(seed), max_length=8,
                                            min_length_fraction=1.0)


def save(tensor: torch.Tensor, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    imaging.tensor_to_image(tensor).save(path)


@pytest.fixture(scope="module")
def kernels() -> list[torch.Tensor]:
    return [shake(1), shake(2)]


@pytest.fixture(scope="module")
def levin_like(tmp_path_factory, kernels):
    """The Levin layout in small: sharp/im_K.png and blurred_x/im_K_ker_J.png, 2 images x 2 kernels."""
    root = tmp_path_factory.mktemp("levin")
    crops = [skdata.camera()[100:164, 200:264], skdata.camera()[300:364, 100:164]]
    for k, crop in enumerate(crops, 1):
        sharp = imaging.image_to_tensor(Image.fromarray(crop))[0]
        save(sharp, root / "sharp" / f"im_{k}.png")
        for j, kernel in enumerate(kernels, 1):
            save(imaging.quantize(degrade.blur(sharp, kernel)), root / "blurred_noisefree" / f"im_{k}_ker_{j}.png")
    return root


@pytest.fixture(scope="module")
def tiny_deblur_dir(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-deblur")
    DeblurGANGenerator(channels=4, num_blocks=1).eval().save_pretrained(folder)
    return folder


def test_blur_pairs_levin_and_gopro_layouts(levin_like, tmp_path):
    pairs = blur_pairs(levin_like)
    assert [(b.name, s.name) for b, s in pairs] == [
        ("im_1_ker_1.png", "im_1.png"), ("im_1_ker_2.png", "im_1.png"),
        ("im_2_ker_1.png", "im_2.png"), ("im_2_ker_2.png", "im_2.png")]
    for scene in ("GOPR0001", "GOPR0002"):
        for sub in ("blur", "sharp"):
            save(torch.rand(1, 3, 40, 48), tmp_path / "train" / scene / sub / "000001.png")
    gopro = blur_pairs(tmp_path)
    assert len(gopro) == 2 and all(b.parent.name == "blur" and s.parent.name == "sharp" for b, s in gopro)
    bank = PairedImageBank([tmp_path], min_size=32)
    blurred, sharp = bank.random_pairs(3, 32, torch.Generator().manual_seed(0))
    assert blurred.shape == sharp.shape == (3, 3, 32, 32)


def test_blur_pairs_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no blurred/sharp pairs"):
        blur_pairs(tmp_path)
    save(torch.rand(1, 3, 8, 8), tmp_path / "blur" / "a.png")
    (tmp_path / "sharp").mkdir()
    with pytest.raises(FileNotFoundError, match="no sharp image a"):
        blur_pairs(tmp_path)


def test_paired_crops_stay_aligned(tmp_path):
    sharp = torch.rand(1, 3, 50, 60)
    save(sharp, tmp_path / "s" / "sharp" / "x.png")
    save(1 - sharp, tmp_path / "s" / "blur" / "x.png")  # a known pixelwise relation
    blurred, crops = PairedImageBank([tmp_path], min_size=16).random_pairs(8, 16, torch.Generator().manual_seed(1))
    assert torch.allclose(blurred, 1 - crops, atol=1 / 255 + 1e-6)


def test_deblur_cases_pairs_and_sharp_plus_kernels(levin_like, kernels, tmp_path):
    cases = deblur_cases(levin_like, kernels)
    assert len(cases) == 4 and cases[1][0] == "blurred_noisefree/im_1_ker_2"
    assert torch.equal(cases[1][3], kernels[1])
    assert deblur_cases(levin_like)[0][3] is None  # no kernels given: no reference possible
    with pytest.raises(ValueError, match="names kernel 2, but 1 kernels"):
        deblur_cases(levin_like, kernels[:1])
    sharp_only = tmp_path / "sharp_only"
    save(torch.rand(1, 3, 40, 40), sharp_only / "a.png")
    first = deblur_cases(sharp_only, kernels)
    assert [c[0] for c in first] == ["a_ker_1", "a_ker_2"]
    assert torch.equal(first[0][1], deblur_cases(sharp_only, kernels)[0][1])  # deterministic
    with pytest.raises(ValueError, match="give the kernels"):
        deblur_cases(sharp_only)
    # Levin's own sharp/ folder with kernels: re-blurred (reflect borders), not read as the pairs beside it
    reblurred = deblur_cases(levin_like / "sharp", kernels)
    assert [c[0] for c in reblurred] == ["im_1_ker_1", "im_1_ker_2", "im_2_ker_1", "im_2_ker_2"]
    assert torch.equal(reblurred[1][1], imaging.quantize(degrade.blur(reblurred[1][2], kernels[1])))
    with pytest.raises(ValueError, match="give the kernels"):
        deblur_cases(levin_like / "sharp")


def test_evaluate_scores_identity_as_the_input_and_reference_helps(levin_like, kernels):
    result = evaluate_deblur(lambda x: x, levin_like, kernels, progress=False)
    assert result["n"] == 4
    assert result["psnr"] == pytest.approx(result["psnr_input"]) and result["ssim"] == pytest.approx(result["ssim_input"])
    assert result["psnr_richardson_lucy"] > result["psnr_input"] + 1  # the true kernel undoes most of the blur
    assert set(result["images"][0]) == {"image", "psnr", "ssim", "psnr_input", "ssim_input",
                                        "psnr_richardson_lucy", "ssim_richardson_lucy"}


def test_richardson_lucy_inverts_a_known_blur():
    sharp = imaging.image_to_tensor(Image.fromarray(skdata.astronaut()[100:164, 200:264]))[0]
    kernel = shake(3)
    blurred = degrade.blur(sharp, kernel)
    restored = richardson_lucy(blurred, kernel, iterations=50)
    assert restored.shape == sharp.shape
    assert psnr(restored.clamp(0, 1), sharp) > psnr(blurred, sharp) + 1


def test_deblur_pipeline_keeps_size_alpha_and_tiles_match(tiny_deblur_dir):
    model = ganzoo.load(tiny_deblur_dir)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (45, 71, 4), dtype=np.uint8), "RGBA")
    out = pipelines.deblur(image, model)
    assert out.size == image.size and out.mode == "RGBA"
    big = Image.fromarray(rng.integers(0, 256, (90, 130, 3), dtype=np.uint8))
    whole, tiled = pipelines.deblur(big, model), pipelines.deblur(big, model, tile=64)
    # instance norm sees each tile's statistics: close but not bit-equal to the whole image
    diff = np.abs(np.asarray(whole, np.int16) - np.asarray(tiled, np.int16))
    assert whole.size == tiled.size and diff.mean() < 8


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
        "--max-steps", "2", "--output-dir", out, "--report-to", "none", "--sample-every", "2"])
    model = ganzoo.load(out / "final")
    assert isinstance(model, DeblurGANGenerator) and model.tail[1].in_channels == 4
    card = (out / "final" / "README.md").read_text()
    assert "fixed random weights" in card and "WGAN-GP" in card
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any("eval/psnr" in row for row in log) and all(np.isfinite(row.get("gp", 0)) for row in log)
    assert (out / "samples" / "step_0000002.png").is_file()


def test_training_two_stages_l1_then_gan(run_script, levin_like, tmp_path):
    """The L1 stage builds no critic; the GAN stage starts from its weights."""
    common = ["--pair-dirs", levin_like, "--crop-size", "32", "--batch-size", "2", "--report-to", "none",
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
