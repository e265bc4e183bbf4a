"""The Hub-mixin base: folder layout, config, strict loading, config validation, pickles, cards, tags."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
import yaml
from torch import nn

import ganzoo
from ganzoo.hub import GanzooModel, ModelLoadError, hub_kwargs
from ganzoo.models import DigitClassifier, DigitDiscriminator, DigitGenerator

TINY = {
    DigitGenerator: dict(latent_dim=8, num_classes=10, channels=4),
    DigitDiscriminator: dict(num_classes=10, channels=4),
    DigitClassifier: dict(num_classes=10, channels=4, feature_dim=8),
}
ALL_CLASSES = list(TINY)


def make_model(cls: type[GanzooModel], seed: int = 0) -> GanzooModel:
    """A tiny model whose buffers (BatchNorm statistics, spectral-norm vectors) are no longer their
    initial values, so a round trip that forgot a buffer would show."""
    torch.manual_seed(seed)
    model = cls(**TINY[cls])
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(*example_inputs(model))
    return model.eval()


def example_inputs(model: GanzooModel, n: int = 6) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(123)
    labels = torch.arange(n) % 10
    if isinstance(model, DigitGenerator):
        return torch.randn(n, model.latent_dim, generator=g), labels
    images = torch.rand(n, 1, 28, 28, generator=g)
    return (images, labels) if isinstance(model, DigitDiscriminator) else (images,)


def outputs(model: GanzooModel) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        out = model(*example_inputs(model))
    return out if isinstance(out, tuple) else (out,)


def saved(cls: type[GanzooModel], folder: Path) -> GanzooModel:
    model = make_model(cls)
    model.save_pretrained(folder)
    return model


def edit_config(folder: Path, **changes) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def edit_weights(folder: Path, edit) -> None:
    path = folder / "model.safetensors"
    tensors = safetensors.torch.load_file(path)
    edit(tensors)
    safetensors.torch.save_file(tensors, path)


# -- save / load round trip ----------------------------------------------------------------------------

@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_save_pretrained_writes_exactly_the_three_files(cls, tmp_path):
    saved(cls, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["README.md", "config.json", "model.safetensors"]


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_config_holds_class_name_and_constructor_args(cls, tmp_path):
    saved(cls, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["_class_name"] == cls.__name__
    assert {k: v for k, v in config.items() if not k.startswith("_")} == TINY[cls]


def test_config_records_default_args_too(tmp_path):
    DigitClassifier(channels=4).save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["num_classes"] == 10 and config["feature_dim"] == 128 and config["channels"] == 4


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_round_trip_gives_identical_outputs(cls, tmp_path):
    model = saved(cls, tmp_path / "m")
    loaded = cls.from_pretrained(tmp_path / "m")
    assert type(loaded) is cls and not loaded.training
    expected, actual = model.state_dict(), loaded.state_dict()
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[k], actual[k]) for k in expected)
    for a, b in zip(outputs(model), outputs(loaded), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_ganzoo_load_rebuilds_the_class_from_config(cls, tmp_path):
    model = saved(cls, tmp_path / "m")
    loaded = ganzoo.load(tmp_path / "m")
    assert type(loaded) is cls and not loaded.training
    for a, b in zip(outputs(model), outputs(loaded), strict=True):
        assert torch.equal(a, b)


def test_generator_sample_is_seeded(tmp_path):
    model = saved(DigitGenerator, tmp_path / "m")
    loaded = DigitGenerator.from_pretrained(tmp_path / "m")
    labels = torch.tensor([0, 3, 7])
    a, b = model.sample(labels, seed=5), loaded.sample(labels, seed=5)
    assert a.shape == (3, 1, 28, 28) and torch.equal(a, b)
    assert 0 <= a.min() and a.max() <= 1
    assert not torch.equal(a, loaded.sample(labels, seed=6))


# -- strict weights ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_missing_key_is_an_error_naming_it(cls, tmp_path):
    saved(cls, tmp_path / "m")
    key = sorted(make_model(cls).state_dict())[0]
    edit_weights(tmp_path / "m", lambda t: t.pop(key))
    with pytest.raises(ModelLoadError, match="missing") as err:
        cls.from_pretrained(tmp_path / "m")
    assert key in str(err.value)


def test_unexpected_key_is_an_error_naming_it(tmp_path):
    saved(DigitGenerator, tmp_path / "m")
    edit_weights(tmp_path / "m", lambda t: t.update({"extra.weight": torch.zeros(3)}))
    with pytest.raises(ModelLoadError, match="unexpected") as err:
        DigitGenerator.from_pretrained(tmp_path / "m")
    assert "extra.weight" in str(err.value)


def test_wrong_shape_is_an_error_naming_it(tmp_path):
    saved(DigitClassifier, tmp_path / "m")
    key = "head.1.weight"
    edit_weights(tmp_path / "m", lambda t: t.update({key: torch.zeros(3, 8)}))
    with pytest.raises(ModelLoadError, match="wrong shape") as err:
        DigitClassifier.from_pretrained(tmp_path / "m")
    assert key in str(err.value)


def test_weights_of_another_size_are_refused(tmp_path):
    """A config that does not match its weights (e.g. edited by hand) must not load partially."""
    saved(DigitGenerator, tmp_path / "m")
    edit_config(tmp_path / "m", channels=5)
    with pytest.raises(ModelLoadError, match="wrong shape"):
        DigitGenerator.from_pretrained(tmp_path / "m")


def test_missing_weights_file_is_an_error(tmp_path):
    saved(DigitGenerator, tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        DigitGenerator.from_pretrained(tmp_path / "m")


# -- config validation ---------------------------------------------------------------------------------

def test_missing_config_is_an_error(tmp_path):
    saved(DigitGenerator, tmp_path / "m")
    (tmp_path / "m" / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="config.json"):
        DigitGenerator.from_pretrained(tmp_path / "m")
    with pytest.raises(ModelLoadError, match="config.json"):
        ganzoo.load(tmp_path / "m")


def test_unknown_config_key_is_an_error_naming_it(tmp_path):
    saved(DigitGenerator, tmp_path / "m")
    edit_config(tmp_path / "m", hidden_layers=3)
    for load in (DigitGenerator.from_pretrained, ganzoo.load):
        with pytest.raises(ModelLoadError, match="hidden_layers"):
            load(tmp_path / "m")


@pytest.mark.parametrize("value", ["64", True, 4.0, None, [4]], ids=repr)
def test_wrong_config_type_is_an_error_naming_the_key(tmp_path, value):
    saved(DigitGenerator, tmp_path / "m")
    edit_config(tmp_path / "m", channels=value)
    for load in (DigitGenerator.from_pretrained, ganzoo.load):
        with pytest.raises(ModelLoadError, match="channels"):
            load(tmp_path / "m")


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_absurd_size_is_refused_before_allocating(cls, tmp_path, monkeypatch):
    """Allocating even the first layer at this width would take seconds and gigabytes: no weight is created.

    Counted, not timed, so that a slow or busy host cannot fail it and a fast one cannot hide an allocation."""
    saved(cls, tmp_path / "m")
    saved(cls, tmp_path / "fine")
    edit_config(tmp_path / "m", channels=10**6)
    created: list[tuple[int, ...]] = []
    register_parameter = nn.Module.register_parameter

    def recording(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None:
            created.append(tuple(param.shape))
        register_parameter(module, name, param)

    monkeypatch.setattr(nn.Module, "register_parameter", recording)
    for load in (cls.from_pretrained, ganzoo.load):
        with pytest.raises(ModelLoadError, match="channels"):
            load(tmp_path / "m")
    assert created == []
    ganzoo.load(tmp_path / "fine")
    assert created  # the count sees a model that is built


@pytest.mark.parametrize("key,value", [("latent_dim", 0), ("num_classes", -1), ("latent_dim", 10**9)])
def test_out_of_range_values_name_the_key(tmp_path, key, value):
    saved(DigitGenerator, tmp_path / "m")
    edit_config(tmp_path / "m", **{key: value})
    with pytest.raises(ModelLoadError, match=key):
        ganzoo.load(tmp_path / "m")


def test_config_for_another_class_is_refused(tmp_path):
    saved(DigitDiscriminator, tmp_path / "m")
    with pytest.raises(ModelLoadError, match="DigitDiscriminator"):
        DigitGenerator.from_pretrained(tmp_path / "m")


@pytest.mark.parametrize("text,match", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"_class_name": "os.system"}', "names no ganzoo model class"),
    ("{}", "names no ganzoo model class"),
])
def test_ganzoo_load_rejects_bad_config_files(tmp_path, text, match):
    saved(DigitGenerator, tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(text)
    with pytest.raises(ModelLoadError, match=match):
        ganzoo.load(tmp_path / "m")


def test_oversized_config_is_refused_before_parsing(tmp_path):
    saved(DigitGenerator, tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text('{"pad": "' + "x" * (2 << 20) + '"}')
    with pytest.raises(ModelLoadError, match="larger than"):
        ganzoo.load(tmp_path / "m")


# -- renamed config keys (legacy_config_keys) ---------------------------------------------------------

def _tiny_digits(cls: type[GanzooModel]) -> tuple[GanzooModel, tuple[torch.Tensor, ...]]:
    model = make_model(cls)
    return model, example_inputs(model)


def _tiny_deblur_unet() -> tuple[GanzooModel, tuple[torch.Tensor, ...]]:
    from ganzoo.models import DeblurUNet
    model = DeblurUNet(channels=4, encoder_blocks=[1], middle_blocks=1, decoder_blocks=[1]).eval()
    return model, (torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(0)),)


def _tiny_adain() -> tuple[GanzooModel, tuple[torch.Tensor, ...]]:
    from ganzoo.models import AdaINStyleTransfer
    model = AdaINStyleTransfer(channels=4, encoder_weights="random").eval()
    content, style = torch.rand(2, 1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    return model, (content, style)


LEGACY_MODELS = {cls.__name__: functools.partial(_tiny_digits, cls) for cls in ALL_CLASSES} | {
    "DeblurUNet": _tiny_deblur_unet, "AdaINStyleTransfer": _tiny_adain}


def test_no_model_class_takes_an_old_name_for_its_width():
    from ganzoo.models import MODEL_CLASSES

    for cls in MODEL_CLASSES.values():
        params = cls.config_parameters()
        assert not {"base_channels", "width"} & set(params), cls.__name__
        for old, new in cls.legacy_config_keys.items():
            assert new in params and old not in params, (cls.__name__, old, new)
    assert {name for name, cls in MODEL_CLASSES.items() if cls.legacy_config_keys} == set(LEGACY_MODELS)


@pytest.mark.parametrize("name", list(LEGACY_MODELS))
def test_a_config_with_the_old_key_loads_to_the_same_model_and_resaves_with_the_new(name, tmp_path):
    model, inputs = LEGACY_MODELS[name]()
    model.save_pretrained(tmp_path / "m")
    current = json.loads((tmp_path / "m" / "config.json").read_text())
    ((old, new),) = type(model).legacy_config_keys.items()
    legacy = {old if key == new else key: value for key, value in current.items()}
    (tmp_path / "m" / "config.json").write_text(json.dumps(legacy))
    loaded = ganzoo.load(tmp_path / "m")
    assert type(loaded) is type(model)
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key
    with torch.no_grad():
        assert torch.equal(loaded(*inputs), model(*inputs))
    loaded.save_pretrained(tmp_path / "resaved")
    assert json.loads((tmp_path / "resaved" / "config.json").read_text()) == current
    assert (tmp_path / "resaved" / "README.md").read_text() == (tmp_path / "m" / "README.md").read_text()
    edit_config(tmp_path / "m", **{new: current[new]})  # both names: which one would be meant?
    with pytest.raises(ModelLoadError, match=f"both '{old}'.*'{new}'"):
        ganzoo.load(tmp_path / "m")


# -- pickles -------------------------------------------------------------------------------------------

def pickle_only_folder(folder: Path) -> GanzooModel:
    model = saved(DigitClassifier, folder)
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return model


def test_pickle_weights_are_refused_without_opt_in(tmp_path):
    pickle_only_folder(tmp_path / "m")
    for load in (DigitClassifier.from_pretrained, ganzoo.load):
        with pytest.raises(ModelLoadError, match="allow_pickle=True"):
            load(tmp_path / "m")


def test_pickle_weights_load_with_opt_in(tmp_path):
    model = pickle_only_folder(tmp_path / "m")
    for load in (DigitClassifier.from_pretrained, ganzoo.load):
        loaded = load(tmp_path / "m", allow_pickle=True)
        assert type(loaded) is DigitClassifier and not loaded.training
        assert torch.equal(outputs(model)[0], outputs(loaded)[0])


def test_pickle_weights_are_still_strict(tmp_path):
    model = pickle_only_folder(tmp_path / "m")
    state = model.state_dict()
    state.pop("head.1.bias")
    torch.save(state, tmp_path / "m" / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="head.1.bias"):
        ganzoo.load(tmp_path / "m", allow_pickle=True)


def test_pickle_with_code_is_refused_even_with_opt_in(tmp_path):
    """allow_pickle reads with weights_only=True: a pickle carrying arbitrary objects does not load."""
    pickle_only_folder(tmp_path / "m")
    torch.save({"payload": Path("/tmp")}, tmp_path / "m" / "pytorch_model.bin")
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        ganzoo.load(tmp_path / "m", allow_pickle=True)


def test_safetensors_win_over_a_pickle_next_to_them(tmp_path):
    model = saved(DigitClassifier, tmp_path / "m")
    torch.save({"junk": torch.zeros(1)}, tmp_path / "m" / "pytorch_model.bin")
    loaded = ganzoo.load(tmp_path / "m")
    assert torch.equal(outputs(model)[0], outputs(loaded)[0])


# -- model card and tags -------------------------------------------------------------------------------

def front_matter(readme: str) -> dict:
    assert readme.startswith("---\n"), readme[:80]
    end = readme.index("\n---", 4)
    return yaml.safe_load(readme[4:end])


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_model_card_has_yaml_front_matter(cls, tmp_path):
    saved(cls, tmp_path / "m")
    meta = front_matter((tmp_path / "m" / "README.md").read_text(encoding="utf-8"))
    assert meta["library_name"] == "ganzoo"
    assert meta["license"] == "mit"
    assert {"ganzoo", "gan", "mnist"} <= set(meta["tags"])
    assert meta["pipeline_tag"] == cls._hub_mixin_info.model_card_data.pipeline_tag


def test_save_pretrained_keeps_an_existing_card(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlicense: mit\nlibrary_name: ganzoo\n---\n# mine\n")
    make_model(DigitClassifier).save_pretrained(folder)
    assert (folder / "README.md").read_text().endswith("# mine\n")


def test_tags_do_not_leak_between_classes(tmp_path):
    tags = {cls: set(cls._hub_mixin_info.model_card_data.tags) for cls in ALL_CLASSES}
    assert {"dcgan", "conditional"} <= tags[DigitGenerator]
    assert "discriminator" in tags[DigitDiscriminator]
    assert "classifier" in tags[DigitClassifier]
    assert not tags[DigitGenerator] & {"discriminator", "classifier"}
    assert not tags[DigitDiscriminator] & {"conditional", "classifier"}
    assert not tags[DigitClassifier] & {"dcgan", "conditional", "discriminator"}
    # ... and the same in the cards written to disk.
    for cls in ALL_CLASSES:
        saved(cls, tmp_path / cls.__name__)
        card_tags = set(front_matter((tmp_path / cls.__name__ / "README.md").read_text())["tags"])
        assert card_tags == tags[cls]


def test_defining_a_class_does_not_touch_other_classes_tags():
    before = {cls: list(cls._hub_mixin_info.model_card_data.tags) for cls in ALL_CLASSES}
    first, second = hub_kwargs(pipeline_tag="image-to-image", tags=["x"]), hub_kwargs(pipeline_tag="a", tags=["y"])
    assert first["tags"] is not second["tags"]

    class Probe(GanzooModel, **first):
        def __init__(self, width: int = 2) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(width, width)

    class Probe2(GanzooModel, **second):
        def __init__(self) -> None:
            super().__init__()

    assert "x" in Probe._hub_mixin_info.model_card_data.tags
    assert "x" not in Probe2._hub_mixin_info.model_card_data.tags
    assert "y" not in Probe._hub_mixin_info.model_card_data.tags
    assert "x" not in (GanzooModel._hub_mixin_info.model_card_data.tags or [])
    assert {cls: list(cls._hub_mixin_info.model_card_data.tags) for cls in ALL_CLASSES} == before


@pytest.mark.parametrize("config, match", [
    ({"_class_name": "SRResNet", "scale": 3}, "scale=3"),
    ({"_class_name": "SRResNet", "channels": 10**9}, "outside the allowed range"),
    ({"_class_name": "SRResNet", "channels": 2.5}, "wrong type"),
    ({"_class_name": "SRGANDiscriminator", "channels": 4096}, "outside the allowed range"),
    ({"_class_name": "DeblurGANGenerator", "channels": 10**6}, "outside the allowed range"),
    ({"_class_name": "DeblurGANGenerator", "channels": 2.5}, "wrong type"),
    ({"_class_name": "DeblurGANGenerator", "num_blocks": 0}, "outside the allowed range"),
    ({"_class_name": "DeblurGANGenerator", "dropout": 2.0}, "outside the allowed range"),
    ({"_class_name": "PatchGANCritic", "num_layers": 99}, "outside the allowed range"),
])
def test_loading_a_bad_config_fails_before_allocating(config, match, tmp_path, monkeypatch):
    """Every family checks sizes and types before building a layer."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(torch.nn.Conv2d, "__init__", lambda *a, **k: pytest.fail("allocated"))
    with pytest.raises(ModelLoadError, match=match):
        ganzoo.load(tmp_path)
