"""Deblur tab: remove motion blur from a photo, or blur a sharp photo with a camera-shake kernel and
measure how much of it DeblurGAN undoes.

Both buttons are API endpoints: `/deblur` (image) -> (input, deblurred), and `/blur_and_deblur`
(sharp image, blur length, seed) -> (gallery: kernel, blurred, deblurred, original; score table).
The work is `ganzoo.pipelines.deblur` (shared with the CLI), the blur `ganzoo.degrade` and the
scores `ganzoo.metrics` (RGB PSNR/SSIM without border crop, as `ganzoo evaluate deblur`).
"""

from __future__ import annotations

import math
import os
from typing import Any

import gradio as gr
import torch
from PIL import Image

from ganzoo import degrade, imaging, metrics, pipelines

from .common import CACHED_EXAMPLES, EXAMPLES_DIR, ImageInput, check_image, load_model, score_cell

TITLE = "Deblur"
MODEL_VARIABLE, DEFAULT_MODEL = "GANZOO_DEBLUR_MODEL", "deblurgan"  # tests point the variable at a tiny model
MAX_PIXELS = 1024 * 1024  # ~5 s on a free 2-core CPU Space
TILE = 512
KERNEL_SIZE = 31
MIN_SIDE = 32  # the blur and SSIM's 11x11 window need room
EXAMPLES = ["chelsea_shake_192.png", "camera_shake_192.png"]
SHARP_EXAMPLES = [("coffee_160.png", 25, 3), ("astronaut_160.png", 35, 7)]
TABLE_HEADERS = ["Image", "PSNR (dB)", "SSIM"]


def model() -> Any:
    return load_model(os.environ.get(MODEL_VARIABLE) or DEFAULT_MODEL, "deblurring model")


def _deblur(image: Image.Image) -> Image.Image:
    try:
        return pipelines.deblur(image, model(), tile=TILE, max_pixels=MAX_PIXELS)
    except ValueError as err:  # imaging.ImageError included: unreadable or corrupt input
        raise gr.Error(f"Could not deblur the image: {err}") from err


def deblur_image(image: Image.Image | None) -> tuple[Image.Image, Image.Image]:
    """(the input, the deblurred image) for the before/after slider; alpha and 16-bit grey are kept."""
    image = check_image(image, MAX_PIXELS, "deblurring")
    return image, _deblur(image)


def shake_kernel(length: float, seed: int) -> torch.Tensor:
    """The camera-shake kernel [31, 31] of a blur `length` (pixels of camera path) and `seed`."""
    if not isinstance(length, (int, float)) or not 1 <= length <= 2 * KERNEL_SIZE:
        raise gr.Error(f"Blur length must be from 1 to {2 * KERNEL_SIZE} pixels, got {length!r}.")
    if not isinstance(seed, (int, float)) or seed != int(seed) or not 0 <= seed < 2**31:
        raise gr.Error(f"Seed must be a whole number from 0 to {2**31 - 1}, got {seed!r}.")
    rng = torch.Generator().manual_seed(int(seed))
    return degrade.random_trajectory_kernel(KERNEL_SIZE, rng, max_length=float(length), min_length_fraction=1.0)


def kernel_picture(kernel: torch.Tensor, zoom: int = 8) -> Image.Image:
    """The kernel scaled to its peak and enlarged with square pixels, to be seen."""
    view = (kernel / kernel.max()).expand(1, 3, -1, -1)
    return imaging.tensor_to_image(view).resize((kernel.shape[1] * zoom, kernel.shape[0] * zoom), Image.NEAREST)


def blur_and_deblur(image: Image.Image | None, length: float, seed: int,
                    progress: gr.Progress = gr.Progress()) -> tuple[list, list[list]]:  # noqa: B008 - Gradio idiom
    """Blur a sharp image with the camera-shake kernel of (`length`, `seed`), 8-bit quantised like a
    photo, deblur it, and score blurred and deblurred against the original.

    Returns the gallery (kernel, blurred, deblurred, original) and the table rows [image, PSNR, SSIM].
    """
    image = check_image(image, MAX_PIXELS, "blurring and deblurring")
    try:
        sharp, _, _ = imaging.image_to_tensor(imaging.load_image(image, MAX_PIXELS))
    except ValueError as err:
        raise gr.Error(f"Could not read the image: {err}") from err
    if min(sharp.shape[-2:]) < MIN_SIDE:
        raise gr.Error(f"The image is {image.width}x{image.height}; this needs at least {MIN_SIDE}x{MIN_SIDE}.")
    kernel = shake_kernel(length, seed)
    progress(0.1, desc="blurring")
    blurred = imaging.quantize(degrade.blur(sharp, kernel))
    progress(0.3, desc="deblurring")
    deblurred, _, _ = imaging.image_to_tensor(_deblur(imaging.tensor_to_image(blurred)))
    rows = []
    for name, candidate in (("Blurred", blurred), ("Deblurred (DeblurGAN)", deblurred)):
        rows.append([name, score_cell(metrics.psnr(candidate, sharp).item(), 2),
                     score_cell(metrics.ssim(candidate, sharp).item(), 4)])
    gallery = [(kernel_picture(kernel), f"Kernel (length {length:g}, seed {int(seed)})"),
               (imaging.tensor_to_image(blurred), f"Blurred: {rows[0][1]} dB"),
               (imaging.tensor_to_image(deblurred), f"Deblurred: {rows[1][1]} dB"),
               (imaging.tensor_to_image(sharp), "Original")]
    return gallery, rows


def build() -> None:
    """The tab's components and events; call inside `gr.Tab(TITLE)`."""
    gr.Markdown(
        "Remove camera-shake motion blur with **DeblurGAN** (a ResNet generator trained against a "
        "WGAN-GP critic with a perceptual loss, on synthetic blur). Drag the slider to compare with the "
        f"input. Inputs up to {MAX_PIXELS:,} pixels ({math.isqrt(MAX_PIXELS)}x{math.isqrt(MAX_PIXELS)}); "
        "transparency is kept.\n\n"
        "The bundled model was trained on a CPU, on the 8 motion kernels of Levin et al. and random camera "
        "shake: it removes blur like Levin's well (+4 dB) and unfamiliar or real camera blur only a little "
        "(numbers in its model card). "
        "Use the second panel to measure it on your own photos.")
    with gr.Row():
        with gr.Column(scale=1):
            image = ImageInput(label="Blurred photo", type="pil", image_mode=None, sources=["upload", "clipboard"],
                               elem_id="deblur-input", height=320)
            run = gr.Button("Deblur", variant="primary", elem_id="deblur-run")
        slider = gr.ImageSlider(label="Before / after", type="pil", format="png", interactive=False,
                                buttons=["download", "fullscreen"], elem_id="deblur-slider", max_height=640,
                                scale=2)
    run.click(deblur_image, image, slider, api_name="deblur")
    gr.Examples([[str(EXAMPLES_DIR / name)] for name in EXAMPLES], image, slider, fn=deblur_image,
                **CACHED_EXAMPLES)

    gr.Markdown(
        "### Blur a sharp photo, then deblur it\n"
        "Upload a *sharp* photo: it is blurred with a random camera-shake kernel (a seeded camera path "
        "of the given length, as in training), saved to 8 bits, deblurred, and both are scored against "
        "the original (PSNR and SSIM on RGB; higher is better).")
    with gr.Row():
        with gr.Column(scale=1):
            sharp = ImageInput(label="Sharp photo", type="pil", image_mode=None, sources=["upload", "clipboard"],
                               elem_id="blur-input", height=260)
            length = gr.Slider(5, 2 * KERNEL_SIZE, value=25, step=1, label="Blur length (pixels of camera path)",
                               elem_id="blur-length")
            seed = gr.Number(value=0, precision=0, minimum=0, label="Kernel seed", elem_id="blur-seed")
            run_blur = gr.Button("Blur and deblur", elem_id="blur-run")
        with gr.Column(scale=2):
            gallery = gr.Gallery(label="Kernel, blurred, deblurred, original", format="png", columns=4,
                                 height=320, object_fit="contain", interactive=False, elem_id="blur-gallery")
            table = gr.Dataframe(headers=TABLE_HEADERS, datatype=["str", "number", "number"], label="Scores",
                                 interactive=False, elem_id="blur-table")
    run_blur.click(blur_and_deblur, [sharp, length, seed], [gallery, table], api_name="blur_and_deblur")
    gr.Examples([[str(EXAMPLES_DIR / name), n, s] for name, n, s in SHARP_EXAMPLES], [sharp, length, seed],
                [gallery, table], fn=blur_and_deblur, **CACHED_EXAMPLES)
