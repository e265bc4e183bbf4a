"""What every image tab shares: the image input that reports decoding errors, size checks, model loading."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

import ganzoo
from ganzoo import pipelines

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
#: gr.Examples options: an example's output is computed on its first click, then served from the cache
#: to every later click (a free Space's 2 CPUs never recompute it; nothing is computed at start-up)
CACHED_EXAMPLES = dict(cache_examples=True, cache_mode="lazy")


@functools.lru_cache(maxsize=8)
def load_model(name: str, what: str = "model") -> Any:
    """Load once per model name (a failed load is not cached, so it is retried on the next request)."""
    try:
        return ganzoo.load(name, device=str(pipelines.pick_device()))
    except Exception as err:  # any load failure becomes one clear message in the UI
        raise gr.Error(f"Could not load the {what} {name!r}: {err}") from err


def check_image(image: Image.Image | None, limit: int, action: str) -> Image.Image:
    """The image, or a gr.Error saying that none was given or that it has too many pixels."""
    if image is None:
        raise gr.Error("No image: upload one (PNG, JPEG or WebP) or pick an example below.")
    width, height = image.size
    if width * height > limit:
        side = math.isqrt(limit)
        raise gr.Error(f"The image is {width}x{height} = {width * height:,} pixels; {action} takes at most "
                       f"{limit:,} pixels ({side}x{side}) on this CPU Space. Crop or shrink it first.")
    return image


def score_cell(value: float, digits: int) -> float | str:
    """A table cell: the value rounded, or "inf" (PSNR of identical images)."""
    return round(value, digits) if math.isfinite(value) else "inf"


class ImageInput(gr.Image):
    """gr.Image whose decoding failures reach the user as a clear message, not Gradio's generic one."""

    def get_block_name(self) -> str:
        return "image"  # render with gr.Image's own front end

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except Exception as err:  # Pillow's errors are many types; each becomes one readable line
            reason = str(err).split("/tmp/")[0].strip() or type(err).__name__
            raise gr.Error(f"Cannot read this image ({type(err).__name__}: {reason}). "
                           "Upload a PNG, JPEG, WebP, BMP or TIFF file.") from None
