"""`ganzoo publish`: every bundled model to `NS/<name>` with its measured card, and the Space folder to a Space repo.

Each model folder is uploaded as it is bundled (config.json, model.safetensors, README.md and any
picture its card shows) with `HfApi.upload_folder`, never through `push_to_hub`, which would
re-save it. Only the card's references to other ganzoo repos (`base_model`, a Space's `models:`)
are pointed at the chosen namespace. The token is the usual one: `HF_TOKEN` or `hf auth login`.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, RepoCard, get_token

from ganzoo.registry import MODELS

SPACE_FILES = ("README.md", "app.py", "requirements.txt")
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}$")


@dataclass(frozen=True)
class Repo:
    """One repository to create and fill: what `--dry-run --json` prints, and what is uploaded."""

    repo_id: str
    repo_type: str  # "model" or "space"
    folder: Path
    files: list[str]
    card: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "repo_type": self.repo_type, "files": self.files, "card": self.card}


def check_name(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"{kind} {name!r} is not a Hub user, organisation or repo name "
                         "(letters, digits, '-', '_', '.'; no '/')")
    return name


def retarget(card: RepoCard, namespace: str) -> RepoCard:
    """Point the card's references to bundled ganzoo repos (`base_model`, `models`) at `namespace`."""
    moved = {entry.repo_id: f"{namespace}/{entry.name}" for entry in MODELS.values()}
    for key in ("base_model", "models"):
        value = getattr(card.data, key, None)
        if isinstance(value, str):
            setattr(card.data, key, moved.get(value, value))
        elif isinstance(value, list):
            setattr(card.data, key, [moved.get(v, v) for v in value])
    return card


def stage(source: Path, work: Path, repo_id: str, repo_type: str, namespace: str) -> Repo:
    """Copy `source` to `work/<repo_id>` with its card retargeted; the copy is exactly what is uploaded."""
    folder = work / repo_type / repo_id
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".gradio"))
    card = retarget(RepoCard.load(folder / "README.md"), namespace)
    card.save(folder / "README.md")
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return Repo(repo_id, repo_type, folder, files, card.data.to_dict())


def plan(namespace: str, space_dir: Path | None, work: Path, space_name: str = "ganzoo") -> list[Repo]:
    """Stage every bundled model, then the Space (if `space_dir` is given), under `work`."""
    check_name("namespace", namespace)
    check_name("Space name", space_name)
    repos = [stage(entry.bundled_path, work, f"{namespace}/{entry.name}", "model", namespace)
             for entry in MODELS.values() if entry.is_bundled]
    if not repos:
        raise ValueError("this install bundles no model weights: nothing to publish")
    if space_dir is not None:
        space_dir = Path(space_dir)
        missing = [name for name in SPACE_FILES if not (space_dir / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{space_dir} is not a built Space (no {', '.join(missing)}): "
                                    "run `make space` first, or pass --space-dir or --no-space")
        repos.append(stage(space_dir, work, f"{namespace}/{space_name}", "space", namespace))
    return repos


def upload(repos: list[Repo], api: HfApi | None = None) -> list[str]:
    """Create each repo (kept if it exists) and upload its folder in one commit; returns the commit URLs."""
    api = api or HfApi()
    urls = []
    for repo in repos:
        extra = {"space_sdk": "gradio"} if repo.repo_type == "space" else {}
        api.create_repo(repo.repo_id, repo_type=repo.repo_type, exist_ok=True, **extra)
        commit = api.upload_folder(repo_id=repo.repo_id, repo_type=repo.repo_type, folder_path=repo.folder,
                                   commit_message="Publish with `ganzoo publish`")
        urls.append(str(getattr(commit, "commit_url", commit)))
    return urls


def publish(namespace: str, space_dir: Path | None, space_name: str = "ganzoo", dry_run: bool = False,
            api: HfApi | None = None) -> list[dict[str, Any]]:
    """Stage every repo in a temporary folder and upload it (unless `dry_run`); one summary per repo."""
    if not dry_run and api is None and get_token() is None:
        raise PermissionError("no Hugging Face token: run `hf auth login` or set HF_TOKEN")
    with tempfile.TemporaryDirectory(prefix="ganzoo-publish-") as work:
        repos = plan(namespace, space_dir, Path(work), space_name)
        summaries = [repo.summary() for repo in repos]
        if not dry_run:
            for summary, url in zip(summaries, upload(repos, api)):
                summary["commit_url"] = url
    return summaries
