"""Style transfer: TransformerNet and AdaINStyleTransfer (sizes, alpha, interpolation, colour
preservation, config checks, Hub round trips), the style losses, `pipelines.stylize`, `ganzoo stylize`
and smoke runs of both train scripts. Tiny configs, random-weight VGG, CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

import ganzoo
from ganzoo.hub import ModelLoadError
from ganzoo.models import MODEL_CLASSES, AdaINStyleTransfer, TransformerNet
from ganzoo.models.style import preserve_color, rgb_to_ycbcr, ycbcr_to_rgb
from ganzoo.models.vgg import VGGWeightsError, adain

from conftest import TINY_ADAIN, TINY_NET, randomize_affine_norms, tiny_net


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
    randomize_affine_norms(model)
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


# -- colour preservation -----------------------------------------------------------------

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


# -- issue 16: upsampling mode ------------------------------------------------------

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
