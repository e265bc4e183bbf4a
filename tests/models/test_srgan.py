"""SRResNet and the SRGAN discriminator: shapes, config checks, Hub round trips, ICNR init."""

from __future__ import annotations

import json

import pytest
import torch

import ganzoo
from ganzoo.hub import ModelLoadError
from ganzoo.models import SRGANDiscriminator, SRResNet

from conftest import TINY_SRRESNET, tiny_srresnet


# -- models -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("upsample", ["pixelshuffle", "bilinear"])
@pytest.mark.parametrize("scale", [2, 4, 8])
def test_srresnet_output_shape_on_odd_sizes(scale, upsample):
    torch.manual_seed(0)
    model = SRResNet(scale=scale, upsample=upsample, **TINY_SRRESNET).eval()
    assert model.scale == scale
    with torch.no_grad():
        out = model(torch.rand(2, 3, 7, 11))
    assert out.shape == (2, 3, 7 * scale, 11 * scale)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"scale": 3}, "scale=3"),
    ({"scale": 16}, "scale=16"),
    ({"channels": 10**9}, "channels=1000000000"),
    ({"channels": 0}, "channels=0"),
    ({"num_blocks": 10**6}, "num_blocks=1000000"),
    ({"scale": True}, "scale=True"),
    ({"upsample": "nearest"}, "upsample='nearest'"),
])
def test_srresnet_bad_config_fails_before_allocating(kwargs, match, monkeypatch):
    def no_layers(*args, **kw):
        raise AssertionError("a layer was built before the config was checked")

    monkeypatch.setattr(torch.nn.Conv2d, "__init__", no_layers)
    with pytest.raises(ModelLoadError, match=match):
        SRResNet(**kwargs)


@pytest.mark.parametrize("channels", [0, 513, 10**9])
def test_discriminator_bad_channels_fail_before_allocating(channels, monkeypatch):
    monkeypatch.setattr(torch.nn.Conv2d, "__init__", lambda *a, **k: pytest.fail("allocated"))
    with pytest.raises(ModelLoadError, match="channels"):
        SRGANDiscriminator(channels=channels)


@pytest.mark.parametrize("height, width", [(48, 48), (96, 96), (100, 72)])
def test_discriminator_accepts_any_crop_size(height, width):
    torch.manual_seed(0)
    disc = SRGANDiscriminator(channels=4).eval()
    images = torch.rand(3, 3, height, width)
    with torch.no_grad():
        logits = disc(images)
        again, features = disc(images, return_features=True)
    assert logits.shape == (3,) and torch.equal(logits, again)
    assert len(features) == 8
    widths = [4, 4, 8, 8, 16, 16, 32, 32]
    for i, (feat, channels) in enumerate(zip(features, widths, strict=True)):
        stride = 2 ** ((i + 1) // 2)  # layers 1, 3, 5, 7 halve the size
        assert feat.shape == (3, channels, -(-height // stride), -(-width // stride)), i


def test_discriminator_gradient_reaches_images():
    torch.manual_seed(0)
    disc = SRGANDiscriminator(channels=4)
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    disc(images).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


@pytest.mark.parametrize("make", [lambda: tiny_srresnet(2, seed=3), lambda: SRGANDiscriminator(channels=4),
                                  lambda: SRResNet(scale=4, upsample="bilinear", **TINY_SRRESNET)],
                         ids=["SRResNet", "SRGANDiscriminator", "SRResNet-bilinear"])
def test_hub_round_trip(make, tmp_path):
    torch.manual_seed(3)
    model = make()
    for module in model.modules():  # non-trivial BatchNorm statistics, so that buffers are checked too
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    model.eval().save_pretrained(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["_class_name"] == type(model).__name__
    loaded = ganzoo.load(tmp_path / "model")
    assert type(loaded) is type(model) and not loaded.training
    x = torch.rand(2, 3, 24, 20)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_icnr_makes_conv_and_pixel_shuffle_a_nearest_upsampling_at_init():
    from torch import nn

    from ganzoo.models.srgan import icnr_

    torch.manual_seed(0)
    conv = nn.Conv2d(6, 4 * 5, 3, padding=1)
    icnr_(conv.weight, 2)
    nn.init.zeros_(conv.bias)
    x = torch.randn(2, 6, 7, 9)
    out = nn.PixelShuffle(2)(conv(x))
    # the claimed function: a conv to 5 channels (every 4th filter), then nearest x2
    small = nn.functional.conv2d(x, conv.weight[::4], padding=1)
    torch.testing.assert_close(out, nn.functional.interpolate(small, scale_factor=2, mode="nearest"))
    # and a fresh SRResNet's upsampling starts that way too (per-group filters equal), yet differs across groups
    weight = SRResNet(**TINY_SRRESNET).upsample[0].weight
    groups = weight.reshape(-1, 4, *weight.shape[1:])
    assert torch.equal(groups, groups[:, :1].expand_as(groups)) and not torch.equal(groups[0, 0], groups[1, 0])
    with pytest.raises(ValueError, match="groups"):
        icnr_(torch.empty(6, 3, 3, 3), 2)


def _phase_spread(image: torch.Tensor, period: int = 4) -> float:
    """How far apart the period x period pixel phases of an image's interior are, on average."""
    interior = image[..., 32:-32, 32:-32]
    phases = torch.nn.functional.pixel_unshuffle(interior, period).unflatten(1, (3, period * period))
    return (phases - phases.mean(2, keepdim=True)).abs().mean().item()


def test_resize_convolution_paints_no_lattice_where_sub_pixel_convolution_does():
    """On a flat input the bilinear (resize-convolution) upsampler gives a flat output, whatever its weights;
    sub-pixel convolution with independent phase filters (a trained one's state) gives a period-2/4 pattern."""
    flat = torch.full((1, 3, 24, 24), 0.4)
    torch.manual_seed(0)
    resize = SRResNet(scale=4, upsample="bilinear", **TINY_SRRESNET).eval()
    subpixel = SRResNet(scale=4, **TINY_SRRESNET).eval()
    for module in subpixel.upsample:
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.1)  # no longer ICNR: each phase its own filters
            torch.nn.init.normal_(module.bias, std=0.1)
    with torch.no_grad():
        assert _phase_spread(resize(flat)) < 1e-6
        assert _phase_spread(subpixel(flat)) > 1e-3
