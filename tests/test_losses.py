"""Losses: the frozen VGG19 feature extractor (random and ImageNet weights), the perceptual loss,
the BCE GAN losses and discriminator feature matching.

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
from ganzoo.models.vgg import VGG19_IMAGENET_FILE, VGGFeatures, VGGWeightsError, adain, mean_std

LAYERS = ("relu1_2", "relu2_2", "conv3_3", "relu3_3", "relu5_4")
CHANNELS = {"relu1_2": 64, "relu2_2": 128, "conv3_3": 256, "relu3_3": 256, "relu5_4": 512}


@pytest.fixture(scope="module")
def vgg() -> VGGFeatures:
    """A random-weight VGG19 returning several layers, up to relu5_4."""
    return VGGFeatures(LAYERS, weights="random")


@pytest.fixture(scope="module")
def vgg22() -> VGGFeatures:
    return VGGFeatures(("relu2_2",), weights="random")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def vgg19_state_dict() -> dict[str, torch.Tensor]:
    """A full torchvision vgg19 state dict (random weights), standing in for the ImageNet file."""
    from torchvision.models import vgg19

    torch.manual_seed(123)
    return vgg19(weights=None).state_dict()


# -- VGGFeatures ------------------------------------------------------------------------------------

def test_random_vgg_is_deterministic(vgg, images):
    """Two instances with the same seed give identical features; the global RNG is left alone."""
    torch.manual_seed(7)
    before = torch.rand(1)
    torch.manual_seed(7)
    other = VGGFeatures(LAYERS, weights="random")
    assert torch.equal(torch.rand(1), before)  # the seeded construction forks the RNG
    with torch.no_grad():
        first, second = vgg(images), other(images)
    for name in LAYERS:
        assert torch.equal(first[name], second[name]), name
    assert "seed 0" in vgg.describe() and "no ImageNet weights" in vgg.describe()


def test_random_vgg_seed_changes_weights(vgg22, images):
    other = VGGFeatures(("relu2_2",), weights="random", seed=1)
    with torch.no_grad():
        assert not torch.equal(vgg22(images)["relu2_2"], other(images)["relu2_2"])


def test_vgg_is_frozen_and_stays_in_eval(vgg):
    assert all(not p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training and not any(m.training for m in vgg.modules())
    vgg.train(True)
    assert not vgg.training
    assert not list(vgg.state_dict().keys() & {"mean", "std"})  # buffers are not saved


def test_vgg_returns_requested_layers_with_channel_counts(vgg, images):
    with torch.no_grad():
        out = vgg(images)
    assert set(out) == set(LAYERS)
    for name, feats in out.items():
        assert feats.shape[:2] == (2, CHANNELS[name]), name
    assert out["relu2_2"].shape[-2:] == (16, 16) and out["relu5_4"].shape[-2:] == (2, 2)
    assert out["relu2_2"].min() >= 0 and out["relu5_4"].min() >= 0


def test_conv_layer_is_not_overwritten_by_the_following_relu(vgg, images):
    """conv3_3 is a pre-activation: it must keep its negative values even when relu3_3 (computed
    right after it) is also requested (torchvision's ReLUs are in-place)."""
    with torch.no_grad():
        out = vgg(images)
    assert (out["conv3_3"] < 0).any()
    assert torch.equal(out["conv3_3"].clamp_min(0), out["relu3_3"])


def test_vgg_truncates_after_the_last_requested_layer(vgg22):
    assert len(vgg22.features) == 9  # torchvision's features[0..8] end at relu2_2


@pytest.mark.parametrize("kwargs, match", [
    ({"layers": ("relu9_9",)}, "unknown VGG19 layers"),
    ({"layers": ("relu2_2", "pool5")}, "unknown VGG19 layers"),
    ({"layers": ("relu2_2",), "weights": "imagenett"}, "weights must be one of"),
    ({"layers": ("relu2_2",), "weights": None}, "weights must be one of"),
])
def test_vgg_rejects_unknown_layers_and_weights(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VGGFeatures(**kwargs)


# -- ImageNet weights: never downloaded ------------------------------------------------------------

def test_imagenet_weights_missing_raises_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(VGGWeightsError) as info:
        VGGFeatures(("relu2_2",), weights="imagenet")
    message = str(info.value)
    assert str(tmp_path / "hub" / "checkpoints" / VGG19_IMAGENET_FILE) in message
    assert "--vgg-weights random" in message and "IMAGENET1K_V1" in message
    assert not (tmp_path / "hub").exists()  # nothing was downloaded or created
    with pytest.raises(VGGWeightsError, match="not found"):
        VGGFeatures(("relu2_2",), weights="imagenet", weights_path=str(tmp_path / "nope.pth"))


def test_imagenet_weights_found_in_hub_cache(tmp_path, monkeypatch, vgg19_state_dict):
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(vgg19_state_dict, checkpoints / VGG19_IMAGENET_FILE)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    features = VGGFeatures(("relu2_2",), weights="imagenet")
    assert torch.equal(features.features[7].weight, vgg19_state_dict["features.7.weight"])
    assert "ImageNet weights" in features.describe()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_imagenet_weights_from_explicit_path(tmp_path, vgg19_state_dict, images, suffix):
    path = tmp_path / f"vgg19{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in vgg19_state_dict.items()}, str(path))
    else:
        torch.save(vgg19_state_dict, path)
    features = VGGFeatures(("relu1_2", "relu2_2"), weights="imagenet", weights_path=str(path))
    for index in (0, 2, 5, 7):
        assert torch.equal(features.features[index].weight, vgg19_state_dict[f"features.{index}.weight"])
        assert torch.equal(features.features[index].bias, vgg19_state_dict[f"features.{index}.bias"])
    with torch.no_grad():
        out = features(images)
    assert out["relu2_2"].shape == (2, 128, 16, 16)


def test_imagenet_weights_that_do_not_fit_are_an_error(tmp_path, vgg19_state_dict):
    path = tmp_path / "partial.pth"
    torch.save({k: v for k, v in vgg19_state_dict.items() if not k.startswith("classifier")}, path)
    with pytest.raises(RuntimeError, match="Missing key"):
        VGGFeatures(("relu2_2",), weights="imagenet", weights_path=str(path))


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


# -- issue 16: loss networks without a lattice incentive, frequency loss ---------------------------

def test_multiscale_random_features_are_deterministic_by_seed_and_unpooled():
    from ganzoo.models.vgg import MultiScaleRandomFeatures

    images = torch.rand(2, 3, 32, 40)
    a, b = MultiScaleRandomFeatures(width=8, seed=3), MultiScaleRandomFeatures(width=8, seed=3)
    other = MultiScaleRandomFeatures(width=8, seed=4)
    fa, fb, fo = a(images), b(images), other(images)
    assert list(fa) == list(a.layers) == ["k3s1", "k5s1", "k7s1", "k3s2", "k5s2", "k7s2", "k3s4", "k5s4", "k7s4"]
    assert all(torch.equal(fa[k], fb[k]) for k in fa) and not torch.equal(fa["k3s1"], fo["k3s1"])
    assert fa["k7s1"].shape == (2, 8, 32, 40) and fa["k3s4"].shape == (2, 8, 8, 10)  # no stride, no pooling
    assert a.config() == {"kind": "multiscale", "kernel_sizes": [3, 5, 7], "scales": [1, 2, 4], "width": 8, "seed": 3}
    assert "seed 3" in a.describe() and not any(p.requires_grad for p in a.parameters())
    with pytest.raises(ValueError, match="odd"):
        MultiScaleRandomFeatures(kernel_sizes=(4,))


def test_avg_pool_vgg_and_seed_ensembles():
    from ganzoo.models.vgg import FeatureEnsemble, VGGFeatures, base_layer

    avg = VGGFeatures(("relu2_1",), weights="random", seed=1, pool="avg")
    assert any(isinstance(m, torch.nn.AvgPool2d) for m in avg.features)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in avg.features)
    assert "average pooling" in avg.describe() and "seed 1" in avg.describe()
    images = torch.rand(1, 3, 16, 16)
    same = VGGFeatures(("relu2_1",), weights="random", seed=1, pool="avg")(images)["relu2_1"]
    assert torch.equal(avg(images)["relu2_1"], same)
    ensemble = FeatureEnsemble([avg, VGGFeatures(("relu2_1",), weights="random", seed=2, pool="avg")])
    out = ensemble(images)
    assert list(out) == ["0/relu2_1", "1/relu2_1"] and base_layer("1/relu2_1") == "relu2_1"
    assert not torch.equal(out["0/relu2_1"], out["1/relu2_1"]) and "seed 2" in ensemble.describe()
    with pytest.raises(ValueError, match="pool"):
        VGGFeatures(("relu1_1",), weights="random", pool="median")


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
