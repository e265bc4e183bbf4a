"""Camera-shake synthesis for deblurring (issue 29): the per-kernel path against the batched one.

    python benchmarks/bench_synthesis.py --threads 1 [--json]

1. Kernels per second: `degrade.shake_kernel` in a loop (the per-kernel path; lengths uniform in [1, 100] px,
   as `ShakeBlur` draws them), the batched path all in torch as it first was (`batched_torch_*`: the loop and
   the rasteriser a GPU runs, here on the CPU) and `ShakeBlur.kernels` (the loop and the rasteriser in numpy
   on a CPU), for batches of 32 and 256. The two batched paths give the same kernels for a seed (checked).
2. One `ShakeBlur` batch of 32 x 240 px crops (regions of 314 px): the per-sample loop `ShakeBlur` ran
   before (copied below) against the batched class, and each part of the batched one.
3. With CUDA: the batched batch on the GPU, its sequential trajectory loop on the CPU (the default) or on
   the GPU.
4. One CPU training step of train_scripts/train_deblur_unet.py (its default model, `--step-batch` crops of
   `--step-crop` px): the share of crops, synthesis and the model's forward/backward/update, and the
   per-sample synthesis it replaced (`*_before`, not in the shares).

Times are medians of `--repeats` runs after one warm-up: CPU time of the process on a CPU (so that other jobs
on a shared machine do not count; with `--threads 1` it is the wall time of an idle machine), wall time on CUDA.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from PIL import Image

from ganzoo import degrade
from ganzoo.data import ImageBank
from ganzoo.precision import cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train_scripts"))
import train_deblur_unet  # noqa: E402  (its model defaults and loss)


def per_region_blur_valid(regions: torch.Tensor, kernel: torch.Tensor, size: int) -> torch.Tensor:
    """`degrade.blur_valid` as it was before issue 29: the FFT at the region's own size."""
    kh, kw = kernel.shape
    h, w = regions.shape[-2:]
    padded = torch.zeros(h, w, dtype=regions.dtype, device=regions.device)
    padded[:kh, :kw] = kernel.to(regions)
    padded = torch.roll(padded, (-((kh - 1) // 2), -((kw - 1) // 2)), dims=(0, 1))
    out = torch.fft.irfft2(torch.fft.rfft2(regions) * torch.fft.rfft2(padded), s=(h, w))
    top, left = (h - size) // 2, (w - size) // 2
    return out[..., top:top + size, left:left + size]


def per_sample_shake_blur(synth: degrade.ShakeBlur, regions: torch.Tensor, rng: torch.Generator
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """`ShakeBlur.__call__` as it was before issue 29: one kernel, blur and crop per region."""
    blurred, sharp = [], []
    for region in regions:
        if synth.sized_fraction > 0 and degrade._uniform(rng) < synth.sized_fraction:
            size = 5 + 2 * int(torch.randint((synth.max_kernel - 5) // 2 + 1, (), generator=rng))
            kernel = degrade.sized_shake_kernel(size, rng)
        else:
            kernel = degrade.shake_kernel(degrade._uniform(rng, *synth.lengths), rng, synth.max_kernel)
        if degrade._uniform(rng) < synth.saturation:
            gain = degrade._uniform(rng, 1.5, 4.0)
            region = torch.where(region > 0.9, region * gain, region)
        blurred.append(per_region_blur_valid(region[None], kernel, synth.crop_size)[0])
        lo, hi = (synth.region_size - synth.crop_size) // 2, (synth.region_size + synth.crop_size) // 2
        sharp.append(region[:, lo:hi, lo:hi].clamp(0, 1))
    sigma = torch.tensor([degrade._uniform(rng, 0.0, synth.max_noise) for _ in blurred])
    noisy = degrade.add_noise(torch.stack(blurred).clamp(0, 1), sigma, rng)
    return (noisy * 255).round() / 255, torch.stack(sharp)


def median_s(fn: Callable[[], object], repeats: int, cuda: bool = False) -> float:
    """Median time of `fn` in seconds after one warm-up call: the process's CPU time on a CPU (on a shared
    machine, wall time would count the other jobs too; with one thread the two agree on an idle one), wall
    time with CUDA."""
    clock = time.perf_counter if cuda else time.process_time
    fn()
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = clock()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(clock() - start)
    return statistics.median(times)


def per_kernel(n: int, rng: torch.Generator) -> list[torch.Tensor]:
    return [degrade.shake_kernel(degrade._uniform(rng, 1.0, 100.0), rng) for _ in range(n)]


def torch_batched_kernels(synth: degrade.ShakeBlur, n: int, rng: torch.Generator, steps: int = 2000
                          ) -> torch.Tensor:
    """`ShakeBlur.kernels` with the torch loop and rasteriser (what a GPU runs; on a CPU, the batched path
    before numpy took over there): the same draws in the same order."""
    uniform = torch.rand(n, 2, generator=rng, dtype=torch.float64)
    sizes = 5 + 2 * torch.randint((synth.max_kernel - 5) // 2 + 1, (n,), generator=rng)
    stretch = uniform[:, 0] < synth.sized_fraction
    low, high = synth.lengths
    lengths = torch.where(stretch, sizes * (1 + uniform[:, 1]), low + (high - low) * uniform[:, 1])
    params = torch.rand(n, 4, generator=rng)
    jitter = torch.randn(n, steps - 1, 2, generator=rng)
    coins, turns = torch.rand(2, n, steps - 1, generator=rng)
    positions = degrade._positions_torch(lengths / (steps - 1), params, jitter, coins, turns, 0.2, 10.0, 0.7, 0.005,
                                         torch.device("cpu"))
    fit = partial(degrade._fit, grid=synth.kernel_grid, stretch_to=torch.where(stretch, sizes, 0), size=None)
    return degrade._rasterize_torch(torch.view_as_real(positions).transpose(0, 1), synth.kernel_grid, fit)


def kernel_rates(repeats: int) -> dict[str, float]:
    mixed = degrade.ShakeBlur(240, sized_fraction=0.3)
    kernels = mixed.kernels(64, torch.Generator().manual_seed(1))
    if not torch.allclose(kernels, torch_batched_kernels(mixed, 64, torch.Generator().manual_seed(1)), atol=1e-7):
        raise AssertionError("the numpy and torch batched paths drew different kernels for one seed")
    synth = degrade.ShakeBlur(240)
    rng = torch.Generator().manual_seed(0)
    rates = {"per_kernel": 16 / median_s(lambda: per_kernel(16, rng), repeats)}
    for n in (32, 256):
        rates[f"batched_torch_{n}"] = n / median_s(lambda: torch_batched_kernels(synth, n, rng), repeats)
        rates[f"batched_{n}"] = n / median_s(lambda: synth.kernels(n, rng), repeats)
    return rates


def batch_times(repeats: int, device: str = "cpu") -> dict[str, float]:
    """Seconds for one ShakeBlur batch of 32 x 240 px, and its parts."""
    synth = degrade.ShakeBlur(240)
    regions = torch.rand(32, 3, synth.region_size, synth.region_size, device=device)
    rng = torch.Generator(device=device).manual_seed(0)
    cuda = device != "cpu"
    kernels = synth.kernels(32, rng)
    times = {"batched": median_s(lambda: synth(regions, rng), repeats, cuda),
             "kernels": median_s(lambda: synth.kernels(32, rng), repeats, cuda),
             "fft_blur": median_s(lambda: degrade.blur_valid(regions, kernels, 240), repeats, cuda)}
    if cuda:
        lengths = torch.rand(32, device=device) * 99 + 1
        times["trajectories_loop_on_cpu"] = median_s(lambda: degrade.random_trajectories(lengths, rng=rng),
                                                     repeats, cuda)
        times["trajectories_loop_on_gpu"] = median_s(
            lambda: degrade.random_trajectories(lengths, rng=rng, loop_device=None), repeats, cuda)
    else:
        times["per_sample"] = median_s(lambda: per_sample_shake_blur(synth, regions, rng), repeats)
    return times


def step_profile(batch: int, crop: int, repeats: int) -> dict[str, float]:
    """Seconds of each part of one CPU training step of train_deblur_unet.py (its default model)."""
    from skimage import data as samples

    synth = degrade.ShakeBlur(crop)
    photos = [Image.fromarray(getattr(samples, name)()) for name in ("astronaut", "chelsea", "coffee", "rocket")]
    bank = ImageBank.from_groups([[photo] for photo in photos], synth.region_size)
    model = train_deblur_unet.DeblurUNet(**train_deblur_unet.UNET_DEFAULTS)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.9))
    rng = torch.Generator().manual_seed(0)
    regions = bank.random_crops(batch, synth.region_size, rng)
    blurred, sharp = synth(regions, rng)

    def update() -> None:
        loss = train_deblur_unet.charbonnier(model(blurred).float(), sharp)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return {"random_crops": median_s(lambda: bank.random_crops(batch, synth.region_size, rng), repeats),
            "shake_blur": median_s(lambda: synth(regions, rng), repeats),
            "shake_blur_per_sample_before": median_s(lambda: per_sample_shake_blur(synth, regions, rng), repeats),
            "model_forward_backward_update": median_s(update, repeats)}


def print_table(report: dict) -> None:
    rates = report["kernels_per_s"]
    print(f"CPU {report['cpu']}, {report['threads']} thread(s), torch {report['torch']}")
    print(f"{'kernels/s':40s} {'':>10s}")
    for name, value in rates.items():
        print(f"  {name:38s} {value:10.0f}")
    for device, times in report["batch_32x240_s"].items():
        print(f"ShakeBlur batch 32 x 240 px, {device} (ms)")
        for name, value in times.items():
            print(f"  {name:38s} {value * 1e3:10.1f}")
    step = report.get("cpu_train_step_s")
    if step:
        total = sum(value for name, value in step["times"].items() if not name.endswith("_before"))
        print(f"CPU training step, batch {step['batch']} x {step['crop']} px (ms, share)")
        for name, value in step["times"].items():
            print(f"  {name:38s} {value * 1e3:10.1f} {100 * value / total:5.1f}%")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--step-batch", type=int, default=4, help="crops per training step (0: skip the step)")
    parser.add_argument("--step-crop", type=int, default=128)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "command": " ".join(["python", "benchmarks/bench_synthesis.py", *(argv or sys.argv[1:])]),
              "kernels_per_s": kernel_rates(args.repeats), "batch_32x240_s": {"cpu": batch_times(args.repeats)}}
    if torch.cuda.is_available():
        report["batch_32x240_s"]["cuda"] = batch_times(args.repeats, "cuda")
        report["gpu"] = torch.cuda.get_device_name()
    if args.step_batch:
        report["cpu_train_step_s"] = {"batch": args.step_batch, "crop": args.step_crop,
                                      "times": step_profile(args.step_batch, args.step_crop, args.repeats)}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
