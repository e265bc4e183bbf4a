"""The app's Deblur tab (space/tabs/deblur.py): in process, through gradio_client, and in headless Chromium.

One server per module with tiny untrained models standing in for the bundled `deblur-unet` (a 2-level
DeblurUNet of 4 channels) and `deblurgan` (here a 1-block DeblurGAN generator), so every call takes milliseconds.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo import pipelines
from ganzoo.models import DeblurGANGenerator, DeblurUNet

from app_server import load_app_module, max_diff, run_and_measure, tab_page
from app_server import random_image as rgb_image


TAB = "deblur"  # the tab under test (the `tab`, `server` and `client` fixtures: tests/conftest.py)


@pytest.fixture(scope="module")
def tab_env(tmp_path_factory) -> dict[str, str]:
    torch.manual_seed(0)
    gan_folder, unet_folder = tmp_path_factory.mktemp("tiny-deblurgan"), tmp_path_factory.mktemp("tiny-unet")
    gan = DeblurGANGenerator(channels=4, num_blocks=1).eval()
    torch.nn.init.normal_(gan.tail[1].weight, std=0.05)  # not the identity, so the output differs from the input
    gan.save_pretrained(gan_folder)
    unet = DeblurUNet(channels=4, encoder_blocks=[1, 1], middle_blocks=1, decoder_blocks=[1, 1]).eval()
    torch.nn.init.normal_(unet.ending.weight, std=0.05)
    unet.save_pretrained(unet_folder)
    return {"GANZOO_MODEL_DEBLURGAN": str(gan_folder), "GANZOO_MODEL_DEBLUR_UNET": str(unet_folder)}


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


def test_bad_inputs_are_clear_errors(tab):
    import gradio as gr

    for call, message in [
        (lambda: tab.deblur_image(None), "No image"),
        (lambda: tab.blur_and_deblur(None, 20, 0), "No image"),
        (lambda: tab.deblur_image(rgb_image(1100, 1000)), r"at most 1,048,576 pixels \(1024x1024\)"),
        (lambda: tab.blur_and_deblur(rgb_image(20, 64), 20, 0), "at least 32x32"),
        (lambda: tab.blur_and_deblur(rgb_image(64, 64), 500, 0), "Blur length must be"),
        (lambda: tab.deblur_image(rgb_image(8, 8), "Wiener"), "Model must be one of"),
        (lambda: tab.blur_and_deblur(rgb_image(64, 64), 20, -1), "Seed must be"),
    ]:
        with pytest.raises(gr.Error, match=message):
            call()


@pytest.mark.parametrize("choice, variable", [("Deblur U-Net", "GANZOO_MODEL_DEBLUR_UNET"),
                                              ("DeblurGAN", "GANZOO_MODEL_DEBLURGAN")])
def test_deblur_keeps_alpha_and_matches_the_pipeline(tab, tab_env, choice, variable):
    image = rgb_image(37, 29, mode="RGBA")
    before, after = tab.deblur_image(image, choice)
    assert before is image and after.size == image.size and after.mode == "RGBA"
    expected = pipelines.deblur(image, ganzoo.load(tab_env[variable]))
    assert max_diff(after, expected) <= 1


def test_the_default_is_the_registry_default_and_the_text_gives_both_gains(tab):
    from ganzoo import registry

    assert tab.MODELS[tab.DEFAULT_CHOICE] == registry.DEFAULT_DEBLUR_MODEL
    assert set(tab.GAINS) == set(tab.CHOICES) and all("dB" in g for g in tab.GAINS.values())


def test_the_quoted_gains_are_the_bundled_cards(tab):
    """The tab's text quotes each model's gains on the moderate, large and Levin sets from its model card."""
    from ganzoo import registry

    for choice, name in tab.MODELS.items():
        card = (registry.PRETRAINED_DIR / name / "README.md").read_text()
        gains = [re.search(rf"^\| {row}.* \| ([+-]\d+\.\d\d) dB \|", card, re.M).group(1)
                 for row in ("moderate", "large", "Levin")]
        quoted = re.findall(r"([+-]\d+\.\d\d) dB", tab.GAINS[choice])
        assert quoted == gains, f"{choice}: the tab says {quoted}, the card {gains}"


def test_blur_and_deblur_scores(tab):
    sharp = Image.open(tab.EXAMPLES_DIR / tab.SHARP_EXAMPLES[0][0])
    gallery, rows = tab.blur_and_deblur(sharp, 25, 3)
    assert [caption.split(":")[0] for _, caption in gallery[1:]] == [
        "Blurred", "Deblurred (Deblur U-Net)", "Deblurred (DeblurGAN)", "Deconvolved with the true kernel", "Original"]
    assert gallery[0][1].startswith("Kernel (length 25, seed 3")
    assert gallery[0][0].width == gallery[0][0].height >= 200 and gallery[1][0].size == sharp.size
    blurred_psnr, blurred_ssim = rows[0][1:]
    assert 15 < blurred_psnr < 40 and 0 < blurred_ssim < 1  # a visible but not total blur
    again, _ = tab.blur_and_deblur(sharp, 25, 3)
    assert max_diff(again[1][0], gallery[1][0]) == 0  # the seed fixes the kernel
    other, _ = tab.blur_and_deblur(sharp, 25, 4)
    assert max_diff(other[1][0], gallery[1][0]) > 0


def test_the_true_kernel_row_is_the_pipeline_and_restores(tab):
    """The true-kernel row is `pipelines.deblur_with_kernel` on the blurred image, and well above the blurred input."""
    from ganzoo import degrade

    sharp = Image.open(tab.EXAMPLES_DIR / tab.SHARP_EXAMPLES[1][0]).convert("RGB")
    gallery, rows = tab.blur_and_deblur(sharp, 35, 7)
    scores = {row[0]: row[1] for row in rows}
    assert scores[tab.TRUE_KERNEL] > scores["Blurred"] + 3, scores
    expected = pipelines.deblur_with_kernel(gallery[1][0], degrade.shake_kernel(35.0, torch.Generator().manual_seed(7)))
    assert max_diff(gallery[4][0], expected) == 0


# --- through the HTTP API -----------------------------------------------------------------------

def test_deblur_api(client, tab_env, tmp_path):
    from gradio_client import handle_file

    path = tmp_path / "blurred.png"
    image = rgb_image(30, 22, seed=3)
    image.save(path)
    for choice, variable in (("DeblurGAN", "GANZOO_MODEL_DEBLURGAN"), ("Deblur U-Net", "GANZOO_MODEL_DEBLUR_UNET")):
        before_path, after_path = client.predict(handle_file(str(path)), choice, api_name="/deblur")
        with Image.open(before_path) as before, Image.open(after_path) as after:
            assert before.size == after.size == (30, 22)
            expected = pipelines.deblur(image, ganzoo.load(tab_env[variable]))
            assert max_diff(after.convert("RGB"), expected) <= 1


def test_blur_and_deblur_api(client, tmp_path):
    from gradio_client import handle_file
    from tabs import deblur

    path = deblur.EXAMPLES_DIR / deblur.SHARP_EXAMPLES[1][0]
    gallery, table = client.predict(handle_file(str(path)), 30, 1, api_name="/blur_and_deblur")
    assert table["headers"] == ["Image", "PSNR (dB)", "SSIM"]
    assert [row[0] for row in table["data"]] == ["Blurred", "Deblurred (Deblur U-Net)", "Deblurred (DeblurGAN)",
                                                 "Deconvolved with the true kernel"]
    assert all(math.isfinite(float(row[1])) for row in table["data"])
    assert len(gallery) == 6


# --- in a real browser --------------------------------------------------------------------------

@pytest.mark.browser
def test_deblur_in_browser(server, tmp_path):
    with tab_page(server, "Deblur", "#deblur-input", rgb_image(40, 30, seed=5), tmp_path) as page:
        page.locator("#deblur-model").get_by_label("DeblurGAN").check()
        sizes = run_and_measure(page, server, "#deblur-run", "#deblur-slider")
        page.get_by_role("button", name="Blur and deblur").wait_for(state="visible")
        page.screenshot(path=str(tmp_path / "deblur.png"), full_page=True)
    assert sizes == [(40, 30), (40, 30)]
