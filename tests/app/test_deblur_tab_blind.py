"""The Deblur tab's blind path (space/tabs/deblur.py `deblur_blind`, `blur_and_estimate`): the estimated kernel is
shown beside the result, and beside the true kernel when the tab blurred the photo itself. In process, through
gradio_client (`/deblur_blind`, `/blur_and_estimate`) and in headless Chromium (issue 27: "the tab shows the
estimated kernel"); one server for the module, with a tiny untrained U-Net standing in for both networks (the
blind path uses a network only where it does not trust its kernel).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo import degrade, imaging, metrics, pipelines
from ganzoo.models import DeblurUNet

from app_server import max_diff, tab_page

TAB = "deblur"  # the `tab` fixture (tests/conftest.py)


@pytest.fixture(scope="module")
def tab_env(tmp_path_factory) -> dict[str, str]:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-unet")
    DeblurUNet(channels=4, encoder_blocks=[1, 1], middle_blocks=1, decoder_blocks=[1, 1]).eval().save_pretrained(folder)
    return {"GANZOO_MODEL_DEBLUR_UNET": str(folder), "GANZOO_MODEL_DEBLURGAN": str(folder)}


def _shaken(tab) -> Image.Image:
    sharp = imaging.image_to_tensor(Image.open(tab.EXAMPLES_DIR / tab.SHARP_EXAMPLES[0][0]).convert("RGB"))[0]
    kernel = degrade.sized_shake_kernel(11, torch.Generator().manual_seed(2))
    return imaging.tensor_to_image(imaging.quantize(degrade.blur(sharp, kernel)))


def test_deblur_blind_shows_the_estimated_kernel(tab):
    image = _shaken(tab)
    (before, after), kernel, note = tab.deblur_blind(image)
    assert before is image and after.size == image.size
    assert kernel is not None and kernel.width == kernel.height >= 100 and "Estimated kernel" in note
    expected, _ = pipelines.deblur_blind(image)
    assert max_diff(after, expected) <= 1  # the tab is the pipeline


def test_deblur_blind_on_a_flat_photo_says_the_network_was_used(tab):
    (_, after), kernel, note = tab.deblur_blind(Image.new("RGB", (64, 48), (120, 120, 120)))
    assert kernel is None and "flat" in note and tab.DEFAULT_CHOICE in note and after.size == (64, 48)


def test_blur_and_estimate_shows_true_and_estimated_kernels(tab):
    sharp = Image.open(tab.EXAMPLES_DIR / tab.SHARP_EXAMPLES[0][0]).convert("RGB")
    gallery, rows = tab.blur_and_estimate(sharp, 15, 3)
    captions = [caption for _, caption in gallery]
    assert captions[0].startswith("True kernel") and captions[1].startswith("Estimated kernel")
    assert [row[0] for row in rows] == ["Blurred", tab.ESTIMATED]
    assert gallery[1][0].width == gallery[1][0].height >= 100 and gallery[3][0].size == sharp.size
    assert "similarity" in captions[1] and all(0 < row[2] < 1 for row in rows)


def test_app_has_the_blind_endpoints():
    from app_server import load_app_module

    app = load_app_module().build_app()
    assert {"deblur_blind", "blur_and_estimate"} <= {fn.api_name for fn in app.fns.values()}


# --- through the HTTP API and in a real browser: what a user of the Space gets -----------------------------
# The tab's own example case: the astronaut photo shaken by the kernel of length 35, seed 7 (SHARP_EXAMPLES[1]),
# whose kernel the estimator finds (similarity ~0.89, 21 px, ~4 s on a loaded core).

def _example_case(tab) -> tuple[torch.Tensor, Image.Image]:
    """(the true kernel, the example photo shaken by it, 8-bit, as `blur_and_estimate` makes it)."""
    name, length, seed = tab.SHARP_EXAMPLES[1]
    sharp = Image.open(tab.EXAMPLES_DIR / name).convert("RGB")
    kernel = tab.shake_kernel(length, seed)
    return kernel, imaging.tensor_to_image(imaging.quantize(degrade.blur(imaging.image_to_tensor(sharp)[0], kernel)))


def kernel_cells(picture: Image.Image, size: int) -> np.ndarray:
    """The size x size kernel that a kernel picture shows (0-255), after checking that it is a real kernel
    picture: grey, scaled to its peak (255), the kernel enlarged with square pixels (nearest neighbour) to a
    side of at least 100 px, and more than one non-zero cell."""
    pixels = np.asarray(picture.convert("RGB"), dtype=np.int16)
    assert (pixels == pixels[..., :1]).all(), "the kernel picture is not grey"
    grey = pixels[..., 0]
    zoom = grey.shape[0] // size
    assert grey.shape == (size * zoom, size * zoom) and zoom >= 2 and grey.shape[0] >= 100, (grey.shape, size)
    cells = grey[zoom // 2::zoom, zoom // 2::zoom]
    assert (np.kron(cells, np.ones((zoom, zoom), dtype=np.int16)) == grey).all(), "not enlarged with square pixels"
    assert cells.max() == 255 and (cells > 0).sum() > 1, "an empty or single-cell kernel"
    return cells


def _size(text: str) -> int:
    """The kernel size a caption or note gives, e.g. "Estimated kernel (21 px), ..." -> 21."""
    return int(re.search(r"(\d+) px", text).group(1))


def test_deblur_blind_api_returns_the_estimated_kernel(client, tab, tmp_path):
    from gradio_client import handle_file

    kernel, shaken = _example_case(tab)
    shaken.save(tmp_path / "shaken.png")
    (before_path, after_path), kernel_path, note = client.predict(handle_file(str(tmp_path / "shaken.png")),
                                                                  api_name="/deblur_blind")
    assert re.fullmatch(r"Estimated kernel: \d+ px, in \d+\.\d s\.", note), note
    with Image.open(before_path) as before, Image.open(after_path) as after, Image.open(kernel_path) as picture:
        assert before.size == after.size == shaken.size and max_diff(before.convert("RGB"), shaken) == 0
        assert max_diff(after.convert("RGB"), shaken) > 0  # deconvolved, not the input
        estimate = kernel_cells(picture, _size(note))
    assert metrics.kernel_similarity(estimate.astype(float), kernel) >= 0.8


def test_blur_and_estimate_api_returns_true_and_estimated_kernels(client, tab):
    from gradio_client import handle_file

    name, length, seed = tab.SHARP_EXAMPLES[1]
    gallery, table = client.predict(handle_file(str(tab.EXAMPLES_DIR / name)), length, seed,
                                    api_name="/blur_and_estimate")
    captions = [item["caption"] for item in gallery]
    assert captions[0].startswith("True kernel") and captions[1].startswith("Estimated kernel"), captions
    assert [row[0] for row in table["data"]] == ["Blurred", tab.ESTIMATED]
    with Image.open(gallery[0]["image"]) as true_picture, Image.open(gallery[1]["image"]) as found_picture:
        true_cells, found_cells = kernel_cells(true_picture, _size(captions[0])), kernel_cells(found_picture,
                                                                                               _size(captions[1]))
    kernel = tab.shake_kernel(length, seed)
    assert _size(captions[0]) == kernel.shape[0]
    assert np.abs(true_cells - np.round(kernel.numpy() / kernel.max().item() * 255)).max() <= 1  # the true kernel
    similarity = metrics.kernel_similarity(found_cells.astype(float), true_cells.astype(float))
    quoted = float(re.search(r"similarity (\d\.\d\d)", captions[1]).group(1))
    assert similarity >= 0.8 and abs(similarity - quoted) <= 0.02, (similarity, quoted)  # as the caption says


@pytest.mark.browser
def test_blind_deblur_in_browser_shows_the_kernel_and_progress(server, tab, tmp_path):
    """A user uploads a shaken photo, clicks "Estimate the kernel and deblur", watches the progress, and sees
    the estimated kernel (enlarged, labelled) beside the result, with a note."""
    from playwright.sync_api import expect

    _, shaken = _example_case(tab)
    with tab_page(server, "Deblur", "#deblur-input", shaken, tmp_path) as page:
        # record every progress text the status trackers show while the job runs (they vanish when it ends)
        page.evaluate("""() => { window.seenProgress = [];
            new MutationObserver(() => document.querySelectorAll('.progress-level, .progress-text').forEach(
                el => window.seenProgress.push(el.textContent.trim()))).observe(
                document.body, {subtree: true, childList: true, characterData: true}); }""")
        page.locator("#deblur-blind-run").click()
        picture = page.locator("#deblur-kernel img").first
        picture.wait_for(state="visible")
        expect(page.locator("#deblur-kernel-note")).to_contain_text("Estimated kernel:")
        expect(page.locator("#deblur-kernel")).to_contain_text("Estimated kernel")  # the component's label
        natural, shown = picture.evaluate("img => [[img.naturalWidth, img.naturalHeight], "
                                          "[img.clientWidth, img.clientHeight]]")
        note = page.locator("#deblur-kernel-note").inner_text()
        slider = page.locator("#deblur-slider img")
        slider.nth(1).wait_for(state="visible")
        seen = page.evaluate("window.seenProgress")
        page.screenshot(path=str(tmp_path / "deblur-blind.png"), full_page=True)
    size = _size(note)
    assert natural[0] == natural[1] == size * (natural[0] // size) >= 100, (natural, note)
    assert min(shown) >= 100, shown  # big enough to see on the page
    assert any(text.startswith("kernel estimation") for text in seen), seen[:20]
