"""Why large blur is not estimated: how well one kernel step recovers each case's true kernel from the latents
the estimator could work with, beside what a plain Gaussian blob and the estimator itself score.

    python train_scripts/kernel_step_oracles.py --data runs/dev/large42 --kernel kernel_02 --scale 1 --estimate
    python train_scripts/kernel_step_oracles.py --data runs/dev/large42 --kernel kernel_02 --scale 0.25

At `--scale` s the blurred photo, the sharp one and the true kernel are shrunk alike, as a pyramid level of
`kernel_estimation` shrinks them. Per case (`evaluate.deblur_cases`), `metrics.kernel_similarity` to the shrunk
true kernel of:

- blob: the best of centred Gaussian blobs (std 2-32 px x s), which know nothing of the blur's shape: the floor
  an estimate has to clear before it says anything about the camera's path;
- sharp / l0 / deconvolved: one `kernel_step` (the estimator's ridge, solved to convergence) from the 2 px start
  against the sharp photo, against the L0 latent made with the true kernel (`l0_latent`, weight `--l0-weight`:
  the best the estimator's latent step could give), and against the blurred photo deconvolved by the true
  kernel (`deconvolution.deconvolve`, sparse-gradient prior);
- estimate (with `--estimate`, full scale only): `estimate_kernel` as `auto` runs it, 0 where not trusted.

Use only development sets (never the evaluation sets). One thread; about 4 s a case at full scale for
481 x 321 photos and 69 px kernels on a 2-core CPU (with `--estimate` 14 s).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from skimage.transform import resize

from ganzoo import deconvolution, evaluate, kernel_estimation, metrics

BLOB_STDS = (2.0, 4.0, 8.0, 16.0, 32.0)  # px at full scale
LATENTS = ("sharp", "l0", "deconvolved")


def shrunk(grey: np.ndarray, scale: float) -> np.ndarray:
    """`grey` resized by `scale` as `kernel_estimation`'s pyramid resizes the blurred photo."""
    if scale == 1:
        return grey.astype(np.float64)
    shape = (round(grey.shape[0] * scale), round(grey.shape[1] * scale))
    return resize(grey, shape, order=1, anti_aliasing=scale < 1, mode="symmetric").astype(np.float64)


def blob_similarity(kernel: np.ndarray, scale: float) -> float:
    """The best `kernel_similarity` to `kernel` of a centred Gaussian blob (std `BLOB_STDS` x `scale`)."""
    size = kernel.shape[0]
    impulse = np.zeros((size, size))
    impulse[size // 2, size // 2] = 1.0
    return max(metrics.kernel_similarity(ndimage.gaussian_filter(impulse, std * scale), kernel) for std in BLOB_STDS)


def one_step_similarity(latent: np.ndarray, blurred: np.ndarray, kernel: np.ndarray) -> float:
    """One kernel step of the estimator against `latent`, from its 2 px start, cleaned as the estimator cleans
    each step: its similarity to `kernel` (0 where the step's kernel vanishes)."""
    options = kernel_estimation.Options()
    size = kernel.shape[0]
    mask = kernel_estimation._kernel_mask(blurred.astype(np.float32), size)
    raw = kernel_estimation.kernel_step(latent, blurred, mask, kernel_estimation._initial_kernel(size),
                                        options.ridge(size), iterations=100)
    cleaned = kernel_estimation.clean_kernel(raw, options.prune_peak, options.prune_mass)
    return 0.0 if cleaned is None else metrics.kernel_similarity(cleaned, kernel)


def measure_case(blurred: torch.Tensor, sharp: torch.Tensor, true_kernel: torch.Tensor, scale: float,
                 l0_weight: float, estimate: bool) -> dict[str, float]:
    """The similarities of the module docstring for one case ([1,3,H,W] images)."""
    kernel = true_kernel.double().numpy()
    window = (int(np.ceil(kernel.shape[0] * scale)) | 1) + 4
    small_kernel = kernel_estimation._resized_kernel(kernel, scale, window)
    grey = shrunk(kernel_estimation.to_grey(blurred[0]), scale)
    latents = {
        "sharp": shrunk(kernel_estimation.to_grey(sharp[0]), scale),
        "l0": kernel_estimation.l0_latent(grey, small_kernel, l0_weight),
        "deconvolved": deconvolution.deconvolve(torch.from_numpy(grey).float(), small_kernel,
                                                boundary="unknown").double().numpy(),
    }
    row = {"blob": blob_similarity(small_kernel, scale)}
    row.update({name: one_step_similarity(latent, grey, small_kernel) for name, latent in latents.items()})
    if estimate:
        found = kernel_estimation.estimate_kernel(blurred[0]).kernel
        row["estimate"] = metrics.kernel_similarity(found, kernel) if found.size > 1 else 0.0
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a development set (`make-blur-set` layout)")
    parser.add_argument("--kernel", default="", help="only the cases blurred by this kernel (e.g. kernel_02)")
    parser.add_argument("--scale", type=float, default=1.0, help="the pyramid level's scale, in (0, 1]")
    parser.add_argument("--l0-weight", type=float, default=4e-3 * 1.1 ** -5,
                        help="the L0 latent's weight (default: the estimator's after one level's steps)")
    parser.add_argument("--estimate", action="store_true", help="also run estimate_kernel (full scale only)")
    parser.add_argument("--first", type=int, default=0, help="only the first N cases (0: all)")
    parser.add_argument("--json", type=Path, help="also write the per-case results here")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error(f"--scale must be in (0, 1], got {args.scale}")
    if args.estimate and args.scale != 1:
        parser.error("--estimate compares the estimator's full-resolution kernel: use it with --scale 1")
    if args.l0_weight <= 0:
        parser.error(f"--l0-weight must be positive, got {args.l0_weight}")
    cases = [case for case in evaluate.deblur_cases(args.data) if case[0].endswith(args.kernel)]
    cases = [case for case in cases if case[3] is not None][:args.first or None]
    if not cases:
        parser.error(f"no case of {args.data} with a true kernel{' named ' + args.kernel if args.kernel else ''}")
    rows = []
    for name, blurred, sharp, true_kernel in cases:
        row = {"image": name, **measure_case(blurred, sharp, true_kernel, args.scale, args.l0_weight, args.estimate)}
        rows.append(row)
        print(f"{name:40s} " + "  ".join(f"{key} {value:.2f}" for key, value in row.items() if key != "image"),
              flush=True)
    labels = [key for key in rows[0] if key != "image"]
    print(f"{'mean of ' + str(len(rows)) + ' cases':40s} "
          + "  ".join(f"{key} {np.mean([r[key] for r in rows]):.3f}" for key in labels))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
