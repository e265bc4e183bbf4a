"""The app's Deblur tab (space/tabs/deblur.py): in process, through gradio_client, and in headless Chromium.

One server per module with tiny untrained models standing in for the bundled `deblur-unet` (a 2-level
DeblurUNet of 4 channels) and `deblurgan` (here a 1-block DeblurGAN generator), so every call takes milliseconds.
"""

from __future__ import annotations

import io
import math
from urllib.parse import urljoin

import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo import pipelines
from ganzoo.models import DeblurGANGenerator, DeblurUNet

from app_server import (
    browser_page,
    load_app_module,
    load_tab,
    make_client,
    max_diff,
    serve,
)
from app_server import random_image as rgb_image


@pytest.fixture(scope="module")
def deblur_env(tmp_path_factory) -> dict[str, str]:
    torch.manual_seed(0)
    gan_folder, unet_folder = tmp_path_factory.mktemp("tiny-deblurgan"), tmp_path_factory.mktemp("tiny-unet")
    gan = DeblurGANGenerator(channels=4, num_blocks=1).eval()
    torch.nn.init.normal_(gan.tail[1].weight, std=0.05)  # not the identity, so the output differs from the input
    gan.save_pretrained(gan_folder)
    unet = DeblurUNet(channels=4, encoder_blocks=[1, 1], middle_blocks=1, decoder_blocks=[1, 1]).eval()
    torch.nn.init.normal_(unet.ending.weight, std=0.05)
    unet.save_pretrained(unet_folder)
    return {"GANZOO_MODEL_DEBLURGAN": str(gan_folder), "GANZOO_MODEL_DEBLUR_UNET": str(unet_folder)}


@pytest.fixture
def deblur_tab(deblur_env, monkeypatch):
    return load_tab("deblur", deblur_env, monkeypatch)


@pytest.fixture(scope="module")
def server(deblur_env, tmp_path_factory):
    yield from serve(deblur_env, tmp_path_factory, "app-deblur")


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    return make_client(server, tmp_path_factory.mktemp("client-downloads"))


def test_app_has_deblur_endpoints_and_examples():
    app = load_app_module().build_app()
    assert {"deblur", "blur_and_deblur"} <= {fn.api_name for fn in app.fns.values()}
    from tabs import deblur

    names = deblur.EXAMPLES + [name for name, _, _ in deblur.SHARP_EXAMPLES]
    for name in names:
        path = deblur.EXAMPLES_DIR / name
        assert path.stat().st_size < 60_000, f"{name} is too large for the repo"
        with Image.open(path) as image:
            assert image.size[0] * image.size[1] <= deblur.MAX_PIXELS


def test_bad_inputs_are_clear_errors(deblur_tab):
    import gradio as gr

    for call, message in [
        (lambda: deblur_tab.deblur_image(None), "No image"),
        (lambda: deblur_tab.blur_and_deblur(None, 20, 0), "No image"),
        (lambda: deblur_tab.deblur_image(rgb_image(1100, 1000)), r"at most 1,048,576 pixels \(1024x1024\)"),
        (lambda: deblur_tab.blur_and_deblur(rgb_image(20, 64), 20, 0), "at least 32x32"),
        (lambda: deblur_tab.blur_and_deblur(rgb_image(64, 64), 500, 0), "Blur length must be"),
        (lambda: deblur_tab.deblur_image(rgb_image(8, 8), "Wiener"), "Model must be one of"),
        (lambda: deblur_tab.blur_and_deblur(rgb_image(64, 64), 20, -1), "Seed must be"),
    ]:
        with pytest.raises(gr.Error, match=message):
            call()


@pytest.mark.parametrize("choice, variable", [("Deblur U-Net", "GANZOO_MODEL_DEBLUR_UNET"),
                                              ("DeblurGAN", "GANZOO_MODEL_DEBLURGAN")])
def test_deblur_keeps_alpha_and_matches_the_pipeline(deblur_tab, deblur_env, choice, variable):
    image = rgb_image(37, 29, mode="RGBA")
    before, after = deblur_tab.deblur_image(image, choice)
    assert before is image and after.size == image.size and after.mode == "RGBA"
    expected = pipelines.deblur(image, ganzoo.load(deblur_env[variable]))
    assert max_diff(after, expected) <= 1


def test_the_default_is_the_registry_default_and_the_text_gives_both_gains(deblur_tab):
    from ganzoo import registry

    assert deblur_tab.MODELS[deblur_tab.DEFAULT_CHOICE] == registry.DEFAULT_DEBLUR_MODEL
    assert set(deblur_tab.GAINS) == set(deblur_tab.CHOICES) and all("dB" in g for g in deblur_tab.GAINS.values())


def test_blur_and_deblur_scores(deblur_tab):
    sharp = Image.open(deblur_tab.EXAMPLES_DIR / deblur_tab.SHARP_EXAMPLES[0][0])
    gallery, rows = deblur_tab.blur_and_deblur(sharp, 25, 3)
    assert [caption.split(":")[0] for _, caption in gallery[1:]] == [
        "Blurred", "Deblurred (Deblur U-Net)", "Deblurred (DeblurGAN)", "Original"]
    assert gallery[0][1].startswith("Kernel (length 25, seed 3")
    assert gallery[0][0].width == gallery[0][0].height >= 200 and gallery[1][0].size == sharp.size
    blurred_psnr, blurred_ssim = rows[0][1:]
    assert 15 < blurred_psnr < 40 and 0 < blurred_ssim < 1  # a visible but not total blur
    again, _ = deblur_tab.blur_and_deblur(sharp, 25, 3)
    assert max_diff(again[1][0], gallery[1][0]) == 0  # the seed fixes the kernel
    other, _ = deblur_tab.blur_and_deblur(sharp, 25, 4)
    assert max_diff(other[1][0], gallery[1][0]) > 0


# --- through the HTTP API -----------------------------------------------------------------------

def test_deblur_api(client, deblur_env, tmp_path):
    from gradio_client import handle_file

    path = tmp_path / "blurred.png"
    image = rgb_image(30, 22, seed=3)
    image.save(path)
    for choice, variable in (("DeblurGAN", "GANZOO_MODEL_DEBLURGAN"), ("Deblur U-Net", "GANZOO_MODEL_DEBLUR_UNET")):
        before_path, after_path = client.predict(handle_file(str(path)), choice, api_name="/deblur")
        with Image.open(before_path) as before, Image.open(after_path) as after:
            assert before.size == after.size == (30, 22)
            expected = pipelines.deblur(image, ganzoo.load(deblur_env[variable]))
            assert max_diff(after.convert("RGB"), expected) <= 1


def test_blur_and_deblur_api(client, tmp_path):
    from gradio_client import handle_file
    from tabs import deblur

    path = deblur.EXAMPLES_DIR / deblur.SHARP_EXAMPLES[1][0]
    gallery, table = client.predict(handle_file(str(path)), 30, 1, api_name="/blur_and_deblur")
    assert table["headers"] == ["Image", "PSNR (dB)", "SSIM"]
    assert [row[0] for row in table["data"]] == ["Blurred", "Deblurred (Deblur U-Net)", "Deblurred (DeblurGAN)"]
    assert all(math.isfinite(float(row[1])) for row in table["data"])
    assert len(gallery) == 5


# --- in a real browser --------------------------------------------------------------------------

@pytest.mark.browser
def test_deblur_in_browser(server, tmp_path):
    path = tmp_path / "upload.png"
    rgb_image(40, 30, seed=5).save(path)
    with browser_page(server) as page:
        page.get_by_role("tab", name="Deblur").click()
        page.locator("#deblur-input input[type=file]").set_input_files(str(path))
        page.locator("#deblur-input img").first.wait_for(state="visible")  # upload finished
        page.locator("#deblur-model").get_by_label("DeblurGAN").check()
        page.locator("#deblur-run").click()
        images = page.locator("#deblur-slider img")
        images.nth(1).wait_for(state="visible")
        sizes = []
        for i in range(2):
            response = page.request.get(urljoin(server, images.nth(i).get_attribute("src")))
            assert response.ok, response.status
            sizes.append(Image.open(io.BytesIO(response.body())).size)
        page.get_by_role("button", name="Blur and deblur").wait_for(state="visible")
        page.screenshot(path=str(tmp_path / "deblur.png"), full_page=True)
    assert sizes == [(40, 30), (40, 30)]
