"""Losses: the perceptual loss, the BCE and WGAN losses, discriminator feature matching, the Gram
matrix and the frequency loss.

Building a VGG19 costs about two seconds on a CPU (torchvision initialises the whole network,
classifier included), so the tests share instances where they can.
"""

from __future__ import annotations

import math

import pytest
import torch

from ganzoo.losses import (
    PerceptualLoss,
    d_bce_loss,
    feature_matching_loss,
    g_bce_loss,
    gradient_penalty,
    gram_matrix,
    wgan_d_loss,
    wgan_g_loss,
)
from ganzoo.models import PatchGANCritic
from ganzoo.models.vgg import adain, mean_std

from conftest import LAYERS


# -- perceptual loss --------------------------------------------------------------------------------

def test_perceptual_loss_is_zero_for_identical_images(vgg22, images):
    loss = PerceptualLoss(vgg22)
    assert loss(images, images.clone()).item() == pytest.approx(0.0, abs=1e-7)
    noisy = (images + 0.1 * torch.randn(images.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert loss(noisy, images).item() > 1e-3
    assert loss(noisy, images).item() > loss((images + noisy) / 2, images).item()  # monotone in the error


def test_perceptual_loss_gradient_reaches_the_output_only(vgg22, images):
    loss_fn = PerceptualLoss(vgg22)
    output = images.flip(-1).clone().requires_grad_(True)
    target = images.clone().requires_grad_(True)
    loss = loss_fn(output, target)
    loss.backward()
    assert output.grad is not None and output.grad.abs().sum() > 0 and torch.isfinite(output.grad).all()
    assert target.grad is None  # the target's features are computed without a graph
    assert all(p.grad is None for p in vgg22.parameters())


def test_perceptual_loss_with_several_layers_sums_them(vgg, images):
    other = images.flip(-2)
    total = PerceptualLoss(vgg)(other, images)
    with torch.no_grad():
        out, ref = vgg(other), vgg(images)
    expected = sum(((out[k] - ref[k]) ** 2).mean() / (ref[k] ** 2).mean() for k in LAYERS)
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)


# -- adversarial losses -----------------------------------------------------------------------------

def test_bce_losses_on_known_logits():
    zeros = torch.zeros(4)
    assert d_bce_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert g_bce_loss(zeros).item() == pytest.approx(math.log(2))
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    softplus = torch.nn.functional.softplus
    expected_d = softplus(-real).mean() + softplus(fake).mean()  # -log sigmoid(r) - log(1 - sigmoid(f))
    assert d_bce_loss(real, fake).item() == pytest.approx(expected_d.item(), rel=1e-6)
    assert g_bce_loss(fake).item() == pytest.approx(softplus(-fake).mean().item(), rel=1e-6)
    confident = torch.full((3,), 30.0)
    assert d_bce_loss(confident, -confident).item() < 1e-12  # a perfect discriminator
    assert g_bce_loss(-confident).item() == pytest.approx(30.0, rel=1e-6)  # non-saturating: large, not ~0


def test_bce_loss_gradients_point_the_right_way():
    real, fake = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    d_bce_loss(real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()  # D raises real logits, lowers fake ones
    fake.grad = None
    g_bce_loss(fake).backward()
    assert (fake.grad < 0).all()  # G raises its fakes' logits


def test_feature_matching_loss():
    gen = torch.Generator().manual_seed(0)
    feats = [torch.randn(2, 4, 8, 8, generator=gen), torch.randn(2, 8, 4, 4, generator=gen)]
    assert feature_matching_loss(feats, [f.clone() for f in feats]).item() == 0.0
    shifted = [f + 1.0 for f in feats]
    assert feature_matching_loss(shifted, feats).item() == pytest.approx(1.0)  # mean of per-layer L1
    fake = [f.clone().requires_grad_(True) for f in shifted]
    real = [f.clone().requires_grad_(True) for f in feats]
    feature_matching_loss(fake, real).backward()
    assert all(f.grad is not None for f in fake) and all(r.grad is None for r in real)  # real is detached


def test_focal_frequency_loss_is_zero_only_for_equal_images_and_weighs_hard_frequencies():
    from ganzoo.losses import focal_frequency_loss

    torch.manual_seed(0)
    target = torch.rand(2, 3, 16, 16)
    assert focal_frequency_loss(target, target).item() == 0
    lattice = target.clone()
    lattice[..., ::2, ::2] += 0.1  # one strong frequency off
    noise = target + 0.1 * torch.randn_like(target) / 2  # the same energy spread over all frequencies
    assert torch.nn.functional.mse_loss(noise, target) > torch.nn.functional.mse_loss(lattice, target) / 2
    assert focal_frequency_loss(lattice, target) > focal_frequency_loss(noise, target)
    grad = torch.autograd.grad(focal_frequency_loss(lattice.requires_grad_(), target), lattice)[0]
    assert grad.abs().sum() > 0


def test_lattice_loss_measures_the_residual_period_2_and_4_lattice_only():
    from ganzoo.losses import lattice_loss

    torch.manual_seed(0)
    target = torch.rand(2, 3, 64, 64)
    rows = torch.zeros(1, 1, 64, 64)
    rows[..., ::2, :] = 0.02  # alternate rows 0.02 brighter: a period-2 lattice of amplitude +-0.01
    assert lattice_loss(target + rows, target).item() == pytest.approx(1e-4, rel=1e-4)
    assert lattice_loss(target + 0.3, target).item() < 1e-12  # a constant offset is no lattice
    # a ramp leaks only its slope within a period: 0.05 across the image, 100x less than the +-0.01 lattice
    ramp = torch.linspace(0, 0.05, 64).view(1, 1, 1, 64).expand(2, 3, 64, 64)
    assert lattice_loss(target + ramp, target).item() < 1e-2 * lattice_loss(target + rows, target).item()
    output = (target + rows).requires_grad_()
    lattice_loss(output, target).backward()
    assert output.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="multiple of period"):
        lattice_loss(target, target, period=4, window=10)
    with pytest.raises(ValueError, match="at least 16x16"):
        lattice_loss(target[..., :8, :8], target[..., :8, :8])


def test_models_never_import_losses():
    """The feature networks live in models/vgg.py: a model file that imported the losses would run upward."""
    import ast
    from pathlib import Path

    import ganzoo.models

    for path in Path(ganzoo.models.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not any(name == "ganzoo.losses" or name.startswith("ganzoo.losses.") for name in imported), path.name


def test_gram_matrix_and_adain_statistics():
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # N=1, C=2, H=1, W=2
    assert torch.allclose(gram_matrix(features), torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4)
    content, style = torch.randn(3, 8, 6, 5), torch.randn(1, 8, 7, 4) * 3 + 2
    mean, std = mean_std(adain(content, style))
    s_mean, s_std = mean_std(style)
    assert torch.allclose(mean, s_mean.expand_as(mean), atol=1e-5)
    assert torch.allclose(std, s_std.expand_as(std), atol=1e-3)


class LinearCritic(torch.nn.Module):
    """score = <w, x>: its gradient is w everywhere."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weight).flatten(1).sum(1)


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic():
    torch.manual_seed(0)
    weight = torch.randn(3, 8, 8)
    real, fake = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    assert gradient_penalty(LinearCritic(weight / weight.norm()), real, fake).item() == pytest.approx(0, abs=1e-10)
    # ||w|| = 3 everywhere: (3 - 1)^2 = 4 exactly, whatever the interpolation
    assert gradient_penalty(LinearCritic(3 * weight / weight.norm()), real, fake).item() == pytest.approx(4)


def test_gradient_penalty_is_positive_and_differentiable():
    torch.manual_seed(0)
    critic = PatchGANCritic(channels=4, num_layers=1)
    real, fake = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16, requires_grad=True)
    penalty = gradient_penalty(critic, real, fake)
    assert penalty.item() > 0 and penalty.requires_grad
    penalty.backward()
    convs = [m for m in critic.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0 for conv in convs)
    assert convs[-1].bias.grad is None  # a constant offset of the score does not change its gradient
    assert fake.grad is None  # the penalty trains the critic only


def test_wgan_losses_on_known_values():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([[-2.0, 0.0], [4.0, 2.0]])
    assert wgan_d_loss(real, fake).item() == pytest.approx(1.0 - 2.0)
    assert wgan_g_loss(fake).item() == pytest.approx(-1.0)
