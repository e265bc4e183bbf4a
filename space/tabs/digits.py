"""Digits tab: a grid of class-conditional MNIST samples and a latent interpolation strip.

Both buttons are also API endpoints (`/sample_digits`, `/interpolate_digits`); the work
itself is `ganzoo.pipelines`, shared with the CLI.
"""

from __future__ import annotations

import math
from typing import Any

import gradio as gr
from PIL import Image

from ganzoo import pipelines

from .common import CACHED_EXAMPLES, load_model

TITLE = "Digits"
MODEL = "mnist-dcgan"  # registry name; GANZOO_MODEL_MNIST_DCGAN replaces it (tabs.common)
RANDOM = "random (0-9)"
DIGIT_CHOICES = [RANDOM, *(str(d) for d in range(10))]
MAX_COUNT = 64
MAX_SEED = 2**32 - 1
MIN_STEPS, MAX_STEPS = 2, 32
GRID_COLUMNS = 8
#: the digits are 28x28: show them enlarged with hard pixel edges instead of tiny or blurred
CSS = """
#digits-grid img, #interp-strip img { image-rendering: pixelated; object-fit: contain; width: 100%; height: 100%; }
"""


def parse_digit(value: Any, allow_random: bool = True) -> int | None:
    """A dropdown value -> 0..9, or None for a random class per image."""
    text = "" if value is None else str(value).strip()
    if allow_random and text.lower() in ("", RANDOM, "random"):
        return None
    if text in DIGIT_CHOICES[1:]:
        return int(text)
    allowed = f"{RANDOM!r} or 0-9" if allow_random else "0-9"
    raise gr.Error(f"Digit must be {allowed}, got {value!r}.")


def whole_number(label: str, value: Any, low: int, high: int) -> int:
    """A whole number in [low, high], or a gr.Error that says what is wrong."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise gr.Error(f"{label} is missing: enter a whole number from {low} to {high}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{label} must be a whole number, got {value!r}.") from None
    if isinstance(value, bool) or not math.isfinite(number) or not number.is_integer():
        raise gr.Error(f"{label} must be a whole number, got {value!r}.")
    if not low <= number <= high:
        raise gr.Error(f"{label} must be from {low} to {high}, got {int(number)}.")
    return int(number)


def sample_digits(digit: str, count: int, seed: int) -> Image.Image:
    """A grid of `count` generated digits of class `digit` (or 0-9 cycling for "random (0-9)");
    the same seed always gives the same grid."""
    label = parse_digit(digit)
    n = whole_number("Count", count, 1, MAX_COUNT)
    seed = whole_number("Seed", seed, 0, MAX_SEED)
    generator = load_model(MODEL, "digits model")
    try:
        return pipelines.sample_digits_grid(generator, n=n, seed=seed, digit=label, nrow=GRID_COLUMNS)
    except ValueError as err:
        raise gr.Error(str(err)) from err


def interpolate_digits(digit: str, seed_a: int, seed_b: int, steps: int) -> Image.Image:
    """A strip of `steps` images of one digit, walking the latent space from seed A to seed B."""
    label = parse_digit(digit, allow_random=False)
    seed_a = whole_number("Seed A", seed_a, 0, MAX_SEED)
    seed_b = whole_number("Seed B", seed_b, 0, MAX_SEED)
    steps = whole_number("Steps", steps, MIN_STEPS, MAX_STEPS)
    generator = load_model(MODEL, "digits model")
    try:
        return pipelines.interpolate_digits(generator, seed_a=seed_a, seed_b=seed_b, digit=label, steps=steps)
    except ValueError as err:
        raise gr.Error(str(err)) from err


def build() -> None:
    """The tab's components and events; call inside `gr.Tab(TITLE)`."""
    gr.Markdown("A class-conditional DCGAN draws 28x28 handwritten digits. "
                "Pick a digit (or all ten in turn), how many, and a seed: the same seed gives the same digits.")
    with gr.Row():
        with gr.Column(scale=1):
            digit = gr.Dropdown(DIGIT_CHOICES, value=RANDOM, label="Digit", elem_id="digits-digit")
            count = gr.Slider(1, MAX_COUNT, value=MAX_COUNT, step=1, label="How many", elem_id="digits-count")
            seed = gr.Number(0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed", elem_id="digits-seed")
            generate = gr.Button("Generate", variant="primary", elem_id="digits-generate")
        grid = gr.Image(label="Samples", type="pil", format="png", interactive=False, elem_id="digits-grid",
                        height=420, scale=2)
    generate.click(sample_digits, [digit, count, seed], grid, api_name="sample_digits")
    gr.Examples([["7", 16, 42], [RANDOM, 64, 0], ["3", 8, 1234]], [digit, count, seed], grid,
                fn=sample_digits, **CACHED_EXAMPLES)

    gr.Markdown("### Latent interpolation\nThe same digit, morphing from the noise of seed A to that of seed B.")
    with gr.Row():
        strip_digit = gr.Dropdown(DIGIT_CHOICES[1:], value="8", label="Digit", elem_id="interp-digit")
        seed_a = gr.Number(1, precision=0, minimum=0, maximum=MAX_SEED, label="Seed A")
        seed_b = gr.Number(2, precision=0, minimum=0, maximum=MAX_SEED, label="Seed B")
        steps = gr.Slider(MIN_STEPS, MAX_STEPS, value=10, step=1, label="Steps")
    interpolate = gr.Button("Interpolate", elem_id="interp-run")
    strip = gr.Image(label="Interpolation", type="pil", format="png", interactive=False, elem_id="interp-strip",
                     height=160)
    interpolate.click(interpolate_digits, [strip_digit, seed_a, seed_b, steps], strip,
                      api_name="interpolate_digits")
