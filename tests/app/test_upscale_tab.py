"""The app's Upscale tab (space/tabs/upscale.py): in process, through gradio_client, and in headless Chromium.

One server per module, `python space/app.py` as in test_app.py, with tiny untrained SRResNets
(1 block, 8 channels) standing in for srgan-x4 and srresnet-x4 so every call takes milliseconds.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo import pipelines
from ganzoo.models.srgan import SRResNet

from app_server import load_app_module, max_diff, run_and_measure, tab_page
from app_server import random_image as rgb_image
from test_app import REPO

EXAMPLE = REPO / "space" / "examples" / "chelsea_96.png"


TAB = "upscale"  # the tab under test (the `tab`, `server` and `client` fixtures: tests/conftest.py)
# The app runs its models where `pipelines.pick_device()` says (CUDA on a GPU host): the expected images
# are computed there too, so that a GPU host compares like with like.
APP_DEVICE = pipelines.pick_device()


@pytest.fixture(scope="module")
def tiny_sr_dirs(tmp_path_factory) -> dict[str, Path]:
    """Two different tiny x4 SRResNets saved with save_pretrained: {"srgan": folder, "srresnet": folder}."""
    dirs = {}
    for seed, name in enumerate(("srgan", "srresnet")):
        torch.manual_seed(seed)
        dirs[name] = tmp_path_factory.mktemp(f"tiny-{name}")
        SRResNet(scale=4, num_blocks=1, channels=8).eval().save_pretrained(dirs[name])
    return dirs


@pytest.fixture(scope="module")
def tab_env(tiny_sr_dirs) -> dict[str, str]:
    return {"GANZOO_MODEL_SRGAN_X4": str(tiny_sr_dirs["srgan"]), "GANZOO_MODEL_SRRESNET_X4": str(tiny_sr_dirs["srresnet"])}


# --- in process ---------------------------------------------------------------------------------

def test_app_has_upscale_endpoints_and_examples():
    app = load_app_module().build_app()
    assert {"upscale", "measure"} <= {fn.api_name for fn in app.fns.values()}
    from tabs import upscale

    for name, _ in upscale.EXAMPLES:
        path = upscale.EXAMPLES_DIR / name
        assert path.stat().st_size < 60_000, f"{name} is too large for the repo"
        assert Image.open(path).size[0] * Image.open(path).size[1] <= upscale.MAX_PIXELS


def test_bad_inputs_are_clear_errors(tab):
    import gradio as gr

    for call, message in [
        (lambda: tab.upscale_image(None, tab.SRGAN), "No image"),
        (lambda: tab.measure(None), "No image"),
        (lambda: tab.upscale_image(rgb_image(600, 500), tab.SRGAN),
         r"600x500 = 300,000 pixels.*at most 262,144 pixels \(512x512\)"),
        (lambda: tab.measure(rgb_image(1100, 1000)), r"at most 1,048,576 pixels \(1024x1024\)"),
        (lambda: tab.measure(rgb_image(30, 64)), "at least 32x32"),
        (lambda: tab.upscale_image(rgb_image(8, 8), "Lanczos"), "Method must be one of"),
    ]:
        with pytest.raises(gr.Error, match=message):
            call()


def test_alpha_and_slider_pair(tab, tab_env):
    image = rgb_image(12, 10, mode="RGBA")
    before, after = tab.upscale_image(image, tab.SRRESNET)
    assert after.mode == "RGBA" and after.size == (48, 40)
    assert before.size == after.size and before.mode == "RGBA"
    expected = pipelines.upscale(image, ganzoo.load(tab_env["GANZOO_MODEL_SRRESNET_X4"]), device=APP_DEVICE)
    assert max_diff(after, expected) <= 1
    # the input, MATLAB-bicubic to the output size
    assert max_diff(before, pipelines.upscale(image, None, device=APP_DEVICE)) == 0


# --- through the HTTP API -----------------------------------------------------------------------

def test_upscale_api(client, tab_env, tmp_path):
    from gradio_client import handle_file

    path = tmp_path / "small.png"
    image = rgb_image(20, 16, seed=3)
    image.save(path)
    before_path, after_path = client.predict(handle_file(str(path)), "SRGAN x4", api_name="/upscale")
    with Image.open(before_path) as before, Image.open(after_path) as after:
        assert after.size == (80, 64) and before.size == (80, 64)
        expected = pipelines.upscale(image, ganzoo.load(tab_env["GANZOO_MODEL_SRGAN_X4"]), device=APP_DEVICE)
        assert max_diff(after.convert("RGB"), expected) <= 1  # the SRGAN setting reached the SRGAN model


def test_measure_api(client, tmp_path):
    from gradio_client import handle_file

    gallery, table = client.predict(handle_file(str(EXAMPLE)), api_name="/measure")
    assert table["headers"] == ["Method", "PSNR Y (dB)", "SSIM Y"]
    rows = {row[0]: row[1:] for row in table["data"]}
    assert set(rows) == {"SRGAN x4", "SRResNet x4", "Bicubic x4"}
    for method, (psnr, ssim) in rows.items():
        assert math.isfinite(float(psnr)) and 0 < float(ssim) <= 1, (method, psnr, ssim)
    assert float(rows["Bicubic x4"][0]) > 20  # a 96x96 photo, shrunk and re-enlarged: a sane PSNR
    assert len(gallery) == 4
    for item in gallery:
        with Image.open(item["image"]) as shown:
            assert shown.size == (96, 96)
    assert "dB" in gallery[3]["caption"] and gallery[3]["caption"].startswith("Bicubic x4")


def test_over_limit_image_is_an_error_over_the_api(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    path = tmp_path / "big.png"
    Image.new("RGB", (600, 500), "grey").save(path)
    with pytest.raises(AppError, match="262,144"):
        client.predict(handle_file(str(path)), "Bicubic x4", api_name="/upscale")


# --- in a real browser --------------------------------------------------------------------------

@pytest.mark.browser
def test_upscale_in_browser(server, tmp_path):
    with tab_page(server, "Upscale x4", "#upscale-input", rgb_image(24, 20, seed=5), tmp_path) as page:
        page.locator("#upscale-method").get_by_label("Bicubic x4").check()
        sizes = run_and_measure(page, server, "#upscale-run", "#upscale-slider")
        page.screenshot(path=str(tmp_path / "upscale.png"), full_page=True)
    assert sizes == [(96, 80), (96, 80)]
