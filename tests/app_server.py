"""Start `python space/app.py` on a free loopback port for tests and measurement scripts."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urljoin
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP_FILE = REPO / "space" / "app.py"
START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_mb(self) -> float:
        """Resident memory of the server process and its children, in MiB."""
        import psutil

        root = psutil.Process(self.process.pid)
        procs = [root, *root.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]


@contextlib.contextmanager
def app_server(env_extra: dict[str, str | None], log_path: Path, python: str = sys.executable,
               app_file: Path = APP_FILE, cwd: Path = REPO) -> Iterator[Server]:
    """`python space/app.py` on a free loopback port (as tests/app/test_app.py starts it); stopped on exit.
    A None in `env_extra` removes that variable."""
    port = free_port()
    env = {**os.environ, **env_extra, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    env = {key: value for key, value in env.items() if value is not None}
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([python, str(app_file)], cwd=cwd, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    server = Server(url, proc, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{app_file} exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{app_file} did not answer within {START_TIMEOUT_S}s:\n{server.log_tail()}")
            time.sleep(0.25)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextlib.contextmanager
def browser_page(url: str) -> Iterator:
    """A headless Chromium (Debian's, driven by Playwright) page open on `url`; the test is skipped
    when Chromium is not installed."""
    import pytest

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium chromium-driver)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(url)
            yield page
        finally:
            browser.close()


# -- what every tab's tests share -----------------------------------------------------------------

@contextlib.contextmanager
def tab_page(url: str, tab: str, image_input: str, image, folder: Path) -> Iterator:
    """A browser page (`browser_page`) on the tab named `tab`, with `image` (PIL) uploaded into the image
    input whose elem_id is `image_input` (e.g. "#deblur-input")."""
    path = folder / "upload.png"
    image.save(path)
    with browser_page(url) as page:
        page.get_by_role("tab", name=tab).click()
        page.locator(f"{image_input} input[type=file]").set_input_files(str(path))
        page.locator(f"{image_input} img").first.wait_for(state="visible")  # upload finished
        yield page


def run_and_measure(page, url: str, button: str, slider: str) -> list[tuple[int, int]]:
    """Click `button`; then the (width, height) of the two images of the gr.ImageSlider `slider` once its
    result is shown, fetched from the server as the browser would."""
    from PIL import Image

    page.locator(button).click()
    images = page.locator(f"{slider} img")
    images.nth(1).wait_for(state="visible")
    sizes = []
    for i in range(2):
        response = page.request.get(urljoin(url, images.nth(i).get_attribute("src")))
        assert response.ok, response.status
        sizes.append(Image.open(io.BytesIO(response.body())).size)
    return sizes


def load_app_module():
    """space/app.py imported fresh (so a tab reads the environment of the test that loads it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ganzoo_space_app", APP_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_tab(name: str, env: dict[str, str], monkeypatch):
    """The tab module `tabs.<name>` in this process, with `env` set for the test."""
    import importlib

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    load_app_module()
    return importlib.import_module(f"tabs.{name}")


def serve(env: dict[str, str], tmp_path_factory, name: str) -> Iterator[str]:
    """For a module-scoped fixture: `yield from serve(...)` gives the URL of a running app."""
    with app_server(env, tmp_path_factory.mktemp(name) / "server.log") as running:
        yield running.url


def make_client(url: str, downloads: Path):
    from gradio_client import Client

    return Client(url, verbose=False, analytics_enabled=False, download_files=str(downloads))


def random_image(width: int, height: int, seed: int = 0, mode: str = "RGB"):
    """A PIL image of uniform random pixels."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, len(mode)), dtype=np.uint8), mode)


def max_diff(a, b) -> int:
    """The largest per-channel difference between two PIL images of the same size and mode."""
    import numpy as np

    assert a.size == b.size and a.mode == b.mode, (a.size, a.mode, b.size, b.mode)
    return int(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).max())


def make_tiny_models(folder: Path) -> dict[str, str]:
    """Tiny untrained models for every tab, saved under `folder`; the env vars that point the tabs at them."""
    import torch

    from ganzoo.models import DigitGenerator
    from ganzoo.models.srgan import SRResNet

    torch.manual_seed(0)
    DigitGenerator(channels=4).eval().save_pretrained(folder / "digits")
    SRResNet(scale=4, num_blocks=1, channels=8).eval().save_pretrained(folder / "srgan")
    SRResNet(scale=4, num_blocks=1, channels=8).eval().save_pretrained(folder / "srresnet")
    return {"GANZOO_MODEL_MNIST_DCGAN": str(folder / "digits"), "GANZOO_MODEL_SRGAN_X4": str(folder / "srgan"),
            "GANZOO_MODEL_SRRESNET_X4": str(folder / "srresnet")}
