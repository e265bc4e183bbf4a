"""Training throughput per family, fp32 vs bf16 autocast, with the same command: the README's table.

    OMP_NUM_THREADS=1 python train_scripts/measure_training_throughput.py --data ../shared/data \
        --output runs/throughput --steps 3 --families mnist-dcgan srresnet-x4
    OMP_NUM_THREADS=1 python train_scripts/measure_training_throughput.py --data ../shared/data \
        --output runs/throughput-heavy --steps 2 --families deblurgan style adain

Each family's train script runs a few steps twice, once with `--mixed-precision no` and once with
`--mixed-precision bf16` (forced, whatever the CPU supports), everything else equal. Throughput is
crops (MNIST: images) per second over the logged step times, leaving out the first step (warm-up).
Where bf16 is emulated (no AVX512-BF16/AMX) a step can take minutes, hence few steps and small crops.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from ganzoo.precision import cpu_bf16_support

SCRIPTS = Path(__file__).resolve().parent
NEVER = str(10**9)


def family_commands(data: Path) -> dict[str, tuple[str, int, list[str]]]:
    """family -> (train script, crops per step, its arguments): default model sizes, small batches."""
    sr_train, content = data / "sr/train/t91", data / "style/content"
    return {
        "mnist-dcgan": ("train_mnist_gan", 64, ["--data-dir", data / "mnist", "--batch-size", "64"]),
        "srresnet-x4": ("train_srresnet", 4, ["--train-dirs", sr_train, "--batch-size", "4", "--crop-size", "96"]),
        "deblurgan": ("train_deblurgan", 2, ["--train-dirs", sr_train, "--batch-size", "2", "--crop-size", "64",
                                             "--vgg-weights", "random"]),
        "style": ("train_style", 2, ["--style-image", data / "style/styles/mosaic.jpg", "--content-dirs", content,
                                     "--batch-size", "2", "--crop-size", "64", "--vgg-weights", "random"]),
        "adain": ("train_adain", 2, ["--content-dirs", content, "--style-dirs", data / "style/styles",
                                     "--batch-size", "2", "--crop-size", "64", "--vgg-weights", "random"]),
    }


def crops_per_second(run: Path, crops_per_step: int) -> float:
    """Crops per second from log.jsonl's cumulative training time, steps 2..N (step 1 warms up oneDNN)."""
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    times = {row["step"]: row["time"] for row in rows if "time" in row}
    first, last = min(times), max(times)
    if last == first:
        raise ValueError(f"{run}: need at least 2 logged steps")
    return crops_per_step * (last - first) / (times[last] - times[first])


def run_family(script: str, arguments: list, precision: str, steps: int, out: Path) -> None:
    command = [sys.executable, str(SCRIPTS / f"{script}.py"), *map(str, arguments), "--output-dir", str(out),
               "--max-steps", str(steps), "--log-every", "1", "--sample-every", NEVER, "--checkpoint-every", NEVER,
               "--report-to", "none", "--cpu", "--mixed-precision", precision]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (mnist/, sr/, style/)")
    parser.add_argument("--output", type=Path, required=True, help="folder for the runs and throughput.json/.md")
    parser.add_argument("--steps", type=int, default=3, help="steps per run; the first is left out as warm-up")
    parser.add_argument("--families", nargs="+", default=None, help="default: all")
    args = parser.parse_args(argv)
    commands = family_commands(args.data)
    rows = []
    for family in args.families or list(commands):
        script, crops, arguments = commands[family]
        speed = {}
        for precision in ("no", "bf16"):
            out = args.output / f"{family}-{precision}"
            run_family(script, arguments, precision, args.steps, out)
            speed[precision] = crops_per_second(out, crops)
        rows.append({"family": family, "script": script, "arguments": [str(a) for a in arguments],
                     "fp32": speed["no"], "bf16": speed["bf16"], "bf16_over_fp32": speed["bf16"] / speed["no"]})
        print(json.dumps(rows[-1]), flush=True)
    support = cpu_bf16_support()
    result = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "native_bf16": support.native, "why": support.reason, "steps": args.steps,
              "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "rows": rows}
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    table = ["| family (train script) | fp32 crops/s | bf16 crops/s | bf16 / fp32 |", "| --- | ---: | ---: | ---: |"]
    table += [f"| {r['family']} ({r['script']}) | {r['fp32']:.2f} | {r['bf16']:.2f} | {r['bf16_over_fp32']:.2f}x |"
              for r in rows]
    (args.output / "throughput.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    print(f"native bf16: {support.native} ({support.reason}); torch threads: {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
