"""The README's deblurring figure: blurred / Richardson–Lucy (true kernel) / each model / sharp, with PSNR.

    python train_scripts/make_deblur_figure.py --data ../shared/data/blur/bench/levin \
        --kernels ../shared/data/blur/kernels/levin09_kernels_from_mat.npz -o docs/deblur_results.png
"""

import argparse
from pathlib import Path

import ganzoo
from ganzoo.degrade import load_kernels
from ganzoo.evaluate import deblur_cases, richardson_lucy
from ganzoo.imaging import captioned_sheet, quantize, tensor_to_image
from ganzoo.metrics import psnr
from ganzoo.pipelines import deblurrer

CASES = ["im_1_ker_2", "im_2_ker_4", "im_3_ker_6", "im_4_ker_8"]  # one per image, four different kernels
CROP = (60, 60, 140)  # top, left, size: the centre, away from the borders


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the Levin benchmark folder")
    parser.add_argument("--kernels", type=Path, required=True, help="the true kernels (for Richardson-Lucy)")
    parser.add_argument("--models", nargs="+", default=["deblur-unet", "deblurgan"])
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--cell", type=int, default=192)
    args = parser.parse_args(argv)

    deblurrers = {name: deblurrer(ganzoo.load(name)) for name in args.models}
    cases = {name.split("/")[-1]: case for name, *case in deblur_cases(args.data, load_kernels(args.kernels))}
    top, left, size = CROP
    rows = []
    for name in CASES:
        blurred, sharp, kernel = cases[name]
        outputs = {"Blurred": blurred, "Richardson-Lucy": richardson_lucy(blurred, kernel),
                   **{name: deblur(blurred) for name, deblur in deblurrers.items()}, "Sharp": sharp}
        row = []
        for label, out in outputs.items():
            out = quantize(out.clamp(0, 1))
            score = "" if label == "Sharp" else f" {psnr(out, sharp).item():.2f} dB"
            row.append((tensor_to_image(out[..., top:top + size, left:left + size]), f"{label}{score}"))
        rows.append(row)
    sheet = captioned_sheet(rows, args.cell)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output, optimize=True)
    print(f"wrote {args.output} ({sheet.size[0]}x{sheet.size[1]}); PSNR is RGB on the whole image")


if __name__ == "__main__":
    main()
