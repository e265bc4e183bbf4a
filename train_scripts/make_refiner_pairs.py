"""Training pairs for a refiner of blind deblurring: (deconvolved with the *estimated* kernel, sharp).

    python train_scripts/make_refiner_pairs.py --train-dirs ../shared/data/sr/train/* \
        --held-out runs/eval/deblur-large runs/eval/deblur-moderate ../shared/data/sr/bench/Set5 \
            ../shared/data/blur/bench/levin ../shared/data/blur/kernels runs/dev runs/eval/deblur-dev-moderate \
        --output runs/refiner-pairs --count 500 --seed 0

Each pair starts as `train_deblur_unet.py`'s do: a random crop of a training image, blurred from its
surroundings by a fresh camera-shake kernel (`degrade.ShakeBlur`: noise, clipped highlights, 8-bit). Then the
blind pipeline runs on it exactly as `ganzoo deblur --method estimate` does (`kernel_estimation.estimate_kernel`
with the window chosen, `pipelines.deconvolve_estimated`), so the refiner learns the errors the estimator
really makes. Crops whose estimate is not trusted are skipped: `auto` gives those to the network alone.

Written in the layout `data.blur_pairs` reads (`--pair-dirs` of the training scripts): `blur_deconvolved/N.png`
beside `sharp/N.png`; the blurred input in `input/N.png`, and `pairs.jsonl` (one line per pair: kernel sizes,
similarity, PSNR before and after). A second run with another `--seed` into the same folder adds pairs
(the files are named by seed), so two processes can fill it at once.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ganzoo import imaging, kernel_estimation, metrics, pipelines
from ganzoo.blur_sets import HeldOut
from ganzoo.data import ImageBank
from ganzoo.degrade import ShakeBlur


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-dirs", nargs="+", required=True, help="folders of sharp images")
    parser.add_argument("--held-out", nargs="*", default=[], metavar="SET",
                        help="evaluation and development sets whose images and kernels must never be read")
    parser.add_argument("--output", required=True, help="folder to write the pairs into (added to if it exists)")
    parser.add_argument("--count", type=int, default=100, help="pairs to write (skipped crops do not count)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--lengths", type=float, nargs=2, default=(1.0, 100.0), metavar=("LOW", "HIGH"))
    parser.add_argument("--max-kernel", type=int, default=kernel_estimation.MAX_KERNEL)
    parser.add_argument("--max-noise", type=float, default=0.02)
    parser.add_argument("--saturation", type=float, default=0.2)
    parser.add_argument("--sized-fraction", type=float, default=0.5,
                        help="share of kernels stretched to span a random size up to --max-kernel")
    parser.add_argument("--time-limit", type=float, default=None, help="minutes; stop after the pair in progress")
    args = parser.parse_args(argv)
    if args.count < 1 or args.crop_size < 4 * kernel_estimation.MIN_KERNEL:
        parser.error("--count must be >= 1 and --crop-size >= 12")
    return args


def make_pair(blurred: torch.Tensor) -> tuple[torch.Tensor | None, kernel_estimation.KernelEstimate]:
    """The blind pipeline's deconvolution of one blurred crop [1,3,H,W] (None where the estimate fell back)."""
    estimate = kernel_estimation.estimate_kernel(blurred[0])
    if estimate.kernel.size == 1:
        return None, estimate
    return pipelines.deconvolve_estimated(blurred, estimate.kernel).clamp(0, 1), estimate


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    output = Path(args.output)
    for folder in ("blur_deconvolved", "sharp", "input"):
        (output / folder).mkdir(parents=True, exist_ok=True)
    held_out = HeldOut(args.held_out)
    _, dropped = held_out.split_images(args.train_dirs)
    synth = ShakeBlur(args.crop_size, tuple(args.lengths), args.max_kernel, args.max_noise, args.saturation,
                      args.sized_fraction)
    bank = ImageBank(args.train_dirs, synth.region_size, exclude=set(dropped))
    print(f"{len(bank)} training images ({len(dropped)} held out); writing {args.count} pairs to {output}")
    rng = torch.Generator().manual_seed(args.seed)
    started, written, skipped = time.perf_counter(), 0, 0
    with open(output / "pairs.jsonl", "a") as log:
        while written < args.count:
            if args.time_limit is not None and time.perf_counter() - started > 60 * args.time_limit:
                print(f"time limit reached after {written} pairs")
                break
            blurred, sharp = synth(bank.random_crops(1, synth.region_size, rng), rng)
            restored, estimate = make_pair(blurred)
            if restored is None:
                skipped += 1
                continue
            name = f"s{args.seed}_{written:05d}"
            for folder, image in (("blur_deconvolved", restored), ("sharp", sharp), ("input", blurred)):
                imaging.tensor_to_image(image[0]).save(output / folder / f"{name}.png")
            record = {"name": name, "kernel": estimate.kernel.shape[0], "seconds": round(estimate.seconds, 2),
                      "input_psnr": round(float(metrics.psnr(blurred, sharp)), 3),
                      "deconvolved_psnr": round(float(metrics.psnr(restored, sharp)), 3)}
            log.write(json.dumps(record) + "\n")
            log.flush()
            written += 1
            print(f"pair {written}/{args.count} ({skipped} skipped): {record['input_psnr']:.2f} -> "
                  f"{record['deconvolved_psnr']:.2f} dB, {record['kernel']} px kernel, {record['seconds']:.1f} s",
                  flush=True)
    print(f"{written} pairs written, {skipped} crops skipped (estimate not trusted), "
          f"{(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
