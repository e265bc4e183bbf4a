"""The ganzoo demo: one `gr.Blocks` app, one tab per model family (see `tabs/`).

Run from the repo root with `python space/app.py` (or `make demo`); on a Hugging Face
Space this file is the app_file. GRADIO_SERVER_NAME / GRADIO_SERVER_PORT choose where
it listens (127.0.0.1:7860 by default; Spaces set 0.0.0.0 themselves).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # `tabs` sits beside this file, whoever imports it
    sys.path.insert(0, str(HERE))
try:
    import ganzoo  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`: use the package beside space/
    sys.path.insert(0, str(HERE.parent))

import gradio as gr  # noqa: E402
from gradio import processing_utils  # noqa: E402

from ganzoo.hub import REPO_URL  # noqa: E402
from ganzoo.registry import list_models  # noqa: E402
from tabs import deblur, digits, style, upscale  # noqa: E402

#: the tabs, in order; a new family is one module in tabs/ with TITLE, build() and optionally CSS, added here
TABS = [digits, upscale, deblur, style]

CONCURRENCY_LIMIT = 2  # events of one kind running at once (2 CPU cores on a free Space)
QUEUE_MAX_SIZE = 32  # beyond this, new requests get Gradio's "Queue is full" error at once
#: result files (one PNG/WebP per output) older than an hour are deleted every half hour: a long-running Space's disk stays bounded
DELETE_CACHE = (1800, 3600)


def save_pil_to_cache_once(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """Gradio's own version rewrites a content-addressed cache file on every identical result, so a
    user still downloading the earlier copy can get a cut-off file (gradio#7155, #8878). The content
    cannot differ, so write it once, by rename."""
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / f"{name}.{format}").resolve()
    if not path.exists():
        partial = path.with_name(f".{path.name}.{os.getpid()}.{id(data)}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)
    return str(path)


processing_utils.save_pil_to_cache = save_pil_to_cache_once


def intro_markdown() -> str:
    cards = ", ".join(f"[{m.name}](https://huggingface.co/{m.repo_id})" for m in list_models())
    return (
        "# ganzoo\n"
        f"[ganzoo]({REPO_URL}) is a small PyTorch zoo of image GANs: class-conditional MNIST digits, "
        "SRGAN x4 super-resolution, DeblurGAN and neural style transfer, each loadable with "
        "`ganzoo.load(name)`. Every tab here calls the same `ganzoo.pipelines` functions as the "
        "`ganzoo` command line, and each button is also an API endpoint (see \"Use via API\" below).\n\n"
        f"Model cards: {cards}."
    )


def build_app() -> gr.Blocks:
    with gr.Blocks(title="ganzoo: image GANs", delete_cache=DELETE_CACHE) as app:
        gr.Markdown(intro_markdown())
        with gr.Tabs():
            for tab in TABS:
                with gr.Tab(tab.TITLE):
                    tab.build()
    app.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE)
    return app


def css() -> str:
    return "\n".join(getattr(tab, "CSS", "") for tab in TABS)


def main() -> None:
    build_app().launch(
        css=css(),
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
    )


if __name__ == "__main__":
    main()
