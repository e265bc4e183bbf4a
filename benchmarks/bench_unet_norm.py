"""What the U-Net's norm rewrite (`inference.PixelLayerNorm`) saves, fp32 and bf16, in one run:

    python benchmarks/bench_unet_norm.py --sizes 256 512 --repeats 7

deblur-unet's pipeline form (exact rewrites, channels-last; `to_bf16` for bf16), once with `LayerNorm2d`'s
eight elementwise passes put back and once as `for_inference` makes it, timed alternately on the same input.
"""

import argparse
import json
import statistics
import time

import torch

from ganzoo.inference import PixelLayerNorm, _replace_modules, for_inference, to_bf16
from ganzoo.models.deblur_unet import LayerNorm2d
from ganzoo.precision import cpu_bf16_support, cpu_name
from ganzoo.registry import load


def form(model: torch.nn.Module, precision: str, fused: bool) -> torch.nn.Module:
    fast = for_inference(model)
    if not fused:
        _replace_modules(fast, PixelLayerNorm, LayerNorm2d)
    return (to_bf16(fast) if precision == "bf16" else fast).to(memory_format=torch.channels_last)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    model = load("deblur-unet").eval()
    results = []
    for size in args.sizes:
        x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).contiguous(
            memory_format=torch.channels_last)
        for precision in ("fp32", "bf16"):
            forms = {"LayerNorm2d": form(model, precision, False), "PixelLayerNorm": form(model, precision, True)}
            times = {name: [] for name in forms}
            with torch.inference_mode():
                outputs = {name: f(x) for name, f in forms.items()}  # warm-up
                for _ in range(args.repeats):
                    for name, f in forms.items():
                        start = time.perf_counter()
                        f(x)
                        times[name].append(time.perf_counter() - start)
            medians = {name: statistics.median(t) * 1e3 for name, t in times.items()}
            results.append({"size": size, "precision": precision, "median_ms": medians,
                            "speedup": medians["LayerNorm2d"] / medians["PixelLayerNorm"],
                            "max_abs_diff": (outputs["LayerNorm2d"] - outputs["PixelLayerNorm"]).abs().max().item()})
    print(json.dumps({"cpu": cpu_name(), "native_bf16": cpu_bf16_support().native,
                      "threads": torch.get_num_threads(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
