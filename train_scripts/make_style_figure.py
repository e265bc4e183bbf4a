"""The README's style-transfer figure: content photos (rows) x the bundled fast styles and AdaIN (columns), and
a last row that enlarges a 40x40 part of the first photo's results 4x with nearest neighbours (pixel-level
texture: strokes, or a lattice), captioned with the mean grid score of that column over all shown photos.

    python train_scripts/make_style_figure.py --data ../shared/data/style -o docs/style_results.png
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import ganzoo
from ganzoo.imaging import captioned_sheet, load_image
from ganzoo.metrics import grid_artifact_score
from ganzoo.pipelines import stylize
from ganzoo.registry import MODELS, list_models

CONTENTS = ["chicago.jpg", "golden_gate.jpg", "tubingen.jpg"]
ZOOM = (100, 60, 40)  # top, left, size of the region of the first row shown 4x (with the default --size 256)
ADAIN_STYLES = ["the_scream.jpg", "la_muse.jpg"]  # styles no fast network was trained on


def square(image: Image.Image, size: int) -> Image.Image:
    """The centre square of `image`, resized to `size`."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.convert("RGB").crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder holding content/ and styles/")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--size", type=int, default=256, help="content size fed to the models")
    parser.add_argument("--cell", type=int, default=160, help="4x the zoomed 40-pixel region")
    args = parser.parse_args(argv)

    fast = {e.name.removeprefix("style-"): e.name for e in list_models("fast-style") if e.is_bundled}
    columns = [(name, ganzoo.load(model), None) for name, model in fast.items()]
    if MODELS["adain"].is_bundled:
        adain = ganzoo.load("adain")
        columns += [(f"AdaIN: {Path(s).stem}", adain, args.data / "styles" / s) for s in ADAIN_STYLES]
    if not columns:
        raise SystemExit("no style models are bundled")
    header = [(Image.new("RGB", (args.cell, args.cell), "white"), "content / style")]
    for name, _, style in columns:
        style_path = style or args.data / "styles" / f"{name.replace('-', '_')}.jpg"
        header.append((square(load_image(style_path), args.cell), name))
    rows = [header]
    for content_name in CONTENTS:
        content = square(load_image(args.data / "content" / content_name), args.size)
        row = [(content, Path(content_name).stem)]
        for name, model, style in columns:
            row.append((stylize(content, model, style=style), ""))
        rows.append(row)
    top, left, size = ZOOM
    zoom_row = []
    for c in range(len(rows[1])):
        grid = sum(grid_artifact_score(np.asarray(row[c][0])) for row in rows[1:]) / (len(rows) - 1)
        zoom_row.append((rows[1][c][0].crop((left, top, left + size, top + size)),
                         f"{args.cell // size}x zoom, grid {grid:.2f}"))
    sheet = captioned_sheet([*rows, zoom_row], args.cell)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output, optimize=True)
    print(f"wrote {args.output} ({sheet.size[0]}x{sheet.size[1]})")


if __name__ == "__main__":
    main()
