"""What every tab shares: model choice and loading, the image input that reports decoding errors, size checks.

Every tab names its models by their registry names (`ganzoo models`). The environment variable
`GANZOO_MODEL_<NAME>` (upper case, `-` as `_`, e.g. `GANZOO_MODEL_SRGAN_X4`) replaces a model with a folder,
Hub repo id or other name; tests point these at tiny models.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

import ganzoo
from ganzoo import pipelines, registry

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
#: gr.Examples options: an example's output is computed on its first click, then served from the cache
#: to every later click (a free Space's 2 CPUs never recompute it; nothing is computed at start-up)
CACHED_EXAMPLES = dict(cache_examples=True, cache_mode="lazy")


MODEL_ENV_PREFIX = "GANZOO_MODEL_"


def model_variable(name: str) -> str:
    """The environment variable that replaces the registry model `name`: GANZOO_MODEL_<NAME>."""
    return MODEL_ENV_PREFIX + name.upper().replace("-", "_")


def model_source(name: str) -> str:
    """What to load for the registry model `name`: its environment variable's value if set, else `name`."""
    return os.environ.get(model_variable(name)) or name


def available_model(name: str) -> str | None:
    """`model_source(name)` when this install can run it without the Hub (set by its variable, or bundled)."""
    source = model_source(name)
    return source if source != name or registry.MODELS[name].is_bundled else None


def load_model(name: str, what: str = "model") -> Any:
    """The registry model `name` (or what its variable names), loaded once; a failure is one clear gr.Error."""
    return _load_source(model_source(name), what)


@functools.lru_cache(maxsize=8)
def _load_source(source: str, what: str) -> Any:
    """Load once per source (a failed load is not cached, so it is retried on the next request)."""
    try:
        return ganzoo.load(source, device=str(pipelines.pick_device()))
    except Exception as err:  # any load failure becomes one clear message in the UI
        raise gr.Error(f"Could not load the {what} {source!r}: {err}") from err


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


def image_input(label: str, elem_id: str, height: int, **options: Any) -> ImageInput:
    """An image upload (file or clipboard) that the tab receives as a PIL image in its own mode."""
    options = {"type": "pil", "image_mode": None, "sources": ["upload", "clipboard"], **options}
    return ImageInput(label=label, elem_id=elem_id, height=height, **options)


def before_after(label: str, elem_id: str) -> gr.ImageSlider:
    """The result: a before/after slider of two PIL images, downloadable as PNG."""
    return gr.ImageSlider(label=label, type="pil", format="png", interactive=False, buttons=["download", "fullscreen"],
                          elem_id=elem_id, max_height=640, scale=2)
