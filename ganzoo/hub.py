"""The Hub-mixin base every ganzoo model derives from.

`PyTorchModelHubMixin` gives `save_pretrained` / `from_pretrained` / `push_to_hub`.
We tighten it: weights only from safetensors (pickles need an explicit opt-in and
then load with `weights_only=True`), strict state-dict loading, `config.json`
validated against the constructor before anything is allocated, and a
`_class_name` key so `ganzoo.load` can rebuild any model from its folder.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import pickle
import types
import typing
from pathlib import Path
from typing import Any, ClassVar

import safetensors
import safetensors.torch
import torch
from huggingface_hub import ModelCard, ModelCardData, PyTorchModelHubMixin, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError
from torch import nn

from ganzoo._version import __version__
from ganzoo.cards import GENERIC_TEMPLATE, card_metadata, link_papers
from ganzoo.catalog import WEIGHTS_NAME

REPO_URL = "https://github.com/ganzoo/ganzoo"
CONFIG_NAME = "config.json"
PICKLE_WEIGHTS_NAME = "pytorch_model.bin"
CARD_NAME = "README.md"
DEFAULT_CARD_TEMPLATE = GENERIC_TEMPLATE.read_text(encoding="utf-8")


class ModelLoadError(ValueError):
    """A model folder or repo that cannot be loaded safely (bad config, weights or files)."""


def hub_kwargs(*, pipeline_tag: str, tags: list[str]) -> dict[str, Any]:
    """Class kwargs for the mixin; a fresh `tags` list each time because the mixin appends to it."""
    return dict(
        library_name="ganzoo",
        license="mit",
        repo_url=REPO_URL,
        pipeline_tag=pipeline_tag,
        tags=["ganzoo", "gan", *tags],
        model_card_template=DEFAULT_CARD_TEMPLATE,
    )


def check_range(name: str, value: Any, low: float, high: float, integer: bool = True) -> None:
    """Raise a clear error for a config value outside [low, high] (called before allocating)."""
    kinds = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ModelLoadError(f"config value {name}={value!r} must be {'an integer' if integer else 'a number'}")
    if not low <= value <= high:
        raise ModelLoadError(f"config value {name}={value!r} is outside the allowed range [{low}, {high}]")


def check_choice(name: str, value: Any, choices: typing.Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ModelLoadError(f"config value {name}={value!r} must be one of {choices}")


def _matches(value: Any, annotation: Any) -> bool:
    """Whether a JSON value fits a constructor annotation (int, float, bool, str, list[...], X | None)."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin in (list, tuple):
        (item_type, *_) = typing.get_args(annotation) or (Any,)
        return isinstance(value, (list, tuple)) and all(_matches(v, item_type) for v in value)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


class GanzooModel(nn.Module, PyTorchModelHubMixin, library_name="ganzoo", license="mit", repo_url=REPO_URL):
    """Base class: `nn.Module` + Hub mixin with strict, safetensors-only loading."""

    # Old config.json keys -> the constructor argument that replaced them: configs saved before a rename
    # still load (and are saved with the current name).
    legacy_config_keys: ClassVar[dict[str, str]] = {}

    @classmethod
    def config_parameters(cls) -> dict[str, inspect.Parameter]:
        params = dict(inspect.signature(cls.__init__).parameters)
        params.pop("self", None)
        return params

    @classmethod
    def upgrade_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """A copy of `config` with its legacy keys renamed to the current constructor arguments."""
        if not isinstance(config, dict):
            return config  # validate_config says what is wrong with it
        upgraded = dict(config)
        for old, new in cls.legacy_config_keys.items():
            if old in upgraded:
                if new in upgraded:
                    raise ModelLoadError(f"{CONFIG_NAME} has both {old!r} (the old name of {new!r}) and {new!r}")
                upgraded[new] = upgraded.pop(old)
        return upgraded

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """Reject unknown keys and wrong types; value ranges are checked by each constructor."""
        if not isinstance(config, dict):
            raise ModelLoadError(f"{CONFIG_NAME} must hold a JSON object, got {type(config).__name__}")
        params = cls.config_parameters()
        unknown = sorted(k for k in config if k not in params and not k.startswith("_"))
        if unknown:
            raise ModelLoadError(
                f"{CONFIG_NAME} has keys that {cls.__name__} does not take: {unknown}; "
                f"allowed: {sorted(params)}"
            )
        class_name = config.get("_class_name")
        if class_name is not None and class_name != cls.__name__:
            raise ModelLoadError(f"{CONFIG_NAME} is for {class_name}, not {cls.__name__}")
        hints = typing.get_type_hints(cls.__init__)
        for key, value in config.items():
            if key in params and not _matches(value, hints.get(key, params[key].annotation)):
                expected = hints.get(key, params[key].annotation)
                raise ModelLoadError(f"config value {key}={value!r} has the wrong type (expected {expected})")

    def _save_pretrained(self, save_directory: Path) -> None:
        model = self.module if hasattr(self, "module") else self
        safetensors.torch.save_model(model, str(save_directory / WEIGHTS_NAME))
        config = {
            **(self._hub_mixin_config or {}),
            "_class_name": type(self).__name__,
            "_ganzoo_version": __version__,
        }
        (save_directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        config: dict[str, Any] | None = None,
        map_location: str = "cpu",
        allow_pickle: bool = False,
        **model_kwargs: Any,
    ) -> GanzooModel:
        if config is None:
            raise ModelLoadError(f"{model_id}: no {CONFIG_NAME} found; a ganzoo model folder holds "
                                 f"{CONFIG_NAME}, {WEIGHTS_NAME} and README.md")
        config = cls.upgrade_config(config)
        cls.validate_config(config)
        params = cls.config_parameters()
        model_kwargs = {**{k: v for k, v in config.items() if k in params},
                        **{k: v for k, v in model_kwargs.items() if k in params}}
        download = dict(revision=revision, cache_dir=cache_dir, force_download=force_download,
                        local_files_only=local_files_only, token=token)
        model_file, is_pickle = _find_weights(model_id, allow_pickle, download)
        model = cls(**model_kwargs)
        try:
            if is_pickle:
                state_dict = torch.load(model_file, map_location="cpu", weights_only=True)
            else:
                state_dict = safetensors.torch.load_file(model_file, device="cpu")
        except (safetensors.SafetensorError, pickle.UnpicklingError, EOFError, RuntimeError) as err:
            raise ModelLoadError(f"{model_id}: cannot read weights file {os.path.basename(model_file)} "
                                 f"(corrupt or not a weights file: {err})") from None
        load_state_dict_strict(model, state_dict, source=model_id)
        model._loaded_card = (_find_card(model_id, download), weights_digest(model))
        return model.to(map_location).eval()

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The card this model was loaded with while its weights are unchanged; the generic card otherwise."""
        card, digest = getattr(self, "_loaded_card", (None, None))
        if card is not None and digest == weights_digest(self):
            return ModelCard(card)
        return super().generate_model_card(*args, **kwargs)


def weights_digest(model: nn.Module) -> str:
    """A fingerprint of the weights: a loaded card stays with the model only while this is unchanged."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _find_card(model_id: str, download: dict[str, Any]) -> str | None:
    """README.md of a model folder or repo, or None where it has none (or the Hub cannot be reached)."""
    try:
        path = os.path.join(model_id, CARD_NAME) if os.path.isdir(model_id) else \
            hf_hub_download(repo_id=model_id, filename=CARD_NAME, **download)
        return Path(path).read_text(encoding="utf-8") if os.path.isfile(path) else None
    except (EntryNotFoundError, LocalEntryNotFoundError, HfHubHTTPError, OSError, UnicodeDecodeError):
        return None


def _find_weights(model_id: str, allow_pickle: bool, download: dict[str, Any]) -> tuple[str, bool]:
    """Path of the weights file and whether it is a pickle (refused unless allowed)."""
    def fetch(filename: str) -> str | None:
        if os.path.isdir(model_id):
            path = os.path.join(model_id, filename)
            return path if os.path.isfile(path) else None
        try:
            return hf_hub_download(repo_id=model_id, filename=filename, **download)
        except EntryNotFoundError:
            return None

    if (path := fetch(WEIGHTS_NAME)) is not None:
        return path, False
    if (path := fetch(PICKLE_WEIGHTS_NAME)) is None:
        raise ModelLoadError(f"{model_id}: no {WEIGHTS_NAME} found")
    if not allow_pickle:
        raise ModelLoadError(
            f"{model_id}: only a pickle ({PICKLE_WEIGHTS_NAME}) is offered; ganzoo loads safetensors. "
            "If you trust this file, pass allow_pickle=True (it is then read with weights_only=True)."
        )
    return path, True


def load_state_dict_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str = "") -> None:
    """Load weights, raising one clear error for missing, unexpected or mis-shaped tensors."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = sorted(k for k in set(expected) & set(state_dict) if expected[k].shape != state_dict[k].shape)
    if missing or unexpected or mismatched:
        def head(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
        problems = [f"{label}: {head(keys)}" for label, keys in
                    (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)) if keys]
        raise ModelLoadError(f"weights from {source or 'state dict'} do not fit {type(model).__name__}: "
                             + "; ".join(problems))
    model.load_state_dict(state_dict, strict=True)


def save_with_card(model: GanzooModel, save_directory: str | Path, template_path: str | Path,
                   **card_fields: Any) -> Path:
    """`save_pretrained` plus a model card rendered from a family template in `ganzoo/model_cards/`.

    The card's Hub metadata (licence, datasets, base model, papers, model-index) comes
    from the same fields as its text (`cards.card_metadata`). The folder then holds
    exactly what is published (config.json, model.safetensors, README.md): upload it
    as is with `HfApi.upload_folder` (`ganzoo publish`).
    """
    save_directory = Path(save_directory)
    save_directory.mkdir(parents=True, exist_ok=True)
    (save_directory / CARD_NAME).unlink(missing_ok=True)
    info = model._hub_mixin_info
    card = ModelCard.from_template(
        ModelCardData(),
        template_path=str(template_path),
        repo_url=info.repo_url,
        class_name=type(model).__name__,
        config=model._hub_mixin_config,
        num_parameters=count_parameters(model),
        **card_fields,
    )
    card.text = link_papers(card.text)
    card.data = card_metadata(info.model_card_data, Path(template_path).name, card_fields, card.text)
    card.save(save_directory / CARD_NAME)
    model.save_pretrained(save_directory)
    return save_directory


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
