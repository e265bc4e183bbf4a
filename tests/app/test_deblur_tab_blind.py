"""The Deblur tab's blind path (space/tabs/deblur.py `deblur_blind`, `blur_and_estimate`): the estimated kernel is
shown beside the result, and beside the true kernel when the tab blurred the photo itself."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from ganzoo import degrade, imaging, pipelines
from ganzoo.models import DeblurUNet

from app_server import max_diff

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
