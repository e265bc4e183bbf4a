"""Deblur tab: remove motion blur from a blurred photo, or blur a sharp photo and see how much of the blur
each method undoes.

A blurred photo, two ways: "Deblur" runs a network (the deblurring U-Net or DeblurGAN); "Estimate the kernel
and deblur" finds the blur kernel from the photo alone (blind) and deconvolves the photo with it, showing the
kernel, or uses the default network where no kernel estimate is trusted. A sharp photo, two ways: "Blur and
deblur" blurs it with a seeded camera-shake kernel and scores each network and deconvolution with the true
kernel (the ceiling a known kernel gives); "Blur, then estimate the kernel blind and deconvolve" blurs it the
same way, estimates the kernel without being told it, deconvolves with the estimate and scores that.

Every button is an API endpoint:

- `/deblur` (image, model) -> (input, deblurred);
- `/deblur_blind` (image) -> ((input, deblurred), estimated kernel picture or None, a line about the kernel);
- `/blur_and_deblur` (sharp image, blur length, seed) -> (gallery: kernel, blurred, one image per model,
  deconvolved with the true kernel, original; score table);
- `/blur_and_estimate` (sharp image, blur length, seed) -> (gallery: true kernel, estimated kernel, blurred,
  deconvolved with the estimate, original; score table).

The work is `ganzoo.pipelines.deblur`, `deblur_blind` and `deblur_with_kernel` (shared with the CLI), the blur
`ganzoo.degrade` and the scores `ganzoo.metrics` (RGB PSNR/SSIM without border crop, as `ganzoo evaluate
deblur`'s unaligned figures).
"""

from __future__ import annotations

import math
from typing import Any

import gradio as gr
import torch
from PIL import Image

from ganzoo import degrade, imaging, metrics, pipelines, registry

from .common import CACHED_EXAMPLES, EXAMPLES_DIR, before_after, check_image, image_input, load_model, score_cell

TITLE = "Deblur"
UNET, DEBLURGAN = "Deblur U-Net", "DeblurGAN"
#: choice -> registry model name (GANZOO_MODEL_<NAME> replaces it: tabs.common)
MODELS = {UNET: "deblur-unet", DEBLURGAN: "deblurgan"}
CHOICES = list(MODELS)
DEFAULT_CHOICE = next(c for c, name in MODELS.items() if name == registry.DEFAULT_DEBLUR_MODEL)
#: each model's measured PSNR gain over its blurred input on unseen blur (model cards, README "Deblurring")
GAINS = {UNET: "+1.02 dB on moderate shake (5-30 px), +0.63 dB on large shake (31-75 px), +0.93 dB on Levin",
         DEBLURGAN: "+0.77 dB on moderate shake, +0.34 dB on large shake, +0.35 dB on Levin"}
MAX_PIXELS = 1024 * 1024  # ~5 s on a free 2-core CPU Space
TILE = 512
MAX_LENGTH = 75  # camera path in pixels: the training kernels reach 75 px
MIN_SIDE = 32  # the blur and SSIM's 11x11 window need room
EXAMPLES = ["chelsea_shake_192.png", "camera_shake_192.png"]
SHARP_EXAMPLES = [("coffee_160.png", 25, 3), ("astronaut_160.png", 35, 7)]
TABLE_HEADERS = ["Image", "PSNR (dB)", "SSIM"]
TRUE_KERNEL = "Deconvolved with the true kernel"
ESTIMATED = "Kernel estimated, deconvolved"


def model_for(choice: Any) -> Any:
    if choice not in MODELS:
        raise gr.Error(f"Model must be one of {', '.join(CHOICES)}; got {choice!r}.")
    return load_model(MODELS[choice], "deblurring model")


def _deblur(image: Image.Image, choice: str) -> Image.Image:
    try:
        return pipelines.deblur(image, model_for(choice), tile=TILE, max_pixels=MAX_PIXELS)
    except ValueError as err:  # imaging.ImageError included: unreadable or corrupt input
        raise gr.Error(f"Could not deblur the image: {err}") from err


def deblur_image(image: Image.Image | None, choice: str = DEFAULT_CHOICE) -> tuple[Image.Image, Image.Image]:
    """(the input, the deblurred image) for the before/after slider; alpha and grey are kept."""
    image = check_image(image, MAX_PIXELS, "deblurring")
    return image, _deblur(image, choice)


def shake_kernel(length: float, seed: int) -> torch.Tensor:
    """The camera-shake kernel of a blur `length` (pixels of camera path) and `seed`, on the smallest grid
    that holds it (as in training)."""
    if not isinstance(length, (int, float)) or not 1 <= length <= MAX_LENGTH:
        raise gr.Error(f"Blur length must be from 1 to {MAX_LENGTH} pixels, got {length!r}.")
    if not isinstance(seed, (int, float)) or seed != int(seed) or not 0 <= seed < 2**31:
        raise gr.Error(f"Seed must be a whole number from 0 to {2**31 - 1}, got {seed!r}.")
    return degrade.shake_kernel(float(length), torch.Generator().manual_seed(int(seed)))


def kernel_picture(kernel: torch.Tensor, side: int = 248) -> Image.Image:
    """The kernel scaled to its peak and enlarged with square pixels to about `side` px, to be seen."""
    zoom = max(side // kernel.shape[0], 1)
    view = (kernel / kernel.max()).expand(1, 3, -1, -1)
    return imaging.tensor_to_image(view).resize((kernel.shape[1] * zoom, kernel.shape[0] * zoom), Image.NEAREST)


def blur_and_deblur(image: Image.Image | None, length: float, seed: int,
                    progress: gr.Progress = gr.Progress()) -> tuple[list, list[list]]:  # noqa: B008 - Gradio idiom
    """Blur a sharp image with the camera-shake kernel of (`length`, `seed`), 8-bit quantised like a
    photo, deblur it with each model and deconvolve it with the true kernel (`pipelines.deblur_with_kernel`:
    what knowing the kernel gives), and score each against the original.

    Returns the gallery (kernel, blurred, one per model, deconvolved, original) and the table rows
    [image, PSNR, SSIM].
    """
    image = check_image(image, MAX_PIXELS, "blurring and deblurring")
    try:
        sharp, _, _ = imaging.image_to_tensor(imaging.load_image(image, MAX_PIXELS))
    except ValueError as err:
        raise gr.Error(f"Could not read the image: {err}") from err
    if min(sharp.shape[-2:]) < MIN_SIDE:
        raise gr.Error(f"The image is {image.width}x{image.height}; this needs at least {MIN_SIDE}x{MIN_SIDE}.")
    kernel = shake_kernel(length, seed)
    if min(sharp.shape[-2:]) <= kernel.shape[0] // 2:
        raise gr.Error(f"The image is {image.width}x{image.height}; a {length:g} px blur needs more than "
                       f"{kernel.shape[0] // 2} px on each side.")
    progress(0.1, desc="blurring")
    candidates = [("Blurred", imaging.quantize(degrade.blur(sharp, kernel)))]
    blurred_image = imaging.tensor_to_image(candidates[0][1])
    for i, choice in enumerate(CHOICES):
        progress(0.2 + 0.6 * i / len(CHOICES), desc=choice)
        deblurred, _, _ = imaging.image_to_tensor(_deblur(blurred_image, choice))
        candidates.append((f"Deblurred ({choice})", deblurred))
    progress(0.8, desc=TRUE_KERNEL)
    deconvolved, _, _ = imaging.image_to_tensor(pipelines.deblur_with_kernel(
        blurred_image, kernel, max_pixels=MAX_PIXELS,
        progress=lambda done: progress(0.8 + 0.15 * done, desc=TRUE_KERNEL)))
    candidates.append((TRUE_KERNEL, deconvolved))
    rows = [[name, score_cell(metrics.psnr(candidate, sharp).item(), 2),
             score_cell(metrics.ssim(candidate, sharp).item(), 4)] for name, candidate in candidates]
    gallery = [(kernel_picture(kernel), f"Kernel (length {length:g}, seed {int(seed)}, {kernel.shape[0]} px)")]
    gallery += [(imaging.tensor_to_image(candidate), f"{name}: {row[1]} dB")
                for (name, candidate), row in zip(candidates, rows)]
    return gallery + [(imaging.tensor_to_image(sharp), "Original")], rows


def deblur_blind(image: Image.Image | None, progress: gr.Progress = gr.Progress(),  # noqa: B008
                 ) -> tuple[tuple[Image.Image, Image.Image], Image.Image | None, str]:
    """Blind deblurring (`pipelines.deblur_blind`, the CLI's `--method auto`): the kernel estimated and
    deconvolved, or the default network where the estimate is not trusted or the deconvolution strays from the
    network's output. Returns ((input, result) for the slider, the estimated kernel's picture (None for the
    identity fallback), a line about the kernel)."""
    image = check_image(image, MAX_PIXELS, "deblurring")
    try:
        result, estimate = pipelines.deblur_blind(image, max_pixels=MAX_PIXELS,
                                                  fallback=model_for(DEFAULT_CHOICE),
                                                  progress=lambda done, text="": progress(done, desc=text or None))
    except ValueError as err:
        raise gr.Error(f"Could not deblur the image: {err}") from err
    if estimate.note:
        return (image, result), None, f"{estimate.note}; {DEFAULT_CHOICE} was used instead."
    picture = kernel_picture(torch.from_numpy(estimate.kernel).float())
    return (image, result), picture, f"Estimated kernel: {estimate.size} px, in {estimate.seconds:.1f} s."


def blur_and_estimate(image: Image.Image | None, length: float, seed: int,
                      progress: gr.Progress = gr.Progress()) -> tuple[list, list[list]]:  # noqa: B008
    """Blur a sharp image as `blur_and_deblur` does, then estimate the kernel blind and deconvolve it
    (`pipelines.deblur_blind` without fallback). Returns the gallery (true kernel, estimated kernel,
    blurred, deconvolved with the estimate, original) and the rows [image, PSNR, SSIM] plus the kernel
    similarity (`metrics.kernel_similarity`)."""
    image = check_image(image, MAX_PIXELS, "blurring and deblurring")
    sharp, _, _ = imaging.image_to_tensor(imaging.load_image(image, MAX_PIXELS))
    kernel = shake_kernel(length, seed)
    if min(sharp.shape[-2:]) <= kernel.shape[0] // 2:
        raise gr.Error(f"The image is {image.width}x{image.height}; a {length:g} px blur needs more than "
                       f"{kernel.shape[0] // 2} px on each side.")
    blurred = imaging.quantize(degrade.blur(sharp, kernel))
    restored, estimate = pipelines.deblur_blind(imaging.tensor_to_image(blurred), max_pixels=MAX_PIXELS,
                                                progress=lambda done, text="": progress(done, desc=text or None))
    restored_tensor, _, _ = imaging.image_to_tensor(restored)
    rows = [[name, score_cell(metrics.psnr(x, sharp).item(), 2), score_cell(metrics.ssim(x, sharp).item(), 4)]
            for name, x in (("Blurred", blurred), (ESTIMATED, restored_tensor))]
    similarity = metrics.kernel_similarity(estimate.kernel, kernel)
    found = (kernel_picture(torch.from_numpy(estimate.kernel).float()),
             f"Estimated kernel ({estimate.size} px), similarity {similarity:.2f}" if not estimate.note
             else f"No kernel trusted: {estimate.note}")
    gallery = [(kernel_picture(kernel), f"True kernel ({kernel.shape[0]} px)"), found,
               (imaging.tensor_to_image(blurred), f"Blurred: {rows[0][1]} dB"),
               (restored, f"{ESTIMATED}: {rows[1][1]} dB"), (imaging.tensor_to_image(sharp), "Original")]
    return gallery, rows


def build() -> None:
    """The tab's components and events; call inside `gr.Tab(TITLE)`."""
    gr.Markdown(
        "Remove camera-shake motion blur. **Deblur U-Net** (NAFNet blocks, trained for PSNR on random camera "
        "shake up to 75 px, never on the test kernels or photos) and **DeblurGAN** (that U-Net fine-tuned "
        "against a WGAN-GP critic with a perceptual loss, on the same data). Measured gain over the blurred input on blur "
        f"neither saw: {UNET}: {GAINS[UNET]}; {DEBLURGAN}: {GAINS[DEBLURGAN]} (model cards). Both gains are "
        f"small: the models were trained for a few hours, mostly on a 2-core CPU. The default, {DEFAULT_CHOICE}, "
        "restores unseen blur best; DeblurGAN trades some PSNR for texture. Drag the slider to compare with the input. "
        f"Inputs up to {MAX_PIXELS:,} pixels ({math.isqrt(MAX_PIXELS)}x{math.isqrt(MAX_PIXELS)}); "
        "transparency is kept. Large blur (over ~30 px) is only partly undone.\n\n"
        "**Estimate the kernel and deblur** works out the blur kernel (the path the camera shook along) from the "
        "photo alone, deconvolves the photo with it and shows the kernel it found. If it cannot trust its estimate, "
        f"or the deconvolution strays from what {DEFAULT_CHOICE} makes of the photo (a wrong kernel's ghosts and "
        f"ringing), the note beside the kernel says so and {DEFAULT_CHOICE} is used instead. On "
        "unseen test blur it gained +3.42 dB on moderate shake, +2.19 dB on large shake and +2.72 dB on Levin's "
        f"(set means; {DEFAULT_CHOICE} alone: {GAINS[UNET]}), and it is what `ganzoo deblur` does by default; "
        "single photos can still come out worse, so compare with the network.")
    with gr.Row():
        with gr.Column(scale=1):
            image = image_input("Blurred photo", "deblur-input", 320)
            choice = gr.Radio(CHOICES, value=DEFAULT_CHOICE, label="Model", elem_id="deblur-model")
            run = gr.Button("Deblur", variant="primary", elem_id="deblur-run")
        slider = before_after("Before / after", "deblur-slider")
    run.click(deblur_image, [image, choice], slider, api_name="deblur")
    with gr.Row():
        run_blind = gr.Button("Estimate the kernel and deblur", elem_id="deblur-blind-run")
        found_kernel = gr.Image(label="Estimated kernel", type="pil", format="png", interactive=False, height=160,
                                elem_id="deblur-kernel")
        kernel_note = gr.Markdown(elem_id="deblur-kernel-note")
    run_blind.click(deblur_blind, [image], [slider, found_kernel, kernel_note], api_name="deblur_blind")
    gr.Examples([[str(EXAMPLES_DIR / name), DEFAULT_CHOICE] for name in EXAMPLES], [image, choice], slider,
                fn=deblur_image, **CACHED_EXAMPLES)

    gr.Markdown(
        "### Blur a sharp photo, then deblur it\n"
        "Upload a *sharp* photo: it is blurred with a random camera-shake kernel (a seeded camera path "
        "of the given length, as in training) and saved to 8 bits. **Blur and deblur** then deblurs it with both "
        "models and deconvolves it with the true kernel (a learned image prior, a small denoiser in "
        "plug-and-play deconvolution: what knowing the kernel gives, e.g. `ganzoo deblur --kernel FILE`). **Blur, then estimate the kernel "
        "blind and deconvolve** instead estimates the kernel from the blurred photo alone, as the button above "
        "does, and deconvolves with that; the gallery shows the true and the estimated kernel and their "
        "similarity (1 = the same kernel). Each result is scored against the original (PSNR and SSIM on RGB; "
        "higher is better).")
    with gr.Row():
        with gr.Column(scale=1):
            sharp = image_input("Sharp photo", "blur-input", 260)
            length = gr.Slider(5, MAX_LENGTH, value=25, step=1, label="Blur length (pixels of camera path)",
                               elem_id="blur-length")
            seed = gr.Number(value=0, precision=0, minimum=0, label="Kernel seed", elem_id="blur-seed")
            run_blur = gr.Button("Blur and deblur", elem_id="blur-run")
        with gr.Column(scale=2):
            gallery = gr.Gallery(label="Kernel(s), blurred, results, original (each picture is captioned)",
                                 format="png", columns=6,
                                 height=320, object_fit="contain", interactive=False, elem_id="blur-gallery")
            table = gr.Dataframe(headers=TABLE_HEADERS, datatype=["str", "number", "number"], label="Scores",
                                 interactive=False, elem_id="blur-table")
    run_blur.click(blur_and_deblur, [sharp, length, seed], [gallery, table], api_name="blur_and_deblur")
    run_estimate = gr.Button("Blur, then estimate the kernel blind and deconvolve", elem_id="blur-estimate-run")
    run_estimate.click(blur_and_estimate, [sharp, length, seed], [gallery, table], api_name="blur_and_estimate")
    gr.Examples([[str(EXAMPLES_DIR / name), n, s] for name, n, s in SHARP_EXAMPLES], [sharp, length, seed],
                [gallery, table], fn=blur_and_deblur, **CACHED_EXAMPLES)
