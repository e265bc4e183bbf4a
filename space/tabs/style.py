"""Style tab: repaint a photo in a bundled style (fast per-style networks) or in any uploaded style (AdaIN).

The button is also the API endpoint `/stylize` (content image, style name, style image, alpha,
preserve colour) -> (content, stylised), for the before/after slider. The work is
`ganzoo.pipelines.stylize`, shared with `ganzoo stylize`. Only bundled models are offered; with none,
the tab says so.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import gradio as gr
from PIL import Image, ImageDraw

from ganzoo import pipelines, registry

from .common import CACHED_EXAMPLES, EXAMPLES_DIR, available_model, before_after, check_image, image_input, load_model

TITLE = "Style transfer"
OWN_STYLE = "Your own style (upload)"
ADAIN = "adain"  # registry name; GANZOO_MODEL_ADAIN and GANZOO_MODEL_STYLE_<NAME> replace models (tabs.common)
MAX_PIXELS = 512 * 512  # content: about a second per fast style on a 2-core CPU Space
CONTENT_EXAMPLES = ["style_content_astronaut.jpg", "style_content_coffee.jpg", "style_content_chelsea.jpg"]
THUMBNAIL = 160


def fast_styles() -> dict[str, str]:
    """Display name -> model source, for the fast styles this install can run."""
    styles = {e.name.removeprefix("style-"): available_model(e.name) for e in registry.list_models("fast-style")}
    return {name: source for name, source in styles.items() if source is not None}


def adain_model_name() -> str | None:
    """The AdaIN model to use for uploaded styles, or None when none is available."""
    return available_model(ADAIN)


def style_choices() -> list[str]:
    return [*fast_styles(), *([OWN_STYLE] if adain_model_name() else [])]


def thumbnail(name: str, source: str) -> Image.Image:
    """The style image stored beside the model (style.jpg), else an example file, else a labelled tile."""
    folder = Path(source) if os.path.isdir(source) else registry.PRETRAINED_DIR / source
    for path in (folder / "style.jpg", EXAMPLES_DIR / f"style_{name}.jpg"):
        if path.is_file():
            image = Image.open(path).convert("RGB")
            image.thumbnail((THUMBNAIL, THUMBNAIL))
            return image
    tile = Image.new("RGB", (THUMBNAIL, THUMBNAIL), (200, 200, 200))
    ImageDraw.Draw(tile).text((10, THUMBNAIL // 2), name, fill=(0, 0, 0))
    return tile


def stylize_image(content: Image.Image | None, style: str | None, style_image: Image.Image | None,
                  alpha: float = 1.0, preserve_color: bool = False) -> tuple[Image.Image, Image.Image]:
    """(the content, the content stylised); `style` is a bundled style's name or OWN_STYLE (AdaIN with
    `style_image`)."""
    styles = fast_styles()
    if not styles and not adain_model_name():
        raise gr.Error("No style-transfer models are bundled in this install yet, so there is nothing to run.")
    content = check_image(content, MAX_PIXELS, "style transfer")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise gr.Error(f"Style strength must be a number from 0 to 1, got {alpha!r}.")
    if style == OWN_STYLE:
        if adain_model_name() is None:
            raise gr.Error("Arbitrary styles need the adain model, which is not bundled in this install.")
        if style_image is None:
            raise gr.Error("No style image: upload one under \"Your own style\", or pick a style in the gallery.")
        model, style_source = load_model(ADAIN, "AdaIN model"), style_image
    elif style in styles:
        model, style_source = load_model(f"style-{style}", "style model"), None
    else:
        raise gr.Error(f"Unknown style {style!r}; choose one of: {', '.join(style_choices())}.")
    try:
        result = pipelines.stylize(content, model, style=style_source, alpha=float(alpha),
                                   preserve_color=bool(preserve_color), max_pixels=MAX_PIXELS)
    except ValueError as err:  # imaging.ImageError included: unreadable or too small
        raise gr.Error(f"Could not stylise the image: {err}") from err
    return content, result


def build() -> None:
    """The tab's components and events; call inside `gr.Tab(TITLE)`."""
    styles, adain = fast_styles(), adain_model_name()
    choices = style_choices()
    side = math.isqrt(MAX_PIXELS)
    if not choices:
        gr.Markdown("**No style-transfer models are bundled in this install yet.** Train them with "
                    "`train_scripts/train_all_styles.sh` and bundle them with `train_scripts/bundle_model.py`.",
                    elem_id="style-missing")
    gr.Markdown(
        "Repaint a photo in the style of a painting. Pick a style in the gallery (one fast network per "
        "style, Johnson et al. 2016)" + (", or upload any style image (AdaIN, Huang & Belongie 2017)" if adain
                                         else "") +
        f". **Strength** blends towards the photo; **keep colours** transfers only luminance. Photos up to "
        f"{MAX_PIXELS:,} pixels ({side}x{side}); drag the slider to compare with the original." +
        ("\n\n**The bundled AdaIN decoder is small and CPU-trained:** it takes on a style's colours and "
         "coarse texture but blurs the photo's detail; see its model card." if adain else ""))
    with gr.Row():
        with gr.Column(scale=1):
            content = image_input("Photo", "style-content", 280)
            gallery = gr.Gallery([(thumbnail(name, source), name) for name, source in styles.items()],
                                 label="Bundled styles (click one)", columns=4, height=200, allow_preview=False,
                                 object_fit="cover", interactive=False, elem_id="style-gallery",
                                 visible=bool(styles))
            choice = gr.Radio(choices, value=choices[0] if choices else None, label="Style",
                              elem_id="style-choice")
            style_image = image_input("Your own style (AdaIN)", "style-upload", 200, image_mode="RGB",
                                      visible=bool(adain))
            alpha = gr.Slider(0, 1, value=1.0, step=0.05, label="Strength (alpha)", elem_id="style-alpha")
            preserve = gr.Checkbox(False, label="Keep the photo's colours", elem_id="style-preserve")
            run = gr.Button("Stylise", variant="primary", elem_id="style-run")
        slider = before_after("Before / after", "style-slider")
    names = list(styles)
    gallery.select(_pick_style(names), None, choice, api_visibility="private")
    style_image.upload(lambda: OWN_STYLE, None, choice, api_visibility="private")
    run.click(stylize_image, [content, choice, style_image, alpha, preserve], slider, api_name="stylize")
    examples = [[str(EXAMPLES_DIR / name), style, None, 1.0, False]
                for name, style in zip(CONTENT_EXAMPLES, names * len(CONTENT_EXAMPLES))
                if (EXAMPLES_DIR / name).is_file()]
    if examples:
        gr.Examples(examples, [content, choice, style_image, alpha, preserve], slider, fn=stylize_image,
                    **CACHED_EXAMPLES)


def _pick_style(names: list[str]):
    def pick(evt: gr.SelectData) -> str:
        return names[evt.index]
    return pick
