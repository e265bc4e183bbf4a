"""Deblurring: DeblurGANGenerator / PatchGANCritic (shapes, global skip, config checks, Hub round
trips) and the WGAN-GP losses. Tiny configs only (8 channels, 1 block), CPU."""

from __future__ import annotations

import json

import pytest
import torch

import ganzoo
from ganzoo.hub import ModelLoadError
from ganzoo.models import MODEL_CLASSES, DeblurGANGenerator, PatchGANCritic
from ganzoo.models.deblurgan import MIN_SIZE

from conftest import randomize_affine_norms

TINY = {"channels": 8, "num_blocks": 1}


def tiny_generator(seed: int = 0, **kwargs) -> DeblurGANGenerator:
    torch.manual_seed(seed)
    return DeblurGANGenerator(**{**TINY, **kwargs}).eval()


def test_classes_are_registered():
    assert MODEL_CLASSES["DeblurGANGenerator"] is DeblurGANGenerator
    assert MODEL_CLASSES["PatchGANCritic"] is PatchGANCritic


# -- generator --------------------------------------------------------------------------------------

@pytest.mark.parametrize("height, width", [(37, 51), (64, 64), (8, 8), (9, 13), (30, 8)])
def test_generator_keeps_the_size_and_range(height, width):
    model = tiny_generator()
    torch.nn.init.normal_(model.tail[-1].weight, std=0.1)  # as after training: a non-zero residual
    blurred = torch.rand(2, 3, height, width)
    with torch.no_grad():
        sharp = model(blurred)
    assert sharp.shape == blurred.shape
    assert sharp.min() >= 0 and sharp.max() <= 1
    assert not torch.equal(sharp, blurred)


@pytest.mark.parametrize("height, width", [(1, 1), (7, 64), (64, 4)])
def test_generator_rejects_images_below_the_minimum(height, width):
    with pytest.raises(ValueError, match=f"at least {MIN_SIZE}x{MIN_SIZE}"):
        tiny_generator()(torch.rand(1, 3, height, width))


def test_untrained_generator_is_the_identity():
    model = tiny_generator()  # the last layer starts at zero, so training starts from the input's score
    with torch.no_grad():
        blurred = torch.rand(2, 3, 37, 51)
        assert torch.equal(model(blurred), blurred)


def test_generator_trains_with_dropout_and_gradients_reach_the_input():
    model = tiny_generator(dropout=0.5).train()
    blurred = torch.rand(2, 3, 20, 24, requires_grad=True)
    model(blurred).mean().backward()
    assert blurred.grad is not None and blurred.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())


# -- config checks ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, kwargs, match", [
    (DeblurGANGenerator, {"channels": 10**6}, "channels=1000000"),
    (DeblurGANGenerator, {"channels": 2.5}, "channels=2.5"),
    (DeblurGANGenerator, {"num_blocks": 0}, "num_blocks=0"),
    (DeblurGANGenerator, {"dropout": 2.0}, "dropout=2.0"),
    (DeblurGANGenerator, {"dropout": True}, "dropout=True"),
    (PatchGANCritic, {"channels": 10**6}, "channels=1000000"),
    (PatchGANCritic, {"num_layers": 0}, "num_layers=0"),
    (PatchGANCritic, {"num_layers": 2.5}, "num_layers=2.5"),
])
def test_bad_config_fails_before_allocating(cls, kwargs, match, monkeypatch):
    monkeypatch.setattr(torch.nn.Conv2d, "__init__", lambda *a, **k: pytest.fail("allocated"))
    with pytest.raises(ModelLoadError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("make, size", [
    (lambda: tiny_generator(seed=3, dropout=0.25), (37, 51)),
    (lambda: PatchGANCritic(channels=4, num_layers=2), (40, 48)),
], ids=["DeblurGANGenerator", "PatchGANCritic"])
def test_hub_round_trip(make, size, tmp_path):
    torch.manual_seed(3)
    model = make()
    randomize_affine_norms(model)
    model.eval().save_pretrained(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["_class_name"] == type(model).__name__
    loaded = ganzoo.load(tmp_path / "model")
    assert type(loaded) is type(model) and not loaded.training
    assert loaded._hub_mixin_config == model._hub_mixin_config
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


# -- critic -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("height, width, out", [(64, 64, (6, 6)), (70, 90, (6, 9)), (24, 24, (1, 1))])
def test_critic_gives_a_score_map(height, width, out):
    torch.manual_seed(0)
    critic = PatchGANCritic(channels=4)
    assert critic.min_size == 24
    assert critic(torch.rand(2, 3, height, width)).shape == (2, 1, *out)


def test_critic_rejects_images_below_the_minimum():
    with pytest.raises(ValueError, match="at least 24x24"):
        PatchGANCritic(channels=4)(torch.rand(1, 3, 23, 64))


def test_critic_has_no_batch_norm_and_a_70_pixel_receptive_field():
    critic = PatchGANCritic(channels=4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())
    # receptive field of 4x4 convs with strides 2, 2, 2, 1, 1: 1 + 3 * (1 + 2 + 4 + 8 + 8) = 70
    rf, jump = 1, 1
    for conv in (m for m in critic.modules() if isinstance(m, torch.nn.Conv2d)):
        rf, jump = rf + (conv.kernel_size[0] - 1) * jump, jump * conv.stride[0]
    assert rf == 70
