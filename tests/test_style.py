"""Style transfer: TransformerNet and AdaINStyleTransfer (sizes, alpha, interpolation, colour
preservation, config checks, Hub round trips), the style losses, `pipelines.stylize`, `ganzoo stylize`
and smoke runs of both train scripts. Tiny configs, random-weight VGG, CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

import ganzoo
from ganzoo import pipelines
from ganzoo.cli import main as cli_main
from ganzoo.hub import ModelLoadError
from ganzoo.losses import gram_matrix
from ganzoo.models import MODEL_CLASSES, AdaINStyleTransfer, TransformerNet
from ganzoo.models.style import preserve_color, rgb_to_ycbcr, ycbcr_to_rgb
from ganzoo.models.vgg import VGGWeightsError, adain, mean_std

TINY_NET = {"channels": 4, "num_blocks": 1}
TINY_ADAIN = {"channels": 4, "encoder_weights": "random"}


def tiny_net(seed: int = 0) -> TransformerNet:
    torch.manual_seed(seed)
    return TransformerNet(**TINY_NET).eval()


@pytest.fixture(scope="module")
def adain_model() -> AdaINStyleTransfer:
    torch.manual_seed(0)
    model = AdaINStyleTransfer(**TINY_ADAIN).eval()
    with torch.no_grad():  # lift the untrained decoder's output into [0, 1], so that clamping hides nothing
        model.decoder[-1][1].weight.mul_(0.1)
        model.decoder[-1][1].bias.fill_(0.5)
    return model


def photo(size: int = 64, which=data.astronaut) -> torch.Tensor:
    """A real photo crop as [1,3,size,size] in [0, 1]."""
    image = Image.fromarray(which()).resize((size, size), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None].float() / 255


def test_classes_are_registered():
    assert MODEL_CLASSES["TransformerNet"] is TransformerNet
    assert MODEL_CLASSES["AdaINStyleTransfer"] is AdaINStyleTransfer


# -- models -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("height, width", [(8, 8), (9, 13), (37, 51), (64, 30)])
def test_transformer_keeps_the_size_and_range(height, width):
    x = torch.rand(2, 3, height, width)
    with torch.no_grad():
        y = tiny_net()(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("height, width", [(17, 23), (37, 51), (16, 16)])
def test_adain_keeps_the_size_of_the_content(adain_model, height, width):
    content, style = torch.rand(2, 3, height, width), torch.rand(1, 3, 29, 20)
    with torch.no_grad():
        out = adain_model(content, style, alpha=0.7)
    assert out.shape == content.shape and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("make, shape, match", [
    (tiny_net, (1, 3, 7, 20), "at least 8x8"),
    (tiny_net, (1, 1, 20, 20), r"RGB images of shape \[N,3,H,W\]"),
])
def test_too_small_inputs_are_clear_errors(make, shape, match):
    with pytest.raises(ValueError, match=match):
        make()(torch.rand(*shape))


def test_adain_too_small_content_or_style(adain_model):
    with pytest.raises(ValueError, match="content images of at least 16x16"):
        adain_model(torch.rand(1, 3, 15, 40), torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="style images of at least 16x16"):
        adain_model(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 8))
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        adain_model(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), alpha=1.5)


def test_adain_alpha_zero_returns_the_content_exactly(adain_model):
    content = torch.rand(1, 3, 37, 51)
    with torch.no_grad():
        assert torch.equal(adain_model(content, torch.rand(1, 3, 32, 32), alpha=0.0), content)
        assert not torch.equal(adain_model(content, torch.rand(1, 3, 32, 32), alpha=0.1), content)


def test_adain_style_interpolation(adain_model):
    content, a, b = torch.rand(1, 3, 32, 40), torch.rand(1, 3, 32, 32), torch.rand(1, 3, 24, 48) * 0.5
    with torch.no_grad():
        only_a = adain_model(content, a)
        assert torch.allclose(adain_model.mix(content, [a, b], [1.0, 0.0]), only_a, atol=1e-6)
        assert torch.allclose(adain_model.mix(content, [a, b], [3.0, 0.0]), only_a, atol=1e-6)  # normalised
        half = adain_model.mix(content, [a, b], [0.5, 0.5])
        features = adain_model.encode(content)["relu4_1"]  # 32x40: no padding needed
        target = sum(0.5 * adain(features, adain_model.style_features(s)) for s in (a, b))
        assert torch.allclose(half, adain_model.decode(target).clamp(0, 1), atol=1e-6)
        assert not torch.equal(half, only_a) and not torch.equal(half, adain_model(content, b))
    with pytest.raises(ValueError, match="one weight per style"):
        adain_model.mix(content, [a, b], [1.0])
    with pytest.raises(ValueError, match="non-negative"):
        adain_model.mix(content, [a, b], [1.0, -0.5])


def test_adain_encoder_is_config_not_weights(adain_model):
    keys = list(adain_model.state_dict())
    assert keys and all(k.startswith("decoder.") for k in keys)
    assert all(p.requires_grad for p in adain_model.parameters())  # only the decoder trains
    assert not any(p.requires_grad for p in adain_model.encoder.parameters())
    copy = AdaINStyleTransfer(**TINY_ADAIN).double()  # the hidden encoder follows dtype/device moves
    assert next(copy.encoder.parameters()).dtype == torch.float64
    assert copy(torch.rand(1, 3, 16, 16, dtype=torch.float64), torch.rand(1, 3, 16, 16, dtype=torch.float64)).dtype \
        == torch.float64
    assert "fixed random weights" in adain_model.encoder.describe()


def test_adain_imagenet_encoder_without_weights_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(VGGWeightsError, match="never downloads them silently"):
        AdaINStyleTransfer(channels=4)  # the default encoder is ImageNet VGG19: no silent fallback


@pytest.mark.parametrize("cls, kwargs, match", [
    (TransformerNet, {"channels": 10**6}, "channels=1000000"),
    (TransformerNet, {"num_blocks": 2.5}, "num_blocks=2.5"),
    (AdaINStyleTransfer, {"channels": 0}, "channels=0"),
    (AdaINStyleTransfer, {"encoder_weights": "bogus"}, "encoder_weights='bogus'"),
    (AdaINStyleTransfer, {"encoder_seed": -1, "encoder_weights": "random"}, "encoder_seed=-1"),
])
def test_bad_config_fails_before_allocating(cls, kwargs, match, monkeypatch):
    monkeypatch.setattr(torch.nn.Conv2d, "__init__", lambda *a, **k: pytest.fail("allocated"))
    with pytest.raises(ModelLoadError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("kind", ["TransformerNet", "AdaINStyleTransfer"])
def test_hub_round_trip(kind, tmp_path):
    torch.manual_seed(3)
    model = tiny_net(3) if kind == "TransformerNet" else AdaINStyleTransfer(**TINY_ADAIN, encoder_seed=5)
    for module in model.modules():  # non-default affine norm parameters, so that they are checked too
        if isinstance(module, torch.nn.InstanceNorm2d) and module.affine:
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    model.eval().save_pretrained(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["_class_name"] == kind
    loaded = ganzoo.load(tmp_path / "model")
    assert type(loaded) is type(model) and not loaded.training
    assert loaded._hub_mixin_config == model._hub_mixin_config
    x = torch.rand(1, 3, 37, 29)
    with torch.no_grad():
        if kind == "TransformerNet":
            assert torch.equal(model(x), loaded(x))
        else:
            style = torch.rand(1, 3, 32, 32)
            assert torch.equal(model(x, style, 0.6), loaded(x, style, 0.6))


# -- colour preservation and losses -----------------------------------------------------------------

def test_ycbcr_round_trip_and_known_values():
    x = torch.rand(2, 3, 5, 7)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, atol=1e-6)
    grey = torch.full((1, 3, 2, 2), 0.25)
    assert torch.allclose(rgb_to_ycbcr(grey), torch.tensor([0.25, 0.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2),
                          atol=1e-6)


def test_preserve_color_keeps_the_content_chroma():
    content = photo(48) * 0.6 + 0.2  # inside the gamut, so the final clamp changes nothing
    stylised = torch.rand(1, 3, 48, 48) * 0.4 + 0.3
    out = preserve_color(content, stylised)
    out_ycc, content_ycc, stylised_ycc = rgb_to_ycbcr(out), rgb_to_ycbcr(content), rgb_to_ycbcr(stylised)
    unclipped = ((ycbcr_to_rgb(torch.cat([stylised_ycc[:, :1], content_ycc[:, 1:]], 1)) - out).abs() < 1e-6).all(1)
    assert unclipped.float().mean() > 0.9
    assert torch.allclose(out_ycc[:, 1:].permute(1, 0, 2, 3)[:, unclipped],
                          content_ycc[:, 1:].permute(1, 0, 2, 3)[:, unclipped], atol=1e-5)
    assert torch.allclose(out_ycc[:, 0][unclipped], stylised_ycc[:, 0][unclipped], atol=1e-5)


def test_gram_matrix_and_adain_statistics():
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # N=1, C=2, H=1, W=2
    assert torch.allclose(gram_matrix(features), torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4)
    content, style = torch.randn(3, 8, 6, 5), torch.randn(1, 8, 7, 4) * 3 + 2
    mean, std = mean_std(adain(content, style))
    s_mean, s_std = mean_std(style)
    assert torch.allclose(mean, s_mean.expand_as(mean), atol=1e-5)
    assert torch.allclose(std, s_std.expand_as(std), atol=1e-3)


# -- pipelines --------------------------------------------------------------------------------------

def test_stylize_fast_net_alpha_blends_in_image_space():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (21, 17, 4), dtype=np.uint8), "RGBA")
    net = tiny_net()
    full = pipelines.stylize(image, net, device="cpu")
    assert full.size == image.size and full.mode == "RGBA"
    assert np.array_equal(np.asarray(full)[..., 3], np.asarray(image)[..., 3])  # alpha kept
    assert np.array_equal(np.asarray(pipelines.stylize(image, net, alpha=0.0)), np.asarray(image))
    half = np.asarray(pipelines.stylize(image, net, alpha=0.5), dtype=float)[..., :3]
    expected = (np.asarray(full, dtype=float)[..., :3] + np.asarray(image, dtype=float)[..., :3]) / 2
    assert np.abs(half - expected).max() <= 1.01


def test_stylize_adain_with_a_style_file_tiles_and_preserves_colour(adain_model, tmp_path):
    style_path = tmp_path / "style.png"
    Image.fromarray(data.coffee()).save(style_path)
    content = Image.fromarray(data.chelsea()[:45, :70])
    out = pipelines.stylize(content, adain_model, style=style_path, alpha=0.8)
    assert out.size == content.size and out.mode == "RGB"
    assert pipelines.stylize(content, adain_model, style=style_path, tile=40).size == content.size
    kept = pipelines.stylize(content, adain_model, style=style_path, preserve_color=True)
    def chroma(image: Image.Image) -> torch.Tensor:
        return rgb_to_ycbcr(torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None])[:, 1:]

    assert (chroma(kept) - chroma(content)).abs().mean() < (chroma(out) - chroma(content)).abs().mean()
    mixed = pipelines.stylize(content, adain_model, style=[style_path, Image.fromarray(data.astronaut())],
                              style_weights=[0.5, 0.5])
    assert mixed.size == content.size


def test_stylize_wrong_arguments(adain_model):
    content = Image.new("RGB", (20, 20))
    with pytest.raises(ValueError, match="has its style built in"):
        pipelines.stylize(content, tiny_net(), style=content)
    with pytest.raises(ValueError, match="AdaIN needs a style image"):
        pipelines.stylize(content, adain_model)
    with pytest.raises(ValueError, match="alpha must be a number from 0 to 1"):
        pipelines.stylize(content, tiny_net(), alpha=2)


# -- command line -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, adain_model) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("style-models")
    tiny_net().save_pretrained(root / "style-tiny")
    adain_model.save_pretrained(root / "adain")
    return {"fast": root / "style-tiny", "adain": root / "adain"}


def test_cli_stylize_fast_and_adain(model_dirs, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i, size in enumerate([(19, 23), (32, 17)]):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (*size, 3), dtype=np.uint8)).save(inputs / f"{i}.png")
    (inputs / "bad.png").write_text("not an image")
    code = cli_main(["stylize", str(inputs), "-o", str(tmp_path / "fast"), "--style", str(model_dirs["fast"]),
                     "--alpha", "0.8", "--device", "cpu"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "bad.png" in errors[0]
    assert sorted(p.name for p in (tmp_path / "fast").iterdir()) == ["0.png", "1.png"]
    assert Image.open(tmp_path / "fast" / "1.png").size == (17, 32)
    style = tmp_path / "painting.jpg"
    Image.fromarray(data.coffee()).save(style)
    code = cli_main(["stylize", str(inputs / "0.png"), "-o", str(tmp_path / "adain"), "--style", str(style),
                     "--adain-model", str(model_dirs["adain"]), "--preserve-color", "--tile", "64"])
    assert code == 0 and Image.open(tmp_path / "adain" / "0.png").size == (23, 19)


def test_cli_stylize_user_errors(model_dirs, tmp_path, capsys):
    image = tmp_path / "a.png"
    Image.new("RGB", (20, 20)).save(image)
    assert cli_main(["stylize", str(image), "-o", str(tmp_path / "o"), "--style", "no-such-style"]) == 2
    assert "no-such-style" in capsys.readouterr().err
    # a style image with a fast-style model as the AdaIN model: the wrong kind of model
    assert cli_main(["stylize", str(image), "-o", str(tmp_path / "o"), "--style", str(image),
                     "--adain-model", str(model_dirs["fast"])]) == 2
    assert "not a AdaINStyleTransfer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["stylize", str(image), "-o", str(tmp_path / "o"), "--style", "mosaic", "--alpha", "1.5"])


def test_style_names_resolve_to_the_registry():
    from ganzoo.registry import fast_style_name

    assert fast_style_name("mosaic") == "style-mosaic"
    assert fast_style_name("starry_night") == "style-starry-night"
    assert fast_style_name("style-udnie") == "style-udnie"
    assert fast_style_name("adain") is None and fast_style_name("srgan-x4") is None


# -- training smoke runs ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def image_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("style-data")
    for folder, images in (("content", [data.astronaut(), data.chelsea(), data.coffee()]),
                           ("styles", [data.rocket(), data.colorwheel()[..., :3]])):
        (root / folder).mkdir()
        for i, array in enumerate(images):
            Image.fromarray(array).resize((64, 48)).save(root / folder / f"{i}.png")
    return {"content": root / "content", "styles": root / "styles"}


def test_train_style_smoke(run_script, image_dirs, tmp_path):
    out = tmp_path / "run"
    run_script("train_style", [
        "--style-image", image_dirs["styles"] / "0.png", "--style-name", "rocket", "--style-credit", "skimage.data",
        "--content-dirs", image_dirs["content"], "--crop-size", "32", "--style-size", "48", "--batch-size", "2",
        "--channels", "4", "--num-blocks", "1", "--vgg-weights", "random", "--max-steps", "2",
        "--sample-every", "2", "--output-dir", out, "--report-to", "none", "--tv-weight", "0.1"])
    model = ganzoo.load(out / "final")
    assert isinstance(model, TransformerNet)
    card = (out / "final" / "README.md").read_text()
    assert "fixed random weights" in card and "skimage.data" in card and "rocket" in card
    assert (out / "final" / "style.jpg").is_file() and (out / "samples" / "step_0000002.png").is_file()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(row["loss"]) for row in log if "loss" in row)


def test_train_adain_smoke(run_script, image_dirs, tmp_path):
    out = tmp_path / "run"
    run_script("train_adain", [
        "--content-dirs", image_dirs["content"], "--style-dirs", image_dirs["styles"], "--crop-size", "32",
        "--resize", "40", "--batch-size", "2", "--channels", "4", "--vgg-weights", "random", "--max-steps", "2",
        "--sample-every", "2", "--output-dir", out, "--report-to", "none", "--identity-weight", "5"])
    model = ganzoo.load(out / "final")
    assert isinstance(model, AdaINStyleTransfer) and model._hub_mixin_config["encoder_weights"] == "random"
    card = (out / "final" / "README.md").read_text()
    assert "Encoder: VGG19 (relu1_1, relu2_1, relu3_1, relu4_1) with fixed random weights" in card
    assert "2 style images" in card and (out / "samples" / "step_0000002.png").is_file()
    assert "5.0 x the identity loss" in card
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all(row["identity"] > 0 for row in log if "loss" in row)


# -- issue 16: upsampling mode, `evaluate style` ------------------------------------------------------

def test_transformer_upsample_mode_is_config_and_keeps_the_weights(tmp_path):
    nearest = tiny_net()
    bilinear = TransformerNet(**TINY_NET, upsample="bilinear").eval()
    bilinear.load_state_dict(nearest.state_dict())  # the mode has no weights
    x = photo(32)
    with torch.no_grad():
        a, b = nearest(x), bilinear(x)
    assert a.shape == b.shape and not torch.equal(a, b)
    bilinear.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["upsample"] == "bilinear"
    loaded = ganzoo.load(tmp_path / "m")
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), b)
    assert TransformerNet(**TINY_NET).up[0].mode == "nearest"  # older configs (no key) keep their mode
    with pytest.raises(ValueError, match="upsample"):
        TransformerNet(**TINY_NET, upsample="bicubic")


def test_cli_evaluate_style_fast_and_adain(model_dirs, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(data.astronaut()[::8, ::8]).save(photos / "astronaut.png")
    Image.fromarray(data.coffee()[::8, ::8]).save(photos / "coffee.png")
    assert cli_main(["evaluate", "style", "--model", str(model_dirs["fast"]), "--data", str(photos), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 2 and [r["image"] for r in result["images"]] == ["astronaut", "coffee"]
    assert all(np.isfinite(result[k]) for k in ("grid", "grid_input", "structure_ssim"))
    assert -1 <= result["structure_ssim"] <= 1 and result["grid_input"] < 1
    assert result["precision"] in ("fp32", "bf16")
    assert cli_main(["evaluate", "style", "--model", str(model_dirs["fast"]), "--data", str(photos), "--json",
                     "--precision", "fp32"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "fp32"
    # alpha 0 returns the photos: structure SSIM 1 and the photos' own grid score
    assert cli_main(["evaluate", "style", "--model", str(model_dirs["fast"]), "--data", str(photos), "--alpha", "0",
                     "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["structure_ssim"] == pytest.approx(1) and same["grid"] == pytest.approx(same["grid_input"])
    style = tmp_path / "style.png"
    Image.fromarray(data.rocket()).save(style)
    assert cli_main(["evaluate", "style", "--model", str(model_dirs["adain"]), "--data", str(photos),
                     "--reconstruct", "--max-size", "48"]) == 0
    assert "structure_ssim" in capsys.readouterr().out
    assert cli_main(["evaluate", "style", "--model", str(model_dirs["fast"]), "--data", str(photos),
                     "--reconstruct"]) == 2
    assert "AdaIN models only" in capsys.readouterr().err
    assert cli_main(["evaluate", "style", "--model", str(model_dirs["adain"]), "--data", str(photos),
                     "--style", str(style), "--alpha", "0.5"]) == 0


def test_train_style_with_multiscale_features_and_init_from(run_script, image_dirs, tmp_path):
    start = tmp_path / "start"
    tiny_net().save_pretrained(start)
    out = tmp_path / "run"
    run_script("train_style", [
        "--style-image", image_dirs["styles"] / "0.png", "--content-dirs", image_dirs["content"],
        "--crop-size", "32", "--style-size", "48", "--batch-size", "2", "--init-from", start,
        "--upsample", "bilinear", "--features", "multiscale", "--vgg-seed", "5", "--max-steps", "2",
        "--sample-every", "2", "--output-dir", out, "--report-to", "none"])
    model = ganzoo.load(out / "final")
    assert model._hub_mixin_config == {"channels": 4, "num_blocks": 1, "upsample": "bilinear"}
    card = (out / "final" / "README.md").read_text()
    assert "multi-scale random features" in card and "seed 5" in card and "k3s2" in card
    with pytest.raises(SystemExit, match="--channels 8 conflicts with --init-from"):  # never silently replaced
        run_script("train_style", [
            "--style-image", image_dirs["styles"] / "0.png", "--content-dirs", image_dirs["content"],
            "--crop-size", "32", "--style-size", "48", "--init-from", start, "--channels", "8",
            "--features", "multiscale", "--output-dir", tmp_path / "conflict", "--report-to", "none"])


def test_adain_reflects_a_border_around_the_content_and_crops_it_back():
    from ganzoo.models.style import ADAIN_BORDER, _reflect_border

    for height, width in ((17, 20), (64, 48)):
        content = torch.rand(1, 3, height, width)
        padded, crop = _reflect_border(content)
        border = min(ADAIN_BORDER, height - 1, width - 1)
        assert padded.shape[-2] % 8 == 0 and padded.shape[-1] % 8 == 0
        assert padded.shape[-2] >= height + 2 * border and padded.shape[-1] >= width + 2 * border
        assert torch.equal(padded[crop], content)
        assert torch.equal(padded[..., border - 1, border:border + width], content[..., 1, :])  # a reflection
