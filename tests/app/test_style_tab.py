"""The app's Style tab (space/tabs/style.py): in process, through gradio_client, and in headless Chromium.

One server per module, `python space/app.py`, with two tiny untrained fast-style networks and a tiny
AdaIN model (random-weight encoder) standing in for the bundled ones, via GANZOO_STYLE_MODELS and
GANZOO_MODEL_ADAIN.
"""

from __future__ import annotations


import pytest
import torch
from PIL import Image
from skimage import data

import ganzoo
from ganzoo import pipelines
from ganzoo.models import AdaINStyleTransfer, TransformerNet

from app_server import load_app_module, max_diff, run_and_measure, tab_page
from app_server import random_image as rgb_image


TAB = "style"  # the tab under test (the `tab`, `server` and `client` fixtures: tests/conftest.py)
# The app runs its models where `pipelines.pick_device()` says (CUDA on a GPU host): the expected images
# are computed there too, so that a GPU host compares like with like.
APP_DEVICE = pipelines.pick_device()


@pytest.fixture(scope="module")
def tab_env(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("style-models")
    folders = []
    for seed, name in enumerate(("style-mosaic", "style-candy")):
        torch.manual_seed(seed)
        TransformerNet(channels=4, num_blocks=1).eval().save_pretrained(root / name)
        Image.new("RGB", (40, 30), ("red", "blue")[seed]).save(root / name / "style.jpg")
        folders.append(str(root / name))
    torch.manual_seed(0)
    adain = AdaINStyleTransfer(channels=4, encoder_weights="random").eval()
    with torch.no_grad():  # an untrained decoder's output lies below 0; lift it into view
        adain.decoder[-1][1].bias.fill_(0.5)
    adain.save_pretrained(root / "adain")
    return {"GANZOO_MODEL_STYLE_MOSAIC": folders[0], "GANZOO_MODEL_STYLE_CANDY": folders[1],
            "GANZOO_MODEL_ADAIN": str(root / "adain")}


# --- in process ---------------------------------------------------------------------------------

def test_app_has_the_stylize_endpoint_and_small_examples(tab_env, monkeypatch):
    for key, value in tab_env.items():
        monkeypatch.setenv(key, value)
    app = load_app_module().build_app()
    assert "stylize" in {fn.api_name for fn in app.fns.values()}
    from tabs import style

    # the two overridden styles, the other bundled ones, AdaIN
    assert style.style_choices() == ["mosaic", "candy", "starry-night", "udnie", style.OWN_STYLE]
    for name in style.CONTENT_EXAMPLES:
        path = style.EXAMPLES_DIR / name
        assert path.stat().st_size < 60_000 and Image.open(path).size[0] * Image.open(path).size[1] <= style.MAX_PIXELS


def test_fast_style_matches_the_pipeline(tab, tab_env):
    image = rgb_image(30, 21)
    before, after = tab.stylize_image(image, "candy", None, 0.7, False)
    assert before is image and after.size == image.size
    expected = pipelines.stylize(image, ganzoo.load(tab_env["GANZOO_MODEL_STYLE_CANDY"]), alpha=0.7,
                                device=APP_DEVICE)
    assert max_diff(after, expected) <= 1


def test_own_style_uses_adain(tab, tab_env):
    image, painting = rgb_image(33, 20), Image.fromarray(data.coffee())
    _, after = tab.stylize_image(image, tab.OWN_STYLE, painting, 1.0, True)
    expected = pipelines.stylize(image, ganzoo.load(tab_env["GANZOO_MODEL_ADAIN"]), style=painting,
                                 preserve_color=True, device=APP_DEVICE)
    assert max_diff(after, expected) <= 1
    _, unchanged = tab.stylize_image(image, tab.OWN_STYLE, painting, 0.0, False)
    assert max_diff(unchanged, image) == 0  # alpha 0: the photo itself


def test_bad_inputs_are_clear_errors(tab):
    import gradio as gr

    for call, message in [
        (lambda: tab.stylize_image(None, "mosaic", None), "No image"),
        (lambda: tab.stylize_image(rgb_image(600, 500), "mosaic", None), "at most 262,144 pixels"),
        (lambda: tab.stylize_image(rgb_image(20, 20), "gamma", None), "Unknown style 'gamma'"),
        (lambda: tab.stylize_image(rgb_image(20, 20), tab.OWN_STYLE, None), "No style image"),
        (lambda: tab.stylize_image(rgb_image(20, 20), "mosaic", None, 1.5), "from 0 to 1"),
        (lambda: tab.stylize_image(rgb_image(4, 4), "mosaic", None), "at least 8x8"),
    ]:
        with pytest.raises(gr.Error, match=message):
            call()


def test_without_bundled_models_the_tab_says_so(monkeypatch, tmp_path):
    import gradio as gr

    from ganzoo import catalog

    for name in ("style-mosaic", "style-candy", "style-starry-night", "style-udnie", "adain"):
        monkeypatch.delenv("GANZOO_MODEL_" + name.upper().replace("-", "_"), raising=False)
    monkeypatch.setattr(catalog, "PRETRAINED_DIR", tmp_path)  # nothing bundled
    load_app_module()
    from tabs import style

    assert style.style_choices() == []
    with gr.Blocks() as blocks:
        style.build()
    assert any("No style-transfer models are bundled" in str(getattr(b, "value", ""))
               for b in blocks.blocks.values())
    with pytest.raises(gr.Error, match="No style-transfer models are bundled"):
        style.stylize_image(rgb_image(20, 20), "mosaic", None)


# --- through the HTTP API -----------------------------------------------------------------------

def test_stylize_api(client, tab_env, tmp_path):
    from gradio_client import handle_file

    path, style_path = tmp_path / "photo.png", tmp_path / "painting.png"
    image = rgb_image(26, 18, seed=3)
    image.save(path)
    Image.fromarray(data.coffee()[:100, :100]).save(style_path)
    _, after = client.predict(handle_file(str(path)), "mosaic", None, 1.0, False, api_name="/stylize")
    with Image.open(after) as shown:
        expected = pipelines.stylize(image, ganzoo.load(tab_env["GANZOO_MODEL_STYLE_MOSAIC"]), device=APP_DEVICE)
        assert max_diff(shown, expected) <= 1
    _, after = client.predict(handle_file(str(path)), "Your own style (upload)", handle_file(str(style_path)), 0.5,
                              False, api_name="/stylize")
    with Image.open(after) as shown:
        assert shown.size == (26, 18)


def test_unknown_style_is_an_error_over_the_api(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    path = tmp_path / "photo.png"
    rgb_image(20, 20).save(path)
    with pytest.raises(AppError, match="not in the list of choices"):  # Gradio checks the Radio
        client.predict(handle_file(str(path)), "nope", None, 1.0, False, api_name="/stylize")


# --- in a real browser --------------------------------------------------------------------------

@pytest.mark.browser
def test_style_tab_in_browser(server, tmp_path):
    from playwright.sync_api import expect

    with tab_page(server, "Style transfer", "#style-content", rgb_image(40, 28, seed=5), tmp_path) as page:
        page.locator("#style-gallery button.thumbnail-item").nth(1).click()  # the second style, "candy"
        expect(page.locator("#style-choice").get_by_label("candy")).to_be_checked()
        sizes = run_and_measure(page, server, "#style-run", "#style-slider")
        images = page.locator("#style-slider img")
        first = images.nth(1).get_attribute("src")
        # uploading a style image switches to AdaIN ("your own style")
        style_path = tmp_path / "painting.png"
        Image.fromarray(data.coffee()[:64, :64]).save(style_path)
        page.locator("#style-upload input[type=file]").set_input_files(str(style_path))
        expect(page.locator("#style-choice").get_by_label("Your own style (upload)")).to_be_checked()
        page.locator("#style-run").click()
        expect(images.nth(1)).not_to_have_attribute("src", first)
        page.screenshot(path=str(tmp_path / "style.png"), full_page=True)
    assert sizes == [(40, 28), (40, 28)]
