"""The default path's speed and quality on this CPU, per model and size: the table in docs/performance.md.

    python benchmarks/cpu_precision_table.py --data-dir ../shared/data --out bench-cpu

For srresnet-x4 and deblur-unet at 256 and 512 pixels and style-mosaic at 256 and 512, `ganzoo benchmark`
(`ganzoo.benchmark.run_benchmark`) times the naive fp32 baseline (NCHW, eager), the exact fp32 path (exact
rewrites + channels-last, what `--precision fp32` runs), the default path (`--precision auto`: bf16 where the
CPU has it natively and the model passed the gate, else fp32) and bf16 autocast. With --data-dir each path is
also scored on Set5 (super-resolution, Y-PSNR) or the Levin set (deblurring, PSNR), as a difference from the
baseline. One JSON per run goes to --out; the table goes to standard output with the CPU it ran on.
With --int8 srresnet-x4 at 256 also gets the static int8 ONNX Runtime path, calibrated on training images.

Run it on an idle machine: another busy process on the same cores moves every ratio.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from ganzoo import pipelines
from ganzoo.benchmark import BenchmarkSettings, run_benchmark
from ganzoo.benchmark.paths import BASELINE, DEFAULT, INT8, REWRITES
from ganzoo.precision import cpu_bf16_support, cpu_flags, cpu_name

AUTOCAST = "bf16 autocast + channels_last"
EXACT = f"{REWRITES} + channels_last"
COLUMNS = {EXACT: "exact fp32", DEFAULT: "default", AUTOCAST: "bf16 autocast", INT8: "int8 (ONNX Runtime)"}
REFERENCE = {"srresnet-x4": "sr/bench/Set5", "deblur-unet": "blur/bench/levin"}


def bf16_flags() -> str:
    """The x86 flags that decide the CPU's bf16 path, as /proc/cpuinfo lists them."""
    flags = cpu_flags()
    return " ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags) or "none"


def run(model: str, size: int, args: argparse.Namespace) -> dict:
    int8 = args.int8 and model == "srresnet-x4" and size == 256
    only = "|".join(re.escape(name) for name in COLUMNS if name != INT8 or int8)
    reference = REFERENCE.get(model)
    settings = BenchmarkSettings(
        size=size, repeats=args.repeats, warmup=1, threads=args.threads, device="cpu", compile=False, onnx=int8,
        thread_sweep=None, model_name=model, only=f"^({only})$",
        calibration_data=args.data_dir / "sr/train" if int8 else None,
        reference_data=args.data_dir / reference if args.data_dir and reference else None)
    return run_benchmark(pipelines.load_image_model(model), settings)


def cell(row: dict | None) -> str:
    if row is None or row.get("status") != "ok":
        return "–"
    text = f"{row['ratio']:.2f}x"
    return text + (f", {row['psnr_delta_db']:+.3f} dB" if "psnr_delta_db" in row else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["srresnet-x4", "deblur-unet", "style-mosaic"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--data-dir", type=Path, help="../shared/data: score each path on Set5 or Levin")
    parser.add_argument("--int8", action="store_true", help="add the int8 path for srresnet-x4 at 256")
    parser.add_argument("--out", type=Path, required=True, help="folder for one JSON per run")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    support = cpu_bf16_support()
    print(f"CPU: {cpu_name()}; flags: {bf16_flags()}; native bf16: {support.native} ({support.reason})\n")
    print("| model | size | baseline (naive fp32) | default runs | " + " | ".join(COLUMNS.values()) + " |")
    print("| --- | --- | --- | --- | " + " | ".join("---" for _ in COLUMNS) + " |")
    for model in args.models:
        for size in args.sizes:
            result = run(model, size, args)
            (args.out / f"{model}-{size}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
            rows = {row["name"]: row for row in result["paths"]}
            baseline = rows[BASELINE]["latency_ms"]["median"]
            precision = result["default"].get("auto", {}).get("precision", "?")
            print(f"| {model} | {size} | {baseline:.0f} ms | {precision} threads={result['threads']} | "
                  + " | ".join(cell(rows.get(name)) for name in COLUMNS) + " |", flush=True)


if __name__ == "__main__":
    main()
