"""Shared fixtures: offline Hub, a tiny generated MNIST, and running train scripts in-process."""

from __future__ import annotations

import os

# The Hub client reads these when it is imported: set them before anything imports huggingface_hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gzip  # noqa: E402
import importlib.util  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
TRAIN_SCRIPTS = REPO_ROOT / "train_scripts"

MNIST_TRAIN, MNIST_TEST = 256, 64


@pytest.fixture(autouse=True, scope="session")
def _hub_offline(tmp_path_factory: pytest.TempPathFactory):
    """No test may reach the network or write into the user's Hugging Face cache."""
    from huggingface_hub import constants

    cache = tmp_path_factory.mktemp("hf-home")
    saved = (constants.HF_HUB_OFFLINE, constants.HF_HUB_CACHE)
    constants.HF_HUB_OFFLINE = True
    constants.HF_HUB_CACHE = str(cache / "hub")
    os.environ["HF_HUB_CACHE"] = str(cache / "hub")
    yield
    constants.HF_HUB_OFFLINE, constants.HF_HUB_CACHE = saved


# -- a tiny MNIST in IDX format ----------------------------------------------------------------------

def digit_patterns(labels: np.ndarray, seed: int) -> np.ndarray:
    """28x28 uint8 images that a classifier can tell apart: class c lights a bar whose row and
    column depend on c, plus a little per-image noise and a one-pixel jitter."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, size=(len(labels), 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
        dy, dx = rng.integers(-1, 2, size=2)
        row, col = 3 + 2 * int(c) + dy, 3 + 2 * int(c) + dx
        images[i, row:row + 2, 4:24] = 255
        images[i, 4:24, col:col + 2] = 200
    return images


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a gzipped unsigned-byte IDX file: magic 0,0,8,ndim, then big-endian int32 dims, then data."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def make_fake_mnist(folder: Path, n_train: int = MNIST_TRAIN, n_test: int = MNIST_TEST) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        labels = np.arange(n, dtype=np.uint8) % 10
        np.random.default_rng(seed + 100).shuffle(labels)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", digit_patterns(labels, seed))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


@pytest.fixture(scope="session")
def fake_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the four gzipped MNIST IDX files: 256 train and 64 test digits."""
    return make_fake_mnist(tmp_path_factory.mktemp("mnist"))


# -- train scripts, run in this process ----------------------------------------------------------------

def load_train_script(name: str) -> ModuleType:
    """Import `train_scripts/<name>.py` by path (the folder is not a package)."""
    path = TRAIN_SCRIPTS / f"{name}.py"
    module_name = f"_ganzoo_train_script_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def reset_accelerate_state() -> None:
    """Accelerate keeps process-wide singletons; clear them so each run starts like a fresh process."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def run_train_script(name: str, argv: Sequence[str | os.PathLike]) -> None:
    """Run a train script's `main(argv)` in this process, as `python train_scripts/<name>.py argv` would."""
    module = load_train_script(name)
    reset_accelerate_state()
    try:
        module.main([str(a) for a in argv])
    finally:
        reset_accelerate_state()


@pytest.fixture
def run_script() -> Callable[[str, Sequence[str | os.PathLike]], None]:
    return run_train_script
