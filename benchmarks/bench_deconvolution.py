"""Speed of the kernel-based deblurring paths against the issues' budgets (issues 26 and 27).

    python benchmarks/bench_deconvolution.py --threads 2 [--repeats 3] [--json]

For a 255 x 255 and a 1024 x 680 colour photo (skimage's astronaut and coffee, resized) blurred by a 31 px and
a 75 px camera-shake kernel (seeded), times:

- `hqs`: non-blind deconvolution with the sparse-gradient prior (`deconvolution.deconvolve_batch`);
- `pnp`: the same with the learned prior, plug-and-play around the bundled `denoiser`;
- `estimate`: blind kernel estimation (`kernel_estimation.estimate_kernel`, size chosen automatically);
- `auto`: what `ganzoo deblur` does by default, end to end: the estimate, its deconvolution and the default
  network's pass that checks it (`pipelines.blind_deblurrer` with `deblur-unet` as fallback, fp32).

Budgets on 2 cores: deconvolution <= 2 s for 255², <= 15 s for 1024 x 680 (#26); kernel estimation <= 10 s and
<= 60 s (#27), here held to `auto` as a whole too. Each figure is the median of `--repeats` runs after one
warm-up, as wall time and as the process's CPU time: on a shared machine other jobs stretch the wall time, not the
CPU time, and with N threads an idle machine's wall time lies between CPU time / N and CPU time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from skimage import data as skdata

import ganzoo
from ganzoo import degrade, imaging, kernel_estimation, pipelines, registry
from ganzoo.deconvolution import deconvolve_batch
from ganzoo.precision import cpu_name

SIZES = {"255x255": (255, 255, skdata.astronaut), "1024x680": (1024, 680, skdata.coffee)}
KERNELS = (31, 75)


def photo(width: int, height: int, source: Callable[[], np.ndarray]) -> torch.Tensor:
    image = Image.fromarray(source()).convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    return imaging.image_to_tensor(image)[0]


def timed(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    fn()  # warm-up: FFT plans, the denoiser's first call
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["hqs", "pnp", "estimate", "auto"],
                        choices=["hqs", "pnp", "estimate", "auto"])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    denoiser = pipelines.pnp_denoiser() if "pnp" in args.methods else None
    auto = (pipelines.blind_deblurrer(fallback=ganzoo.load(registry.DEFAULT_DEBLUR_MODEL), device=torch.device("cpu"),
                                      precision="fp32") if "auto" in args.methods else None)
    runs = {
        "hqs": lambda blurred, kernel: deconvolve_batch(blurred, kernel),
        "pnp": lambda blurred, kernel: deconvolve_batch(blurred, kernel, method="pnp", denoiser=denoiser),
        "estimate": lambda blurred, kernel: kernel_estimation.estimate_kernel(blurred[0]),
        "auto": lambda blurred, kernel: auto(blurred),
    }
    results = {"cpu": cpu_name(), "threads": args.threads, "torch": torch.__version__, "rows": []}
    if not args.json:
        print(f"CPU {results['cpu']}, {args.threads} thread(s), torch {results['torch']}")
    for size in args.sizes:
        sharp = photo(*SIZES[size])
        for kernel_size in KERNELS:
            kernel = degrade.sized_shake_kernel(kernel_size, torch.Generator().manual_seed(kernel_size))
            blurred = imaging.quantize(degrade.blur(sharp, kernel) + 0.01 * torch.randn(
                sharp.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
            for method in args.methods:
                row = {"size": size, "kernel_px": kernel_size, "method": method,
                       **timed(lambda: runs[method](blurred, kernel), args.repeats)}
                results["rows"].append(row)
                if not args.json:
                    print(f"{size:9} {kernel_size:3d} px  {method:9} wall {row['wall_s']:6.2f} s  "
                          f"cpu {row['cpu_s']:6.2f} s", flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
