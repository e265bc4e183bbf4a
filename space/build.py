"""Assemble a self-contained Hugging Face Space folder (`make space` -> build/space/).

    python space/build.py [--out build/space]

The folder holds the app and its tabs, the example images, the `ganzoo` package with its
bundled weights (imported from beside app.py, so the Space installs nothing from git),
README.md whose front matter names the model repos (`models:`), and a requirements.txt
that needs only the package index: ganzoo's dependencies from pyproject.toml, CPU-only
torch wheels, and gradio at the front matter's `sdk_version`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tomllib
from pathlib import Path

from huggingface_hub import SpaceCard

REPO = Path(__file__).resolve().parent.parent
SPACE = REPO / "space"
NOT_SHIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyi", "*.py.orig", ".gradio", "flagged")


def requirements(sdk_version: str) -> str:
    """requirements.txt: space/requirements.txt (CPU torch), gradio at the SDK version, ganzoo's other dependencies."""
    torch_lines = [line for line in (SPACE / "requirements.txt").read_text(encoding="utf-8").splitlines()
                   if line and not line.startswith("#")]
    pinned = {re.split(r"[<>=!~ \[;]", line)[0] for line in torch_lines}
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    others = [dep for dep in project["dependencies"] if re.split(r"[<>=!~ \[;]", dep)[0] not in pinned]
    lines = ["# Written by `make space` (space/build.py): space/requirements.txt, gradio at README.md's sdk_version",
             "# (which the Space installs anyway), ganzoo's dependencies from pyproject.toml. ganzoo itself is the",
             "# folder beside app.py.", *torch_lines, f"gradio=={sdk_version}", *others]
    return "\n".join(lines) + "\n"


def build_space(out: Path, model_repos: list[str]) -> Path:
    """Write the Space folder at `out` (replacing what was there) and return it."""
    from ganzoo.registry import MODELS

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shutil.copy2(SPACE / "app.py", out / "app.py")
    shutil.copytree(SPACE / "tabs", out / "tabs", ignore=NOT_SHIPPED)
    shutil.copytree(SPACE / "examples", out / "examples", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    shutil.copytree(REPO / "ganzoo", out / "ganzoo", ignore=NOT_SHIPPED)
    shutil.copy2(REPO / "LICENSE", out / "LICENSE")
    missing = [m.name for m in MODELS.values() if not m.is_bundled]
    if missing:
        raise SystemExit(f"not bundled, so the Space could not run offline: {missing}")
    card = SpaceCard.load(SPACE / "README.md")
    card.data.models = model_repos
    card.save(out / "README.md")
    (out / "requirements.txt").write_text(requirements(card.data.sdk_version), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "build" / "space")
    args = parser.parse_args(argv)
    import sys

    sys.path.insert(0, str(REPO))
    from ganzoo.registry import MODELS

    out = build_space(args.out, [m.repo_id for m in MODELS.values()])
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"built {out} ({size / 1e6:.1f} MB): {sorted(p.name for p in out.iterdir())}")


if __name__ == "__main__":
    main()
