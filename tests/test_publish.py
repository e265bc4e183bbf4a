"""`ganzoo publish` and `make space`: the repos, their exact files and cards, offline against a stand-in Hub API."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, SpaceCard

from ganzoo import cli, publish
from ganzoo.registry import MODELS

from conftest import REPO_ROOT

BUNDLED = [m for m in MODELS.values() if m.is_bundled]


def load_space_builder():
    spec = importlib.util.spec_from_file_location("space_build", REPO_ROOT / "space" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def space_dir(tmp_path_factory) -> Path:
    return load_space_builder().build_space(tmp_path_factory.mktemp("space") / "space",
                                            [m.repo_id for m in MODELS.values()])


def test_built_space_is_self_contained(space_dir):
    card = SpaceCard.load(space_dir / "README.md")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py"
    assert card.data.models == [m.repo_id for m in MODELS.values()]
    for entry in BUNDLED:  # the package with its weights and cards, beside app.py
        for name in ("config.json", "model.safetensors", "README.md"):
            assert (space_dir / "ganzoo" / "pretrained" / entry.name / name).is_file()
    assert (space_dir / "ganzoo" / "model_cards" / "generic.md").is_file()
    assert {p.name for p in (space_dir / "tabs").glob("*.py")} >= {"digits.py", "upscale.py", "deblur.py", "style.py"}
    assert not list(space_dir.rglob("__pycache__")) and not list((space_dir / "examples").glob("*.py"))
    lines = (space_dir / "requirements.txt").read_text().splitlines()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert f"gradio=={card.data.sdk_version}" in lines
    requirements = [line for line in lines if line and not line.startswith(("#", "-"))]
    assert not [line for line in requirements if "git+" in line or "@" in line or "ganzoo" in line]
    assert {line.split("=")[0].split(">")[0] for line in requirements} >= {"torch", "torchvision", "safetensors"}


def test_dry_run_lists_every_model_and_the_space(space_dir, capsys):
    assert cli.main(["publish", "--namespace", "me", "--space-dir", str(space_dir), "--dry-run", "--json"]) == 0
    repos = {r["repo_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(repos) == [f"me/{m.name}" for m in BUNDLED] + ["me/ganzoo"]
    for entry in BUNDLED:
        repo = repos[f"me/{entry.name}"]
        assert repo["repo_type"] == "model"
        assert repo["files"] == sorted(p.name for p in entry.bundled_path.iterdir())
        bundled = ModelCard.load(entry.bundled_path / "README.md").data.to_dict()
        # a fine-tuned model's base (srgan-x4's srresnet-x4, deblurgan's deblur-unet) moves to the same namespace
        moved = {"base_model": "me/" + bundled["base_model"].split("/")[1]} if "base_model" in bundled else {}
        assert repo["card"] == {**bundled, **moved}
    assert {e.name for e in BUNDLED if "base_model" in repos[f"me/{e.name}"]["card"]} == {"srgan-x4", "deblurgan"}
    space = repos["me/ganzoo"]
    assert space["repo_type"] == "space"
    assert space["card"]["models"] == [f"me/{m.name}" for m in MODELS.values()]
    assert {"README.md", "app.py", "requirements.txt", "ganzoo/registry.py",
            "ganzoo/pretrained/srgan-x4/model.safetensors"} <= set(space["files"])


class RecordingApi:
    """A stand-in for HfApi: records what would be created and a copy of what would be uploaded."""

    def __init__(self):
        self.created, self.uploaded = [], {}

    def create_repo(self, repo_id, repo_type=None, exist_ok=False, **kwargs):
        self.created.append((repo_id, repo_type, kwargs))

    def upload_folder(self, repo_id, repo_type, folder_path, **kwargs):
        folder = Path(folder_path)
        self.uploaded[repo_id] = {p.relative_to(folder).as_posix(): p.read_bytes()
                                  for p in folder.rglob("*") if p.is_file()}
        return f"https://hub.example/{repo_type}/{repo_id}/commit/1"


def test_publish_uploads_each_folder_with_its_measured_card(space_dir):
    api = RecordingApi()
    repos = publish.publish("ganzoo", space_dir, api=api)
    assert [(r, t) for r, t, _ in api.created] == [(m.repo_id, "model") for m in BUNDLED] + [("ganzoo/ganzoo", "space")]
    assert api.created[-1][2] == {"space_sdk": "gradio"}
    for entry in BUNDLED:  # under its own namespace every file goes up byte for byte, card included
        assert api.uploaded[entry.repo_id] == {p.name: p.read_bytes() for p in entry.bundled_path.iterdir()}
    assert api.uploaded["ganzoo/ganzoo"]["requirements.txt"] == (space_dir / "requirements.txt").read_bytes()
    assert all(r["commit_url"].startswith("https://hub.example/") for r in repos)


def test_publish_elsewhere_keeps_the_card_text_and_moves_its_links(space_dir):
    api = RecordingApi()
    publish.publish("someone", None, api=api)
    assert "someone/ganzoo" not in api.uploaded
    card = ModelCard(api.uploaded["someone/srgan-x4"]["README.md"].decode())
    assert card.data.base_model == "someone/srresnet-x4"
    assert card.text == ModelCard.load(MODELS["srgan-x4"].bundled_path / "README.md").text


@pytest.mark.parametrize("argv, message", [
    (["--namespace", "a/b"], "not a Hub user"),
    (["--namespace", "me", "--space-dir", "no/such/space"], "run `make space` first"),
])
def test_publish_errors_are_one_clear_line(argv, message, capsys):
    assert cli.main(["publish", *argv, "--dry-run"]) == 2
    assert message in capsys.readouterr().err


def test_publish_without_a_token_says_how_to_log_in(monkeypatch, capsys):
    monkeypatch.setattr(publish, "get_token", lambda: None)
    assert cli.main(["publish", "--namespace", "me", "--no-space"]) == 2
    assert "hf auth login" in capsys.readouterr().err
