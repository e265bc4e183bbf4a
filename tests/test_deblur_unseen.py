"""Deblurring unseen blur: the Lai layout and prefix pairing, seeded evaluation sets, the held-out guard,
large-kernel training pairs, the DeblurUNet model and its train script. Tiny sizes, CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import load_train_script
from PIL import Image
from skimage import data as skdata

import ganzoo
from ganzoo import cli, degrade, imaging
from ganzoo.blur_sets import HeldOut, make_blur_set, set_kernels
from ganzoo.data import blur_pairs, sharp_stem_of
from ganzoo.evaluate import deblur_cases, evaluate_deblur
from ganzoo.hub import ModelLoadError
from ganzoo.models import MODEL_CLASSES, DeblurUNet

TINY = {"channels": 4, "encoder_blocks": [1, 1], "middle_blocks": 1, "decoder_blocks": [1, 1]}


def save(tensor: torch.Tensor, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    imaging.tensor_to_image(tensor).save(path)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Three small photos (64x72) in a folder, as a set's source images."""
    folder = tmp_path_factory.mktemp("photos")
    for name, image in (("astronaut", skdata.astronaut()), ("coffee", skdata.coffee()), ("chelsea", skdata.chelsea())):
        Image.fromarray(image[40:104, 60:132]).save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="module")
def lai_set(tmp_path_factory, photos):
    out = tmp_path_factory.mktemp("sets") / "moderate"
    return make_blur_set(imaging.list_images(photos), out, set_kernels(2, seed=0, lengths=(10, 16)), seed=0, noise=0.0)


# -- layout and pairing -------------------------------------------------------------------------------

def test_longest_sharp_stem_wins():
    stems = {"car", "car_2", "im_1", "im_10"}
    assert sharp_stem_of("car_2_kernel_01", stems) == "car_2"
    assert sharp_stem_of("car_kernel_01", stems) == "car"
    assert sharp_stem_of("im_10_ker_3", stems) == "im_10" and sharp_stem_of("im_1_ker_3", stems) == "im_1"
    assert sharp_stem_of("car_2", stems) == "car_2"  # GoPro: the same name
    assert sharp_stem_of("carpet_kernel_01", stems) is None  # a prefix must end at an underscore


def test_ambiguous_stems_pair_with_the_longest_and_read_lai_kernels(tmp_path):
    for stem in ("car", "car_2"):
        save(torch.full((1, 3, 24, 24), 0.2 if stem == "car" else 0.8), tmp_path / "sharp" / f"{stem}.png")
    kernel = degrade.shake_kernel(6, torch.Generator().manual_seed(0))
    (tmp_path / "kernels").mkdir()
    Image.fromarray((kernel / kernel.max() * 255).round().byte().numpy()).save(tmp_path / "kernels" / "kernel_01.png")
    for stem in ("car", "car_2"):
        save(torch.rand(1, 3, 24, 24), tmp_path / "blurred" / f"{stem}_kernel_01.png")
    pairs = {b.stem: s.stem for b, s in blur_pairs(tmp_path)}
    assert pairs == {"car_kernel_01": "car", "car_2_kernel_01": "car_2"}
    cases = deblur_cases(tmp_path)
    assert [c[0] for c in cases] == ["blurred/car_2_kernel_01", "blurred/car_kernel_01"]
    assert all(c[3] is not None and c[3].shape == kernel.shape for c in cases)  # the true kernel, read from kernels/
    save(torch.rand(1, 3, 24, 24), tmp_path / "blurred" / "car_kernel_07.png")
    with pytest.raises(ValueError, match="names kernel 7"):
        deblur_cases(tmp_path)


def test_lai_set_evaluates_with_the_richardson_lucy_row(lai_set):
    result = evaluate_deblur(None, lai_set, progress=False)
    assert result["n"] == 6
    explicit = evaluate_deblur(None, lai_set, degrade.load_kernels(lai_set / "kernels"), progress=False)
    assert result["psnr_richardson_lucy"] == explicit["psnr_richardson_lucy"]  # kernels/ read, numbers matched
    assert cli.main(["evaluate", "deblur", "--model", "none", "--data", str(lai_set), "--no-reference"]) == 0


# -- the evaluation sets ----------------------------------------------------------------------------

def test_sets_are_deterministic_by_seed(photos, tmp_path, capsys):
    def build(name, seed):
        out = tmp_path / name
        assert cli.main(["make-blur-set", "--images", str(photos), "--first", "2", "-o", str(out), "--kernels", "2",
                         "--sizes", "9", "15", "--seed", str(seed)]) == 0
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.png"))}

    first, again, other = build("a", 0), build("b", 0), build("c", 1)
    assert first == again and len(first) == 2 + 4 + 2  # sharp, blurred, kernels
    assert sorted(first) == ["blurred/astronaut_kernel_01.png", "blurred/astronaut_kernel_02.png",
                             "blurred/chelsea_kernel_01.png", "blurred/chelsea_kernel_02.png",
                             "kernels/kernel_01.png", "kernels/kernel_02.png", "sharp/astronaut.png", "sharp/chelsea.png"]
    assert first != other
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["sizes"] == [9, 15]
    assert cli.main(["make-blur-set", "--images", str(photos), "-o", str(tmp_path / "a"), "--lengths", "5", "9"]) == 2
    assert "not empty" in capsys.readouterr().err


def test_set_kernels_have_the_asked_sizes_and_lengths():
    sized = set_kernels(6, seed=3, sizes=(31, 75))
    assert all(31 <= k.shape[0] <= 75 and k.shape[0] % 2 == 1 for k in sized)
    # the path reaches the grid's edge: the kernel is as large as its grid says
    support = [torch.nonzero(k > 0) for k in sized]
    assert all(s.min() <= 2 or s.max() >= k.shape[0] - 3 for s, k in zip(support, sized))
    short = set_kernels(6, seed=3, lengths=(5, 30))
    assert all(k.shape[0] <= 33 and torch.isclose(k.sum(), torch.tensor(1.0)) for k in short)
    with pytest.raises(ValueError, match="one of the two"):
        set_kernels(2, seed=0)


# -- the held-out guard -------------------------------------------------------------------------------

def test_held_out_images_are_dropped_and_kernels_refused(lai_set, photos, tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    # a re-encoded copy (JPEG source -> PNG) is caught by its pixels, whatever its name
    Image.open(lai_set / "sharp" / "coffee.png").save(train / "renamed.png")
    save(torch.rand(1, 3, 40, 40), train / "fresh.png")
    guard = HeldOut([lai_set])
    kept, dropped = guard.split_images([train])
    assert [p.name for p in kept] == ["fresh.png"] and [p.name for p in dropped] == ["renamed.png"]
    set_kernel = degrade.load_kernels(lai_set / "kernels" / "kernel_02.png")[0]
    with pytest.raises(ValueError, match="held-out evaluation set"):
        guard.check_kernels([degrade.center_kernel(set_kernel, 31)], "recorded")  # zero-padded copy
    guard.check_kernels([degrade.shake_kernel(20, torch.Generator().manual_seed(9))], "recorded")  # others pass
    with pytest.raises(FileNotFoundError):
        HeldOut([tmp_path / "missing"])


def test_a_training_run_refuses_held_out_kernels(run_script, lai_set, photos, tmp_path):
    with pytest.raises(ValueError, match="held-out evaluation set"):
        run_script("train_deblurgan", ["--train-dirs", photos, "--kernels-dir", lai_set / "kernels",
                                       "--held-out", lai_set, "--output-dir", tmp_path / "run",
                                       "--vgg-weights", "random", "--max-steps", "1"])
    assert not (tmp_path / "run" / "final").exists()


# -- training pairs -------------------------------------------------------------------------------------

def test_blur_valid_is_same_blur_away_from_borders():
    image = torch.rand(2, 3, 40, 44)
    for kernel in (torch.rand(7, 9), torch.rand(4, 6)):
        top, left = (40 - 20) // 2, (44 - 20) // 2
        expected = degrade.blur(image, kernel)[..., top:top + 20, left:left + 20]
        torch.testing.assert_close(degrade.blur_valid(image, kernel, 20), expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="needs regions"):
        degrade.blur_valid(image, torch.rand(31, 31), 20)


def test_shake_blur_pairs_are_seeded_and_blurred_from_real_content():
    synth = degrade.ShakeBlur(16, lengths=(20, 30), max_kernel=15, max_noise=0.0, saturation=0.0)
    assert synth.region_size == 30
    regions = torch.rand(3, 3, 30, 30)
    blurred, sharp = synth(regions, torch.Generator().manual_seed(4))
    again, _ = synth(regions, torch.Generator().manual_seed(4))
    assert torch.equal(blurred, again) and blurred.shape == sharp.shape == (3, 3, 16, 16)
    torch.testing.assert_close(sharp, regions[:, :, 7:23, 7:23])
    assert torch.equal(blurred, imaging.quantize(blurred))  # 8-bit, as the evaluation inputs
    assert (blurred - sharp).abs().mean() > 0.05 and blurred.std() < sharp.std()  # blurred, so smoother


# -- the model ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("height, width", [(1, 1), (5, 9), (37, 51), (64, 64)])
def test_unet_keeps_odd_sizes_and_range(height, width):
    torch.manual_seed(0)
    model = DeblurUNet(**TINY).eval()
    torch.nn.init.normal_(model.ending.weight, std=0.1)
    blurred = torch.rand(2, 3, height, width)
    with torch.no_grad():
        out = model(blurred)
    assert out.shape == blurred.shape and 0 <= out.min() and out.max() <= 1


def test_unet_hub_round_trip_and_config_checks(tmp_path):
    assert MODEL_CLASSES["DeblurUNet"] is DeblurUNet
    torch.manual_seed(0)
    model = DeblurUNet(**TINY).eval()
    model.save_pretrained(tmp_path)
    loaded = ganzoo.load(tmp_path)
    assert isinstance(loaded, DeblurUNet) and loaded._hub_mixin_config["encoder_blocks"] == [1, 1]
    x = torch.rand(1, 3, 19, 23)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    with pytest.raises(ModelLoadError, match="same length"):
        DeblurUNet(channels=4, encoder_blocks=[1, 1], decoder_blocks=[1])
    with pytest.raises(ModelLoadError, match="channels"):
        DeblurUNet(channels=0)


def test_receptive_field_spans_more_than_a_75px_kernel():
    """A change in one corner reaches the opposite corner of a 160x160 image (channel attention pools it all,
    and the bottom level alone spans far more than 75 px)."""
    torch.manual_seed(0)
    model = DeblurUNet(channels=4, encoder_blocks=[1, 1, 1, 1], middle_blocks=1, decoder_blocks=[1, 1, 1, 1])
    for block in model.modules():  # trained blocks are not the identity
        if hasattr(block, "beta"):
            torch.nn.init.normal_(block.beta, std=0.5)
            torch.nn.init.normal_(block.gamma, std=0.5)
    x = torch.rand(1, 3, 160, 160, requires_grad=True)
    model.residual(x)[0, :, 150:, 150:].sum().backward()
    assert x.grad[0, :, :10, :10].abs().sum() > 0


# -- the train script ---------------------------------------------------------------------------------

def test_train_script_holds_out_and_keeps_history_across_runs(run_script, lai_set, tmp_path):
    train = tmp_path / "train"
    for i in range(2):
        save(torch.rand(1, 3, 48, 48), train / f"fresh_{i}.png")
    Image.open(lai_set / "sharp" / "chelsea.png").save(train / "copy.png")  # an evaluation image
    common = ["--train-dirs", train, "--held-out", lai_set, "--crop-size", "16", "--max-kernel", "15",
              "--lengths", "2", "20", "--batch-size", "2", "--channels", "4", "--encoder-blocks", "1", "1",
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


def test_train_script_starts_from_a_checkpoint_only_when_told(run_script, tmp_path):
    train = tmp_path / "train"
    for i in range(2):
        save(torch.rand(1, 3, 48, 48), train / f"fresh_{i}.png")
    tiny = ["--channels", "4", "--encoder-blocks", "1", "1", "--middle-blocks", "1", "--decoder-blocks", "1", "1"]
    first = tmp_path / "first"
    run_script("train_deblur_unet", ["--train-dirs", train, "--crop-size", "16", "--max-kernel", "15", "--lengths",
                                     "2", "20", "--batch-size", "2", *tiny, "--report-to", "none", "--max-steps", "1",
                                     "--sample-every", "100", "--output-dir", first])
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
    DeblurUNet(**TINY).save_pretrained(start)
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
