"""DeblurUNet: sizes, Hub round trip and config checks, receptive field."""

from __future__ import annotations

import pytest
import torch

import ganzoo
from ganzoo.hub import ModelLoadError
from ganzoo.models import MODEL_CLASSES, DeblurUNet

from conftest import TINY_UNET


# -- the model ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("height, width", [(1, 1), (5, 9), (37, 51), (64, 64)])
def test_unet_keeps_odd_sizes(height, width):
    torch.manual_seed(0)
    model = DeblurUNet(**TINY_UNET).eval()
    torch.nn.init.normal_(model.ending.weight, std=0.1)
    blurred = torch.rand(2, 3, height, width)
    with torch.no_grad():
        out = model(blurred)
    assert out.shape == blurred.shape and torch.isfinite(out).all()
    assert (out - blurred).abs().max() > 1e-3  # the correction reaches images of every size


@pytest.mark.parametrize("bias, edge", [(2.0, 1.0), (-2.0, 0.0)])
def test_the_output_is_the_input_plus_the_correction_kept_to_the_pixel_range(bias, edge):
    """A correction past [0, 1] stops exactly at its edge; one inside passes unchanged (no squashing)."""
    torch.manual_seed(0)
    model = DeblurUNet(**TINY_UNET).eval()
    torch.nn.init.zeros_(model.ending.weight)  # the correction is then the ending's bias, everywhere
    torch.nn.init.constant_(model.ending.bias, bias)
    blurred = torch.rand(1, 3, 37, 51)
    with torch.no_grad():
        assert torch.equal(model(blurred), torch.full_like(blurred, edge))
        torch.nn.init.constant_(model.ending.bias, 0.25)
        torch.testing.assert_close(model(blurred / 2), blurred / 2 + 0.25)


def test_unet_hub_round_trip_and_config_checks(tmp_path):
    assert MODEL_CLASSES["DeblurUNet"] is DeblurUNet
    torch.manual_seed(0)
    model = DeblurUNet(**TINY_UNET).eval()
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
