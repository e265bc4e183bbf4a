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
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402
from skimage import data as skdata  # noqa: E402

from ganzoo import degrade, imaging  # noqa: E402
from ganzoo.blur_sets import make_blur_set, set_kernels  # noqa: E402
from ganzoo.models import AdaINStyleTransfer, DeblurGANGenerator, SRResNet, TransformerNet  # noqa: E402
from ganzoo.models.vgg import VGGFeatures  # noqa: E402
from ganzoo.precision import OVERRIDE_ENV  # noqa: E402
from ganzoo.registry import MODELS  # noqa: E402

# Machines differ (DESIGN.md, "Habits"): whether a CPU computes bf16 natively decides what "auto" means for
# training and inference. So the suite gives every test, and every process it starts, one answer on any host:
# no native bf16, unless GANZOO_CPU_BF16 is set (GANZOO_CPU_BF16=1 runs the whole suite as on a CPU with
# native bf16). A test whose outcome depends on the rule takes the `cpu_bf16` fixture and runs under both.
os.environ.setdefault(OVERRIDE_ENV, "0")

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


@pytest.fixture(params=[False, True], ids=["cpu-without-bf16", "cpu-with-native-bf16"])
def cpu_bf16(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Runs a test as on each kind of CPU (GANZOO_CPU_BF16=0, then 1); the value: whether bf16 is native."""
    monkeypatch.setenv(OVERRIDE_ENV, "1" if request.param else "0")
    return request.param


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


def randomize_affine_norms(model: torch.nn.Module) -> torch.nn.Module:
    """Non-default weights and biases in `model`'s affine instance norms, so that a round trip checks them too."""
    for module in model.modules():
        if isinstance(module, torch.nn.InstanceNorm2d) and module.affine:
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    return model


# -- the app's tabs: a test module sets TAB (a module of space/tabs/) and a module-scoped `tab_env` fixture -----

@pytest.fixture
def tab(tab_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> ModuleType:
    """The module's tab, imported in this process with `tab_env` set."""
    from app_server import load_tab

    return load_tab(request.module.TAB, tab_env, monkeypatch)


@pytest.fixture(scope="module")
def server(tab_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """URL of `python space/app.py` running with `tab_env`; stopped after the module."""
    from app_server import serve

    yield from serve(tab_env, tmp_path_factory, f"app-{request.module.TAB}")


@pytest.fixture(scope="module")
def client(server: str, tmp_path_factory: pytest.TempPathFactory):
    from app_server import make_client

    return make_client(server, tmp_path_factory.mktemp("client-downloads"))


# -- VGG19 feature networks: models/test_vgg.py and the perceptual-loss tests build the same ones -------------

LAYERS = ("relu1_2", "relu2_2", "conv3_3", "relu3_3", "relu5_4")


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


# -- super-resolution: tiny SRResNets, image folders, a tiny SR model folder ----------------------------------

TINY_SRRESNET = {"num_blocks": 1, "channels": 8}
BUNDLED_SRRESNET = MODELS["srresnet-x4"]
needs_bundled = pytest.mark.skipif(not BUNDLED_SRRESNET.is_bundled,
                                   reason="ganzoo/pretrained/srresnet-x4 is not bundled")


def write_png(path: Path, height: int, width: int, seed: int) -> Path:
    """A smooth-ish random RGB image (noise plus gradients), so that SR metrics are finite."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx / max(width - 1, 1), yy / max(height - 1, 1), (xx + yy) / (height + width)], -1)
    pixels = np.clip(base * 200 + rng.integers(0, 55, size=(height, width, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def tiny_srresnet(scale: int = 4, seed: int = 0) -> SRResNet:
    torch.manual_seed(seed)
    return SRResNet(scale=scale, **TINY_SRRESNET).eval()


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-sr")
    tiny_srresnet(4, seed=1).save_pretrained(folder)
    return folder


# -- style transfer: tiny fast networks, a tiny AdaIN model and their folders ---------------------------------

TINY_NET = {"channels": 4, "num_blocks": 1}
TINY_ADAIN = {"channels": 4, "encoder_weights": "random"}


def tiny_net(seed: int = 0) -> TransformerNet:
    torch.manual_seed(seed)
    return TransformerNet(**TINY_NET).eval()


@pytest.fixture(scope="module")
def adain_model() -> AdaINStyleTransfer:
    torch.manual_seed(0)
    model = AdaINStyleTransfer(**TINY_ADAIN).eval()
    with torch.no_grad():  # lift the untrained decoder's output into [0, 1], so that clamping hides nothing
        model.decoder[-1][1].weight.mul_(0.1)
        model.decoder[-1][1].bias.fill_(0.5)
    return model


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, adain_model) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("style-models")
    tiny_net().save_pretrained(root / "style-tiny")
    adain_model.save_pretrained(root / "adain")
    return {"fast": root / "style-tiny", "adain": root / "adain"}


# -- deblurring: shake kernels, a Levin-like set, a tiny DeblurGAN folder -------------------------------------

def shake(seed: int, size: int = 9) -> torch.Tensor:
    return degrade.random_trajectory_kernel(size, torch.Generator().manual_seed(seed), max_length=8,
                                            min_length_fraction=1.0)


def save(tensor: torch.Tensor, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    imaging.tensor_to_image(tensor).save(path)


@pytest.fixture(scope="module")
def kernels() -> list[torch.Tensor]:
    return [shake(1), shake(2)]


@pytest.fixture(scope="module")
def levin_like(tmp_path_factory, kernels):
    """The Levin layout in small: sharp/im_K.png and blurred_x/im_K_ker_J.png, 2 images x 2 kernels."""
    root = tmp_path_factory.mktemp("levin")
    crops = [skdata.camera()[100:164, 200:264], skdata.camera()[300:364, 100:164]]
    for k, crop in enumerate(crops, 1):
        sharp = imaging.image_to_tensor(Image.fromarray(crop))[0]
        save(sharp, root / "sharp" / f"im_{k}.png")
        for j, kernel in enumerate(kernels, 1):
            save(imaging.quantize(degrade.blur(sharp, kernel)), root / "blurred_noisefree" / f"im_{k}_ker_{j}.png")
    return root


@pytest.fixture(scope="module")
def tiny_deblur_dir(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-deblur")
    DeblurGANGenerator(channels=4, num_blocks=1).eval().save_pretrained(folder)
    return folder


# -- unseen blur: a tiny DeblurUNet config, photos and a held-out (Lai-like) set ------------------------------

TINY_UNET = {"channels": 4, "encoder_blocks": [1, 1], "middle_blocks": 1, "decoder_blocks": [1, 1]}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Three small photos (64x72) in a folder, as a set's source images."""
    folder = tmp_path_factory.mktemp("photos")
    for name, image in (("astronaut", skdata.astronaut()), ("coffee", skdata.coffee()), ("chelsea", skdata.chelsea())):
        Image.fromarray(image[40:104, 60:132]).save(folder / f"{name}.png")
    return folder


def estimator_dev_set(root: Path) -> Path:
    """A development set for the kernel estimator's scripts under `root`: 160 px crops of two skimage photos
    (camera, coffee), each blurred by two camera-shake paths of 8-20 px (4 cases)."""
    images = root / "images"
    images.mkdir(parents=True)
    Image.fromarray(skdata.camera()[100:260, 150:310]).save(images / "camera.png")
    Image.fromarray(skdata.coffee()[100:260, 200:360]).save(images / "coffee.png")
    return make_blur_set(sorted(images.iterdir()), root / "dev", set_kernels(2, 0, lengths=(8, 20)), seed=0)


@pytest.fixture(scope="module")
def lai_set(tmp_path_factory, photos):
    out = tmp_path_factory.mktemp("sets") / "moderate"
    return make_blur_set(imaging.list_images(photos), out, set_kernels(2, seed=0, lengths=(10, 16)), seed=0, noise=0.0)


# -- bf16: a tiny SRResNet and image crops --------------------------------------------------------------------

@pytest.fixture
def tiny_sr() -> SRResNet:
    torch.manual_seed(0)
    return SRResNet(scale=4, num_blocks=1, channels=8).eval()


def crops(folder: Path, size: int, count: int = 2) -> Path:
    folder.mkdir(parents=True)
    for i, image in enumerate([data.astronaut(), data.coffee(), data.chelsea()][:count]):
        Image.fromarray(np.ascontiguousarray(image[100:100 + size, 100:100 + size])).save(folder / f"{i}.png")
    return folder
