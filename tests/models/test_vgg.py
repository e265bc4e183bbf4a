"""The VGG19 feature networks (random, multi-scale, ensembles) and ImageNet weights, never downloaded."""

from __future__ import annotations

import pytest
import torch

from ganzoo.models.vgg import VGG19_IMAGENET_FILE, VGGFeatures, VGGWeightsError

from conftest import LAYERS


CHANNELS = {"relu1_2": 64, "relu2_2": 128, "conv3_3": 256, "relu3_3": 256, "relu5_4": 512}


@pytest.fixture(scope="module")
def vgg19_state_dict() -> dict[str, torch.Tensor]:
    """A full torchvision vgg19 state dict (random weights), standing in for the ImageNet file."""
    from torchvision.models import vgg19

    torch.manual_seed(123)
    return vgg19(weights=None).state_dict()


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
