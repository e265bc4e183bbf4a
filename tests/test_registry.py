"""`ganzoo.load` / `resolve`: folders, short names, and Hub repo ids served from a local HF cache, offline."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import safetensors.torch
import torch
from huggingface_hub import constants

import ganzoo
from ganzoo import catalog, registry
from ganzoo.hub import ModelLoadError
from ganzoo.models import DigitClassifier, DigitGenerator

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def generator_folder(tmp_path) -> Path:
    torch.manual_seed(0)
    model = DigitGenerator(latent_dim=8, channels=4)
    model.save_pretrained(tmp_path / "generator")
    return tmp_path / "generator"


def same_weights(folder: Path, model: torch.nn.Module) -> bool:
    expected = safetensors.torch.load_file(folder / "model.safetensors")
    actual = model.state_dict()
    return expected.keys() == actual.keys() and all(torch.equal(expected[k], actual[k]) for k in expected)


def populate_hf_cache(cache: Path, repo_id: str, source: Path, commit: str = COMMIT) -> Path:
    """Lay out `source`'s files the way `hf_hub_download` caches them: content-addressed blobs,
    `snapshots/<commit>/<file>` symlinks to them, and `refs/main` holding the commit."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    for file in sorted(source.iterdir()):
        blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        shutil.copyfile(file, blob)
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
    return snapshot


# -- folders -------------------------------------------------------------------------------------------

def test_load_by_folder_path(generator_folder):
    for name in (generator_folder, str(generator_folder)):
        model = ganzoo.load(name)
        assert isinstance(model, DigitGenerator) and same_weights(generator_folder, model)
    assert ganzoo.resolve(generator_folder) == str(generator_folder)


def test_load_by_relative_folder_path(generator_folder, monkeypatch):
    monkeypatch.chdir(generator_folder.parent)
    assert isinstance(ganzoo.load("generator"), DigitGenerator)
    assert isinstance(ganzoo.load("./generator"), DigitGenerator)


def test_load_to_a_device(generator_folder):
    model = ganzoo.load(generator_folder, device="cpu")
    assert next(model.parameters()).device.type == "cpu"


# -- resolve errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mnist-dcgn", "dcgan", "not a model"])
def test_unknown_short_name_is_a_clear_error(name):
    with pytest.raises(ModelLoadError) as err:
        ganzoo.resolve(name)
    message = str(err.value)
    assert name in message and "mnist-dcgan" in message and "mnist-classifier" in message
    with pytest.raises(ModelLoadError):
        ganzoo.load(name)


@pytest.mark.parametrize("name", ["./no-such-model", "../no/such/model", "~/no-such-model-here"])
def test_nonexistent_path_is_a_clear_error(name):
    with pytest.raises(ModelLoadError, match="neither a ganzoo model name"):
        ganzoo.resolve(name)


def test_nonexistent_absolute_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="neither a ganzoo model name") as err:
        ganzoo.load(tmp_path / "missing")
    assert "missing" in str(err.value)


def test_a_file_is_not_a_model_folder(generator_folder):
    with pytest.raises(ModelLoadError):
        ganzoo.resolve(generator_folder / "config.json")


def test_repo_ids_resolve_to_themselves():
    assert ganzoo.resolve("some-org/some.model_v2") == "some-org/some.model_v2"


# -- Hub repo ids through the local cache, offline -----------------------------------------------------

def test_offline_mode_is_on():
    assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE


def test_load_repo_id_from_populated_cache(generator_folder, tmp_path):
    cache = tmp_path / "hf-cache"
    populate_hf_cache(cache, "some-org/tiny-dcgan", generator_folder)
    model = ganzoo.load("some-org/tiny-dcgan", cache_dir=cache)
    assert isinstance(model, DigitGenerator) and not model.training
    assert same_weights(generator_folder, model)
    # ... the class's own from_pretrained takes the same path
    assert same_weights(generator_folder, DigitGenerator.from_pretrained("some-org/tiny-dcgan", cache_dir=cache))


def test_load_repo_id_by_commit_revision(generator_folder, tmp_path):
    cache = tmp_path / "hf-cache"
    populate_hf_cache(cache, "some-org/tiny-dcgan", generator_folder)
    model = ganzoo.load("some-org/tiny-dcgan", cache_dir=cache, revision=COMMIT)
    assert same_weights(generator_folder, model)


def test_load_repo_id_from_the_default_cache(generator_folder, tmp_path, monkeypatch):
    """HF_HUB_CACHE (read by huggingface_hub at import, hence the constant too) points at our cache."""
    cache = tmp_path / "hf-cache"
    populate_hf_cache(cache, "some-org/tiny-dcgan", generator_folder)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    model = ganzoo.load("some-org/tiny-dcgan")
    assert same_weights(generator_folder, model)


def test_uncached_repo_id_fails_offline_without_hanging(tmp_path):
    (tmp_path / "empty-cache").mkdir()
    with pytest.raises(ModelLoadError, match="some-org/not-cached"):
        ganzoo.load("some-org/not-cached", cache_dir=tmp_path / "empty-cache")


def test_every_load_failure_is_a_model_load_error(generator_folder, tmp_path, monkeypatch):
    # config.json cached but not the weights: huggingface_hub's OSError comes out as a ModelLoadError
    only_config = tmp_path / "only-config"
    only_config.mkdir()
    (only_config / "config.json").write_text((generator_folder / "config.json").read_text())
    populate_hf_cache(tmp_path / "hf-cache", "some-org/no-weights", only_config)
    with pytest.raises(ModelLoadError, match="some-org/no-weights"):
        ganzoo.load("some-org/no-weights", cache_dir=tmp_path / "hf-cache")
    # any other OSError on the way (a file system failing, an unreadable file) names the model too
    with monkeypatch.context() as patch:
        patch.setattr(registry, "read_config", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "denied")))
        with pytest.raises(ModelLoadError, match=f"cannot load model '{generator_folder}'.*denied"):
            ganzoo.load(generator_folder)
    from ganzoo.models import DigitClassifier, DigitGenerator

    assert isinstance(ganzoo.load(generator_folder, expected=DigitGenerator), DigitGenerator)
    with pytest.raises(ModelLoadError, match="is a DigitGenerator, not a DigitClassifier"):
        ganzoo.load(generator_folder, expected=DigitClassifier)


def test_cached_repo_is_loaded_strictly(generator_folder, tmp_path):
    tensors = safetensors.torch.load_file(generator_folder / "model.safetensors")
    tensors.pop("project.0.weight")
    safetensors.torch.save_file(tensors, generator_folder / "model.safetensors")
    cache = tmp_path / "hf-cache"
    populate_hf_cache(cache, "some-org/partial", generator_folder)
    with pytest.raises(ModelLoadError, match="project.0.weight"):
        ganzoo.load("some-org/partial", cache_dir=cache)


def test_cached_repo_with_only_a_pickle(tmp_path):
    folder = tmp_path / "pickled"
    model = DigitClassifier(channels=4, feature_dim=8).eval()
    model.save_pretrained(folder)
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    cache = tmp_path / "hf-cache"
    populate_hf_cache(cache, "some-org/pickled", folder)
    with pytest.raises(ModelLoadError, match="allow_pickle"):
        ganzoo.load("some-org/pickled", cache_dir=cache)
    loaded = ganzoo.load("some-org/pickled", cache_dir=cache, allow_pickle=True)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


# -- bundled short names -------------------------------------------------------------------------------

def test_list_models_names_the_bundled_models():
    names = [entry.name for entry in ganzoo.list_models()]
    assert names == list(registry.MODELS) and {"mnist-dcgan", "mnist-classifier"} <= set(names)
    for entry in ganzoo.list_models():
        assert entry.repo_id.count("/") == 1 and entry.task and entry.description


def test_the_kind_of_each_entry_is_the_class_it_loads():
    from ganzoo.models import (DEBLURRING_MODELS, AdaINStyleTransfer, Denoiser, DigitClassifier, DigitGenerator,
                               TransformerNet)
    from ganzoo.models.srgan import SRResNet

    classes = {"digit-generator": DigitGenerator, "digit-classifier": DigitClassifier, "super-resolution": SRResNet,
               "deblurring": DEBLURRING_MODELS, "denoiser": Denoiser, "fast-style": TransformerNet, "arbitrary-style": AdaINStyleTransfer}
    assert set(classes) == set(registry.KINDS)
    for entry in ganzoo.list_models():
        if entry.is_bundled:
            assert isinstance(ganzoo.load(entry.name), classes[entry.kind]), entry.name
    assert [e.name for e in registry.list_models("fast-style")] == [
        "style-mosaic", "style-candy", "style-starry-night", "style-udnie"]
    with pytest.raises(ValueError, match="unknown kind"):
        registry.ModelEntry("x", "painting", "org/x", "")


def test_short_names_fall_back_to_the_hub_repo(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog, "PRETRAINED_DIR", tmp_path / "pretrained")
    for entry in ganzoo.list_models():
        assert not entry.is_bundled
        assert ganzoo.resolve(entry.name) == entry.repo_id
    # a folder without weights (e.g. only a card) is not a bundled model
    (tmp_path / "pretrained" / "mnist-dcgan").mkdir(parents=True)
    (tmp_path / "pretrained" / "mnist-dcgan" / "README.md").write_text("# placeholder\n")
    assert ganzoo.resolve("mnist-dcgan") == "ganzoo/mnist-dcgan"


def test_short_names_resolve_to_bundled_folder_when_it_has_weights(generator_folder, tmp_path, monkeypatch):
    pretrained = tmp_path / "pretrained"
    monkeypatch.setattr(catalog, "PRETRAINED_DIR", pretrained)
    shutil.copytree(generator_folder, pretrained / "mnist-dcgan")
    assert registry.MODELS["mnist-dcgan"].is_bundled
    assert ganzoo.resolve("mnist-dcgan") == str(pretrained / "mnist-dcgan")
    assert ganzoo.resolve("mnist-classifier") == "ganzoo/mnist-classifier"
    model = ganzoo.load("mnist-dcgan")
    assert isinstance(model, DigitGenerator) and same_weights(generator_folder, model)


def test_short_name_served_from_the_hub_cache(generator_folder, tmp_path, monkeypatch):
    """Not bundled: the short name becomes its repo id, which the (offline) cache serves."""
    monkeypatch.setattr(catalog, "PRETRAINED_DIR", tmp_path / "pretrained")
    cache = tmp_path / "hf-cache"
    populate_hf_cache(cache, "ganzoo/mnist-dcgan", generator_folder)
    assert same_weights(generator_folder, ganzoo.load("mnist-dcgan", cache_dir=cache))


def test_style_names_resolve_to_the_registry():
    from ganzoo.registry import fast_style_name

    assert fast_style_name("mosaic") == "style-mosaic"
    assert fast_style_name("starry_night") == "style-starry-night"
    assert fast_style_name("style-udnie") == "style-udnie"
    assert fast_style_name("adain") is None and fast_style_name("srgan-x4") is None
