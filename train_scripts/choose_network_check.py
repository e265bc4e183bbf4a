"""How `ganzoo deblur --method auto`'s network check was chosen: its two thresholds, scored on development sets.

    python train_scripts/choose_network_check.py --data runs/dev/content-moderate runs/dev/t91-moderate \
        runs/dev/moderate runs/dev/large runs/dev/levin runs/eval/deblur-dev-moderate runs/eval/deblur-dev-large \
        runs/eval/deblur-dev-xl --json runs/check.json

For every case of each set (`evaluate.deblur_cases`): the blind estimate as `auto` makes it
(`kernel_estimation.estimate_kernel`, its own checks included), the deconvolution by it, and the default network's
output; then the two measures of `pipelines.network_agreement`. `auto`'s gain over the input is then computed for
each pair of thresholds (`--away`, `--towards`; `inf` turns a condition off) without estimating again, and the grid
printed, per set and over all cases. Use only development sets (never the evaluation sets): the thresholds in
`ganzoo.pipelines` (`AWAY_FROM_NETWORK_DB`, `TOWARDS_NETWORK_DB`) came from this grid over the eight sets named
in docs/evaluation.md (each made by `ganzoo make-blur-set`, so `--kernels` is only for a set in Levin's layout).
One thread; about 2 s a case for 255-500 px images, 20 s for 1024 px ones, on a 2-core CPU.
`--measured rows.json ...` scores the cases of earlier runs again (e.g. sets measured in parallel processes).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

import ganzoo
from ganzoo import evaluate, kernel_estimation, metrics, pipelines, registry
from ganzoo.degrade import load_kernels  # a folder or one .npz/.png file
from ganzoo.imaging import quantize


def measure(data: Path, kernels: str | None, network: pipelines.TensorFn) -> list[dict[str, float | str]]:
    """Per case: the PSNR gains of the deconvolution (None where the estimate was not trusted) and of the network,
    and the two agreement measures."""
    rows = []
    cases = evaluate.deblur_cases(data, load_kernels(kernels) if kernels else None)
    for name, blurred, sharp, _ in tqdm(cases, desc=data.name):
        before = metrics.psnr(quantize(blurred), sharp).item()
        networked = network(blurred)
        row = {"set": data.name, "image": name, "network": metrics.psnr(quantize(networked), sharp).item() - before,
               "deconvolution": None, "away": None, "towards": None}
        estimate = kernel_estimation.estimate_kernel(blurred[0])
        if estimate.kernel.size > 1:
            deconvolved = pipelines.deconvolve_estimated(blurred, estimate.kernel)
            row["deconvolution"] = metrics.psnr(quantize(deconvolved.clamp(0, 1)), sharp).item() - before
            row["away"], row["towards"] = pipelines.network_agreement(blurred, deconvolved, networked)
        rows.append(row)
    return rows


def auto_gain(row: dict, away: float, towards: float) -> float:
    """`auto`'s gain on one measured case under these thresholds (`pipelines.strays_from_network`'s rule)."""
    if row["deconvolution"] is None or pipelines.strays(row["away"], row["towards"], away, towards):
        return row["network"]
    return row["deconvolution"]


def grid(rows: list[dict], aways: list[float], towards: list[float]) -> list[dict]:
    sets = sorted({r["set"] for r in rows})
    results = []
    for a in aways:
        for t in towards:
            per_set = {s: sum(auto_gain(r, a, t) for r in rows if r["set"] == s) / sum(r["set"] == s for r in rows)
                       for s in sets}
            results.append({"away": a, "towards": t, "all": sum(auto_gain(r, a, t) for r in rows) / len(rows),
                            **per_set})
    return results


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, nargs="+", default=[], help="development sets (Lai or Levin layout)")
    parser.add_argument("--measured", type=Path, nargs="+", default=[],
                        help="per-case measures written by earlier runs' --json, scored again without measuring")
    parser.add_argument("--kernels", nargs="+", help="per set: its kernels file (Levin layout) or NONE")
    parser.add_argument("--away", type=float, nargs="+", default=[2, 2.5, 3, 3.5, 4, 5, 6, 8, math.inf])
    parser.add_argument("--towards", type=float, nargs="+", default=[0, 0.25, 0.5, 1, math.inf])
    parser.add_argument("--json", type=Path, help="also write the per-case measures here")
    args = parser.parse_args(argv)
    kernels = args.kernels or ["NONE"] * len(args.data)
    if len(kernels) != len(args.data):
        parser.error("give one --kernels entry (a file or NONE) per --data set")
    if not args.data and not args.measured:
        parser.error("give --data sets to measure, or --measured files of earlier runs")
    rows = [row for path in args.measured for row in json.loads(path.read_text())]
    if args.data:
        model = ganzoo.load(registry.DEFAULT_DEBLUR_MODEL)
        network = pipelines.deblurrer(model, device=torch.device("cpu"), precision="fp32")
        for data, k in zip(args.data, kernels):
            rows += measure(data, None if k == "NONE" else k, network)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    results = grid(rows, args.away, args.towards)
    sets = sorted({r["set"] for r in rows})
    print(f"{len(rows)} cases; mean PSNR gain over the input of the network alone "
          f"{sum(r['network'] for r in rows) / len(rows):+.3f} dB; auto by thresholds:")
    print(f"{'away':>5} {'towards':>7} {'all':>7}  " + "  ".join(f"{s[:14]:>14}" for s in sets))
    for r in results:
        print(f"{r['away']:5.2f} {r['towards']:7.2f} {r['all']:+7.3f}  " + "  ".join(f"{r[s]:+14.3f}" for s in sets))
    return results


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
