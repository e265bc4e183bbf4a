"""Upscale tab: x4 super-resolution with SRGAN, SRResNet or bicubic, and a PSNR/SSIM "measure" mode.

Both buttons are also API endpoints: `/upscale` (image, method) -> (bicubic-enlarged input,
upscaled image), and `/measure` (image) -> (gallery, table). The work is `ganzoo.pipelines.upscale`
(shared with the CLI) and the scores are `ganzoo.metrics`, with the benchmark protocol of
`ganzoo.evaluate.evaluate_sr`: mod-crop, MATLAB bicubic down, quantise, upscale, Y channel, border crop.
"""

from __future__ import annotations

import math
from typing import Any

import gradio as gr
from PIL import Image

from ganzoo import imaging, metrics, pipelines

from .common import CACHED_EXAMPLES, EXAMPLES_DIR, before_after, check_image, image_input, load_model, score_cell

TITLE = "Upscale x4"
SRGAN, SRRESNET, BICUBIC = "SRGAN x4", "SRResNet x4", "Bicubic x4"
METHODS = [SRGAN, SRRESNET, BICUBIC]
#: method -> registry model name (GANZOO_MODEL_<NAME> replaces it: tabs.common)
MODELS = {SRGAN: "srgan-x4", SRRESNET: "srresnet-x4"}
SCALE = 4
MAX_PIXELS = 512 * 512  # upscaling input: a 2048x2048 result, ~4 s per model on 2 CPU cores (README, Performance)
MAX_MEASURE_PIXELS = 1024 * 1024  # measuring input (the original): its 256x256 downscale is what gets upscaled
MIN_MEASURE_SIDE = 8 * SCALE  # SSIM needs an 11x11 window inside the 4-px border crop
TILE = 192  # larger inputs go through the models in overlapping tiles, bounding memory
EXAMPLES = [("chelsea_96.png", SRGAN), ("astronaut_128.png", SRRESNET), ("coffee_112.png", SRGAN)]
TABLE_HEADERS = ["Method", "PSNR Y (dB)", "SSIM Y"]


def model_for(method: Any) -> Any:
    """The model behind a method choice; None for bicubic."""
    if method not in METHODS:
        raise gr.Error(f"Method must be one of {', '.join(METHODS)}; got {method!r}.")
    return None if method == BICUBIC else load_model(MODELS[method], "super-resolution model")


def _upscale(image: Image.Image, model: Any, limit: int, scale: int = SCALE) -> Image.Image:
    try:
        return pipelines.upscale(image, model, scale=scale, tile=TILE, max_pixels=limit)
    except ValueError as err:  # imaging.ImageError included: unreadable or corrupt input
        raise gr.Error(f"Could not upscale the image: {err}") from err


def upscale_image(image: Image.Image | None, method: str) -> tuple[Image.Image, Image.Image]:
    """(the input enlarged with bicubic to the output size, the input upscaled with `method`).

    Alpha is kept; greyscale input gives greyscale output (16-bit stays 16-bit).
    """
    image = check_image(image, MAX_PIXELS, "upscaling")
    upscaled = _upscale(image, model_for(method), MAX_PIXELS)
    if method == BICUBIC:
        return upscaled, upscaled
    scale = upscaled.width // image.width  # the model's own factor (4 for the bundled models)
    return _upscale(image, None, MAX_PIXELS, scale=scale), upscaled


def measure(image: Image.Image | None,
            progress: gr.Progress = gr.Progress()) -> tuple[list, list[list]]:  # noqa: B008 - the Gradio idiom
    """Shrink the image x4 (mod-crop, MATLAB bicubic, 8-bit), upscale it back with every method and
    score each against the original: PSNR and SSIM on the Y channel with a 4-pixel border crop.

    Returns the gallery (original, then one image per method, captioned with its PSNR) and the
    table rows [method, PSNR Y, SSIM Y].
    """
    image = check_image(image, MAX_MEASURE_PIXELS, "measuring")
    try:
        rgb, _, _ = imaging.image_to_tensor(imaging.load_image(image, MAX_MEASURE_PIXELS))
    except ValueError as err:
        raise gr.Error(f"Could not read the image: {err}") from err
    hr = imaging.mod_crop(rgb, SCALE)  # alpha is not scored: the metrics compare colours
    height, width = hr.shape[-2:]
    if min(height, width) < MIN_MEASURE_SIDE:
        raise gr.Error(f"The image is {image.width}x{image.height}; measuring needs at least "
                       f"{MIN_MEASURE_SIDE}x{MIN_MEASURE_SIDE} pixels.")
    low_res = imaging.tensor_to_image(imaging.degrade_bicubic(hr, SCALE))  # as in training and evaluate_sr
    gallery: list[tuple[Image.Image, str]] = [
        (imaging.tensor_to_image(hr), f"Original {width}x{height}")]
    rows = []
    for i, method in enumerate(METHODS):
        progress(i / len(METHODS), desc=method)
        upscaled = _upscale(low_res, model_for(method), MAX_MEASURE_PIXELS)
        sr, _, _ = imaging.image_to_tensor(upscaled)
        if sr.shape != hr.shape:
            raise gr.Error(f"{method} gave {upscaled.width}x{upscaled.height} from {low_res.width}x"
                           f"{low_res.height}; the comparison needs x{SCALE} ({width}x{height}).")
        psnr = metrics.psnr(sr, hr, crop_border=SCALE, y_channel=True).item()
        ssim = metrics.ssim(sr, hr, crop_border=SCALE, y_channel=True).item()
        rows.append([method, score_cell(psnr, 2), score_cell(ssim, 4)])
        gallery.append((upscaled, f"{method}: {psnr:.2f} dB"))
    return gallery, rows


def build() -> None:
    """The tab's components and events; call inside `gr.Tab(TITLE)`."""
    gr.Markdown(
        "Enlarge a small photo four times. **SRGAN** (trained with a perceptual and adversarial loss) "
        "draws sharper, invented texture; **SRResNet** (trained on pixel error) is smoother and scores "
        "higher PSNR; **Bicubic** is plain interpolation. Drag the slider to compare with the input "
        f"enlarged by bicubic. Inputs up to {MAX_PIXELS:,} pixels ({math.isqrt(MAX_PIXELS)}x"
        f"{math.isqrt(MAX_PIXELS)}); transparency is kept. The download button on the result saves the "
        "upscaled PNG.")
    with gr.Row():
        with gr.Column(scale=1):
            image = image_input("Low-resolution image", "upscale-input", 320)
            method = gr.Radio(METHODS, value=SRGAN, label="Method", elem_id="upscale-method")
            with gr.Row():
                run = gr.Button("Upscale x4", variant="primary", elem_id="upscale-run")
                run_measure = gr.Button("Measure all methods", elem_id="measure-run")
        slider = before_after("Before (bicubic) / after", "upscale-slider")
    run.click(upscale_image, [image, method], slider, api_name="upscale")
    gr.Examples([[str(EXAMPLES_DIR / name), choice] for name, choice in EXAMPLES], [image, method], slider,
                fn=upscale_image, **CACHED_EXAMPLES)

    gr.Markdown(
        "### Measure\n"
        "Treats the uploaded image as the ground truth: shrinks it x4 (MATLAB bicubic), upscales it back "
        "with every method and scores each against the original with PSNR and SSIM on the luma (Y) "
        f"channel, ignoring a {SCALE}-pixel border (the usual SR benchmark protocol). "
        f"Originals up to {MAX_MEASURE_PIXELS:,} pixels ({math.isqrt(MAX_MEASURE_PIXELS)}x"
        f"{math.isqrt(MAX_MEASURE_PIXELS)}). Higher is better for both; SRGAN often looks sharper while "
        "scoring lower.")
    with gr.Row():
        gallery = gr.Gallery(label="Original and upscaled", format="png", columns=4, height=360,
                             object_fit="contain", interactive=False, elem_id="measure-gallery", scale=2)
        table = gr.Dataframe(headers=TABLE_HEADERS, datatype=["str", "number", "number"], label="Scores",
                             interactive=False, elem_id="measure-table", scale=1)
    run_measure.click(measure, image, [gallery, table], api_name="measure")
