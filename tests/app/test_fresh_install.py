"""What ships, used with the repository out of reach: one fresh venv (shared, it costs minutes) installed
only from the built Space's requirements.txt serves the Space; then the built wheel, installed into it,
trains two steps and exports with its card.

pip here has no route to the CPU-wheel index the requirements name (download.pytorch.org), so it is
called with `--retries 0`: each lookup there fails at once and pip takes the pinned torch release
from the local package index instead (there a CUDA build; on a Space, the CPU wheel).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from PIL import Image

from app_server import app_server, make_client
from conftest import REPO_ROOT, TRAIN_SCRIPTS

pytestmark = pytest.mark.slow
CLEAN_ENV = {key: value for key, value in os.environ.items()
             if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def run(argv: list[str | Path], cwd: Path, timeout: int = 900) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=CLEAN_ENV, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{argv[:4]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="session")
def fresh(tmp_path_factory) -> Iterator[dict[str, Path]]:
    """A built Space copied away from the repo, and a fresh venv holding only its requirements."""
    spec = importlib.util.spec_from_file_location("space_build", REPO_ROOT / "space" / "build.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    from ganzoo.registry import MODELS

    root = tmp_path_factory.mktemp("fresh")
    space = builder.build_space(root / "space", [m.repo_id for m in MODELS.values()])
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    try:
        run([python, "-m", "pip", "install", "--retries", "0", "--no-compile", "-r", space / "requirements.txt"],
            cwd=root)
        yield {"root": root, "space": space, "python": python}
    finally:  # ~6 GB that pytest would otherwise keep for its last three sessions
        shutil.rmtree(root / "venv", ignore_errors=True)


def test_built_space_serves_every_endpoint_from_a_fresh_venv(fresh, tmp_path):
    space, python = fresh["space"], fresh["python"]
    here = run([python, "-c", "import sys; sys.path.insert(0, '.'); import ganzoo, torch, gradio; "
                "print(ganzoo.__file__, torch.__version__, gradio.__version__)"], cwd=space).split()
    assert Path(here[0]).is_relative_to(space)
    assert f"torch=={here[1].split('+')[0]}" in (space / "requirements.txt").read_text().splitlines()
    assert here[2] == (space / "README.md").read_text().split("sdk_version: ")[1].split()[0]

    photo, shaky = space / "examples" / "chelsea_96.png", space / "examples" / "chelsea_shake_192.png"
    from gradio_client import handle_file

    calls = {
        "/sample_digits": ("7", 4, 42),
        "/interpolate_digits": ("3", 1, 2, 4),
        "/upscale": (handle_file(str(photo)), "SRGAN x4"),
        "/measure": (handle_file(str(photo)),),
        "/deblur": (handle_file(str(shaky)),),
        "/blur_and_deblur": (handle_file(str(photo)), 15, 0),
        "/deblur_blind": (handle_file(str(shaky)),),
        "/blur_and_estimate": (handle_file(str(photo)), 15, 0),
        "/stylize": (handle_file(str(space / "examples" / "style_content_chelsea.jpg")), "mosaic", None, 0.8, False),
    }
    env = {"PYTHONPATH": None, "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    with app_server(env, tmp_path / "server.log", python=str(python), app_file=space / "app.py", cwd=space) as server:
        client = make_client(server.url, tmp_path / "downloads")
        assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == set(calls)
        for api_name, args in calls.items():
            result = client.predict(*args, api_name=api_name)
            files = result_files(result)
            assert files, f"{api_name} returned no image: {result!r}"
            with Image.open(files[0]) as image:
                assert min(image.size) > 0, api_name
        assert server.alive(), server.log_tail()


def result_files(result) -> list[str]:
    """Paths of the files in an endpoint's result (a path, a tuple of them, a gallery of dicts, ...)."""
    if isinstance(result, str):
        return [result] if os.path.isfile(result) else []
    values = result.values() if isinstance(result, dict) else result if isinstance(result, (list, tuple)) else []
    return [path for value in values for path in result_files(value)]


def test_wheel_trains_and_exports_with_its_card(fresh, tmp_path):
    """Built wheel, installed into the fresh venv: a train script run from outside the repo exports a card."""
    root, python = fresh["root"], fresh["python"]
    source, wheels = tmp_path / "source", tmp_path / "wheels"  # a clean copy: no stale build/ of the checkout
    shutil.copytree(REPO_ROOT / "ganzoo", source / "ganzoo", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO_ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source],
        cwd=tmp_path)
    (wheel,) = wheels.glob("ganzoo-*.whl")
    run([python, "-m", "pip", "install", "--retries", "0", "--no-compile", f"{wheel}[train]"], cwd=root)
    data = tmp_path / "data"
    for split, count in (("train", 3), ("val", 2)):
        (data / split).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (48 + 8 * i, 40), (40 * i, 90, 200 - 30 * i)).save(data / split / f"{i}.png")
    script = shutil.copy(TRAIN_SCRIPTS / "train_srresnet.py", tmp_path / "train_srresnet.py")
    run([python, script, "--train-dirs", data / "train", "--val-dir", data / "val", "--output-dir", tmp_path / "run",
         "--num-blocks", "1", "--channels", "8", "--max-steps", "2", "--batch-size", "2", "--crop-size", "32",
         "--report-to", "none", "--eval-every", "2", "--sample-every", "2", "--cpu"], cwd=tmp_path)
    where = run([python, "-c", "import ganzoo; print(ganzoo.__file__)"], cwd=tmp_path).strip()
    assert "site-packages" in where and not Path(where).is_relative_to(REPO_ROOT)
    card = ModelCard.load(tmp_path / "run" / "final" / "README.md")
    assert card.data.library_name == "ganzoo" and "Steps: 2 " in card.text
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()
