"""Compare the kernel estimator with some of its options changed against its defaults, case by case, on
development sets: how the variants in docs/evaluation.md were measured (those that change an option).

    python train_scripts/compare_estimator_options.py --data runs/dev/vs-levin --option final_prune=0.1
    python train_scripts/compare_estimator_options.py --data runs/dev/vs-levin --option lambda_starts=2e-3,4e-3,8e-3

`--option NAME=VALUE` sets a field of `kernel_estimation.Options` (a comma makes a tuple); repeat it to set
several. For every case of each set (`evaluate.deblur_cases`), `--method auto` as `ganzoo deblur` runs it
(`pipelines.deconvolve_or_network` with the default network, whose output is computed once per case), with the
default options and with the changed ones. Printed per set: the mean PSNR gain over the input, the aligned PSNR
(`metrics.aligned_scores`), the kernel similarity (0 where the estimate was not trusted) and how many cases went
to the network. `--part I/N` measures every N-th case from the I-th, so that N processes share the work (merge
their `--json` outputs with `--measured`). Use only development sets (never the evaluation sets). One thread;
about 7 s a case and variant for 255 px grey images on a 2-core CPU, more for larger photos.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

import ganzoo
from ganzoo import evaluate, kernel_estimation, metrics, pipelines, registry
from ganzoo.imaging import quantize


def parse_option(text: str) -> tuple[str, object]:
    """`NAME=VALUE` as (name, value) for `kernel_estimation.Options`: the value read as the field's default is
    (a float, an int, or a tuple of floats from a comma-separated list)."""
    name, sep, value = text.partition("=")
    names = [f.name for f in dataclasses.fields(kernel_estimation.Options)]
    if not sep or name not in names:
        raise ValueError(f"--option wants NAME=VALUE with NAME one of {', '.join(names)}; got {text!r}")
    default = getattr(kernel_estimation.Options(), name)
    if isinstance(default, tuple):
        return name, tuple(float(v) for v in value.split(","))
    return name, type(default)(value)


def measure_case(blurred: torch.Tensor, sharp: torch.Tensor, true_kernel: torch.Tensor | None,
                 networked: torch.Tensor, options: kernel_estimation.Options) -> dict[str, float | bool]:
    """`auto` on one case with these estimator options: gain over the input, aligned PSNR, kernel similarity."""
    estimate = kernel_estimation.estimate_kernel(blurred[0], options=options)
    restored, note = pipelines.deconvolve_or_network(blurred, estimate.kernel, lambda _: networked)
    restored = quantize(restored.clamp(0, 1))
    trusted = estimate.kernel.size > 1
    similarity = 0.0
    if trusted and true_kernel is not None:
        similarity = metrics.kernel_similarity(estimate.kernel, true_kernel)
    return {"gain": metrics.psnr(restored, sharp).item() - metrics.psnr(quantize(blurred), sharp).item(),
            "aligned": metrics.aligned_scores(restored, sharp)["psnr"], "similarity": similarity,
            "network": not trusted or bool(note)}


def measure(data: Path, variants: dict[str, kernel_estimation.Options], part: int, parts: int,
            network: pipelines.TensorFn) -> list[dict]:
    """Per case of `data` (this part of them): the input's aligned PSNR and each variant's `measure_case`."""
    rows = []
    cases = evaluate.deblur_cases(data)[part::parts]
    for name, blurred, sharp, true_kernel in tqdm(cases, desc=data.name):
        networked = network(blurred)
        row = {"set": data.name, "image": name,
               "aligned_input": metrics.aligned_scores(quantize(blurred), sharp)["psnr"]}
        for label, options in variants.items():
            row[label] = measure_case(blurred, sharp, true_kernel, networked, options)
        rows.append(row)
    return rows


def summary(rows: list[dict], labels: list[str]) -> list[str]:
    """Per set and over all: cases, then per variant mean gain, aligned PSNR, similarity, cases to the network."""
    lines = [f"{'set':24s} {'cases':>5s} {'aligned input':>13s}  " + "  ".join(
        f"{label + ': gain / aligned / similarity / to network':>52s}" for label in labels)]
    for name in sorted({r["set"] for r in rows}) + ["all"]:
        group = [r for r in rows if name in ("all", r["set"])]
        cells = []
        for label in labels:
            values = [r[label] for r in group]
            cells.append(f"{np.mean([v['gain'] for v in values]):+.3f} / {np.mean([v['aligned'] for v in values]):.2f}"
                         f" / {np.mean([v['similarity'] for v in values]):.3f} / {sum(v['network'] for v in values)}")
        lines.append(f"{name:24s} {len(group):5d} {np.mean([r['aligned_input'] for r in group]):13.2f}  "
                     + "  ".join(f"{c:>52s}" for c in cells))
    return lines


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, nargs="+", default=[], help="development sets (`make-blur-set` layout)")
    parser.add_argument("--option", action="append", default=[], help="NAME=VALUE of kernel_estimation.Options")
    parser.add_argument("--part", default="0/1", help="I/N: measure every N-th case from the I-th")
    parser.add_argument("--measured", type=Path, nargs="+", default=[], help="--json outputs of earlier runs")
    parser.add_argument("--json", type=Path, help="also write the per-case results here")
    args = parser.parse_args(argv)
    try:
        changed = dict(parse_option(text) for text in args.option)
        part, parts = (int(v) for v in args.part.split("/"))
        variants = {"defaults": kernel_estimation.Options()}
        if changed:
            variants[" ".join(args.option)] = kernel_estimation.Options(**changed)
    except ValueError as error:
        parser.error(str(error))
    if not 0 <= part < parts:
        parser.error(f"--part wants I/N with 0 <= I < N, got {args.part}")
    if not args.data and not args.measured:
        parser.error("give --data sets to measure, or --measured files of earlier runs")
    rows = [row for path in args.measured for row in json.loads(path.read_text())]
    if args.data:
        model = ganzoo.load(registry.DEFAULT_DEBLUR_MODEL)
        network = pipelines.deblurrer(model, device=torch.device("cpu"), precision="fp32")
        for data in args.data:
            rows += measure(data, variants, part, parts, network)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    # the variants every row has (runs merged with --measured may have measured different ones)
    labels = [k for k in (rows[0] if rows else {}) if k not in ("set", "image", "aligned_input")
              and all(k in r for r in rows)]
    print("\n".join(summary(rows, labels)))
    return rows


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
