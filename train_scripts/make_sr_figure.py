"""The README's super-resolution figure: bicubic / SRResNet / SRGAN / HR crops, x4, with Y-PSNR, and a last
row that enlarges a small part of the comic crop 4x with nearest neighbours, so that pixel-level texture (or a
lattice) shows; its captions give each whole image's grid score (`ganzoo.metrics.grid_artifact_score`).

    python train_scripts/make_sr_figure.py --data ../shared/data/sr/bench -o docs/sr_results.png
"""

import argparse
from pathlib import Path

import torch

import ganzoo
from ganzoo.data import degrade_bicubic
from ganzoo.imaging import captioned_sheet, image_to_tensor, imresize, load_image, mod_crop, quantize, tensor_to_image
from ganzoo.metrics import grid_artifact_score, psnr

# (image, top, left, size) of each HR crop: regions with texture and edges
CROPS = [("Set5/butterfly.png", 60, 60, 120), ("Set5/baby.png", 150, 200, 160),
         ("Set14/zebra.png", 100, 200, 140), ("Set14/comic.png", 40, 40, 120)]
ZOOM = ("Set14/comic.png", 70, 70)  # top left of a 48x48 region (inside the comic crop), shown 4x
ZOOM_SIZE = 48


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder holding Set5/ and Set14/")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--cell", type=int, default=192, help="pixel size of each shown crop (4x the zoomed region)")
    args = parser.parse_args(argv)

    models = {"SRResNet": ganzoo.load("srresnet-x4"), "SRGAN": ganzoo.load("srgan-x4")}
    rows, zoom_row = [], []
    for name, top, left, size in CROPS:
        hr = mod_crop(image_to_tensor(load_image(args.data / name))[0], 4)
        lr = degrade_bicubic(hr, 4)
        with torch.inference_mode():
            outputs = {"Bicubic": imresize(lr, scale=4), **{k: m(lr) for k, m in models.items()}, "HR": hr}
        row, zoom = [], []
        for label, out in outputs.items():
            out = quantize(out)
            score = "" if label == "HR" else f" {psnr(out, hr, crop_border=4, y_channel=True).item():.2f} dB"
            crop = out[..., top:top + size, left:left + size]
            row.append((tensor_to_image(crop), f"{label}{score}"))
            if name == ZOOM[0]:
                region = out[..., ZOOM[1]:ZOOM[1] + ZOOM_SIZE, ZOOM[2]:ZOOM[2] + ZOOM_SIZE]
                zoom.append((tensor_to_image(region), f"4x zoom, grid {grid_artifact_score(out):.2f}"))
        rows.append(row)
        zoom_row = zoom or zoom_row
    sheet = captioned_sheet([*rows, zoom_row], args.cell)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output, optimize=True)
    print(f"wrote {args.output} ({sheet.size[0]}x{sheet.size[1]}); PSNR is Y, crop 4, on the whole image")


if __name__ == "__main__":
    main()
