"""The Gradio app (space/app.py): its API through gradio_client, and the page in headless Chromium.

One server per module: `python space/app.py` in a subprocess (the same entry point as
`make demo`), on a free loopback port, with a tiny untrained digits generator.
"""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo import pipelines
from ganzoo.models import DigitGenerator

from app_server import app_server, browser_page, load_app_module, make_client

REPO = Path(__file__).resolve().parents[2]
APP_FILE = REPO / "space" / "app.py"
START_TIMEOUT_S = 90


def pixels(image: Image.Image | str | Path) -> np.ndarray:
    image = image if isinstance(image, Image.Image) else Image.open(image)
    return np.asarray(image.convert("L"), dtype=np.int16)


def assert_same_image(actual: Image.Image | str | Path, expected: Image.Image) -> None:
    a, e = pixels(actual), pixels(expected)
    assert a.shape == e.shape, f"image is {a.shape[::-1]} pixels, expected {e.shape[::-1]}"
    # <= 1 grey level: float reductions may differ across processes/thread counts before rounding
    assert np.abs(a - e).max() <= 1


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-mnist-dcgan")
    DigitGenerator(channels=4).eval().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_generator(tiny_model_dir):
    return ganzoo.load(str(tiny_model_dir))


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    """URL of `python space/app.py` running with the tiny generator; stopped after the module."""
    log_path = tmp_path_factory.mktemp("app") / "server.log"
    with app_server({"GANZOO_MODEL_MNIST_DCGAN": str(tiny_model_dir)}, log_path) as running:
        yield running.url


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    return make_client(server, tmp_path_factory.mktemp("client-downloads"))


# --- the app object, in process (no server) ----------------------------------------------------

def test_build_app_has_named_endpoints_and_bounded_queue():
    app = load_app_module().build_app()
    names = {fn.api_name for fn in app.fns.values()}
    assert {"sample_digits", "interpolate_digits"} <= names
    assert app._queue.max_size is not None  # a flood gets "Queue is full" instead of waiting forever


def test_bad_inputs_are_clear_errors():
    import gradio as gr

    load_app_module()
    from tabs import digits

    for call, message in [
        (lambda: digits.sample_digits("11", 4, 0), "Digit must be"),
        (lambda: digits.sample_digits("7", 0, 0), "Count must be from 1 to 64"),
        (lambda: digits.sample_digits("7", 65, 0), "Count must be from 1 to 64"),
        (lambda: digits.sample_digits("7", 2.5, 0), "Count must be a whole number"),
        (lambda: digits.sample_digits("7", 4, None), "Seed is missing"),
        (lambda: digits.sample_digits("7", 4, -1), "Seed must be from 0"),
        (lambda: digits.interpolate_digits("random (0-9)", 1, 2, 10), "Digit must be 0-9"),
        (lambda: digits.interpolate_digits("3", 1, 2, 1), "Steps must be from 2"),
    ]:
        with pytest.raises(gr.Error, match=message):
            call()
    assert digits.parse_digit("random (0-9)") is None and digits.parse_digit(7) == 7


# --- through the HTTP API -----------------------------------------------------------------------

def test_sample_digits_api(client, tiny_generator):
    path = client.predict("7", 16, 42, api_name="/sample_digits")
    expected = pipelines.sample_digits_grid(tiny_generator, n=16, seed=42, digit=7, nrow=8)
    with Image.open(path) as image:
        assert image.width >= 8 * 28 and image.height >= 2 * 28
        assert_same_image(image, expected)
    again = client.predict("7", 16, 42, api_name="/sample_digits")
    assert np.array_equal(pixels(path), pixels(again)), "the same seed gave a different grid"
    other = client.predict("7", 16, 43, api_name="/sample_digits")
    assert not np.array_equal(pixels(path), pixels(other)), "the seed is ignored"


def test_interpolate_digits_api(client, tiny_generator):
    path = client.predict("3", 1, 2, 6, api_name="/interpolate_digits")
    expected = pipelines.interpolate_digits(tiny_generator, seed_a=1, seed_b=2, digit=3, steps=6)
    with Image.open(path) as image:
        assert image.width >= 6 * 28 and image.height >= 28
        assert_same_image(image, expected)
    again = client.predict("3", 1, 2, 6, api_name="/interpolate_digits")
    assert np.array_equal(pixels(path), pixels(again)), "the same seeds gave a different strip"


def test_bad_input_over_the_api_is_an_error(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="11"):
        client.predict("11", 4, 0, api_name="/sample_digits")


# --- in a real browser --------------------------------------------------------------------------

@pytest.mark.browser
def test_generate_in_browser(server, tiny_generator, tmp_path):
    with browser_page(server) as page:
        page.locator("#digits-digit input").click()
        page.get_by_role("option", name="4", exact=True).click()
        count = page.locator("#digits-count input[type=number]")
        count.fill("10")
        count.press("Enter")
        page.locator("#digits-generate").click()
        output = page.locator("#digits-grid img")
        output.wait_for(state="visible")
        response = page.request.get(urljoin(server, output.get_attribute("src")))
        assert response.ok, response.status
        shown = Image.open(io.BytesIO(response.body()))
        page.locator("#interp-run").click()
        page.locator("#interp-strip img").wait_for(state="visible")
        page.screenshot(path=str(tmp_path / "digits.png"), full_page=True)
    expected = pipelines.sample_digits_grid(tiny_generator, n=10, seed=0, digit=4, nrow=8)
    assert_same_image(shown, expected)  # right size, and the chosen digit and count reached the model


def test_identical_results_are_cached_once_never_rewritten(tmp_path):
    """Gradio's cache rewrote identical outputs in place, cutting off concurrent downloads."""
    from gradio import processing_utils

    app = load_app_module()
    assert processing_utils.save_pil_to_cache is app.save_pil_to_cache_once
    image = Image.new("RGB", (8, 8), (10, 200, 30))
    first = Path(app.save_pil_to_cache_once(image, str(tmp_path), format="png"))
    stamp = first.stat().st_mtime_ns
    second = Path(app.save_pil_to_cache_once(image, str(tmp_path), format="png"))
    assert second == first and first.stat().st_mtime_ns == stamp
    assert_same_image(first, image)
    assert not list(tmp_path.rglob("*.partial"))


def test_examples_are_cached_lazily_and_result_files_bounded(monkeypatch):
    """A free Space recomputes no example after its first click, computes none at start, and prunes result files."""
    import gradio as gr

    options, real_examples = [], gr.Examples

    def recording_examples(*args, **kwargs):
        options.append({k: kwargs.get(k) for k in ("cache_examples", "cache_mode")})
        return real_examples(*args, **kwargs)

    monkeypatch.setattr(gr, "Examples", recording_examples)
    module = load_app_module()
    app = module.build_app()
    assert len(options) == 5  # digits, upscale, deblur x2, style
    assert all(o == {"cache_examples": True, "cache_mode": "lazy"} for o in options)
    assert app.delete_cache == module.DELETE_CACHE and module.DELETE_CACHE[1] <= 24 * 3600
