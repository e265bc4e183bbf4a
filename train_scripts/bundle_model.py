"""Benchmark a trained run's export and bundle it as `ganzoo/pretrained/<name>` with its model card.

    python train_scripts/bundle_model.py --export runs/srresnet-x4/final --name srresnet-x4 \
        --card super-resolution.md --sr-bench Set5=../shared/data/sr/bench/Set5 --sr-bench Set14=../shared/data/sr/bench/Set14
    python train_scripts/bundle_model.py --export runs/mnist-dcgan/final --name mnist-dcgan \
        --card mnist-dcgan.md --digits-data ../shared/data/mnist --classifier mnist-classifier
    python train_scripts/bundle_model.py --export runs/style-mosaic-bilinear/final --name style-mosaic --card style.md \
        --style-bench "content photos=../shared/data/style/content" --style-max-size 512
    python train_scripts/bundle_model.py --export runs/deblurgan/final --name deblurgan --card deblurgan.md \
        --deblur-bench "Levin=--data ../shared/data/blur/bench/levin --kernels ../shared/data/blur/kernels/levin09_kernels_from_mat.npz"

The card is re-rendered from the run record (`<export>.run.json`, written by the
training loop) plus the benchmark numbers measured here, with the same functions
as `ganzoo evaluate`. The bundled folder holds exactly what `push_to_hub` uploads.
"""

import argparse
import json
import platform
import shlex
import shutil
from pathlib import Path

import torch

import ganzoo
from ganzoo import cli, degrade
from ganzoo.evaluate import evaluate_deblur, evaluate_digits, evaluate_sr, evaluate_style
from ganzoo.hub import save_with_card
from ganzoo.pipelines import deblurrer, sr_upscaler, stylizer
from ganzoo.precision import cpu_flags, cpu_name
from ganzoo.registry import PRETRAINED_DIR
from ganzoo.training import HISTORY_NAME, MODEL_CARDS_DIR

# Card numbers are measured in fp32 on the CPU, and their commands say so: on a CPU with native bf16 (or a GPU),
# `--precision auto` would pick bf16 for gated weights and give slightly different numbers.
CPU = torch.device("cpu")
PINNED = "--device cpu --precision fp32"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", type=Path, required=True, help="a run's export folder, e.g. runs/x/final")
    parser.add_argument("--name", required=True, help="bundled short name, e.g. srresnet-x4")
    parser.add_argument("--card", required=True, help="template file in ganzoo/model_cards/")
    parser.add_argument("--sr-bench", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--deblur-bench", action="append", default=[], metavar="NAME=OPTIONS",
                        help="options of `ganzoo evaluate deblur` (--data ... [--kernels ...|--trajectories N])")
    parser.add_argument("--style-bench", action="append", default=[], metavar="NAME=DIR",
                        help="folder of content photos for a fast style's grid score and structure SSIM")
    parser.add_argument("--style-max-size", type=int, default=None, help="shrink those photos to this longer side")
    parser.add_argument("--style-json", action="append", default=[], metavar="NAME=FILE",
                        help="an `ganzoo evaluate style --json` output already measured (e.g. AdaIN with --style or "
                             "--reconstruct), as one row")
    parser.add_argument("--deblur-json", action="append", default=[], metavar="NAME=FILE[+FILE...]",
                        help="`ganzoo evaluate deblur --json` outputs already measured on one data set (e.g. the "
                             "model's with --no-reference and `--model none`'s for the input and Richardson-Lucy), "
                             "merged into one row")
    parser.add_argument("--digits-data", default=None, help="MNIST folder for the digit scores")
    parser.add_argument("--classifier", default="mnist-classifier")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="extra card fields")
    args = parser.parse_args(argv)

    record = json.loads(Path(f"{args.export}.run.json").read_text())
    model = ganzoo.load(args.export)
    benchmarks = {}
    for item in args.sr_bench:
        name, folder = item.split("=", 1)
        scores = evaluate_sr(sr_upscaler(model, model.scale, device=CPU, precision="fp32"), folder, model.scale)
        benchmarks[name] = {**scores, "command": f"ganzoo evaluate sr --model {args.name} --data {folder} {PINNED} --json"}
        print(name, {k: round(v, 4) for k, v in scores.items() if isinstance(v, float)})
    for item in args.deblur_bench:
        name, options = item.split("=", 1)
        bench = cli.build_parser().parse_args(["evaluate", "deblur", "--model", str(args.export), *shlex.split(options)])
        kernels = degrade.benchmark_kernels(bench.kernels, bench.trajectories, bench.seed)
        scores = evaluate_deblur(deblurrer(model, device=CPU, precision="fp32"), bench.data, kernels)
        benchmarks[name] = {**scores, "command": f"ganzoo evaluate deblur --model {args.name} {options} {PINNED} --json"}
        print(name, {k: round(v, 4) for k, v in scores.items() if isinstance(v, float)})
    for item in args.style_bench:
        name, folder = item.split("=", 1)
        scores = evaluate_style(stylizer(model, device=CPU, precision="fp32"), folder, max_size=args.style_max_size)
        size = f" --max-size {args.style_max_size}" if args.style_max_size else ""
        benchmarks[name] = {**scores, "command": f"ganzoo evaluate style --model {args.name} --data {folder}{size} {PINNED} --json"}
        print(name, {k: round(v, 4) for k, v in scores.items() if isinstance(v, float)})
    for item in args.style_json:
        name, file = item.split("=", 1)
        benchmarks[name] = style_row(json.loads(Path(file).read_text()), args.name)
        print(name, {k: round(v, 4) for k, v in benchmarks[name].items() if isinstance(v, float)})
    for item in args.deblur_json:
        name, files = item.split("=", 1)
        benchmarks[name] = merged_deblur_results([json.loads(Path(f).read_text()) for f in files.split("+")],
                                                 args.name)
        print(name, {k: round(v, 4) for k, v in benchmarks[name].items() if isinstance(v, float)})
    if args.digits_data:
        scores = evaluate_digits(model, ganzoo.load(args.classifier), args.digits_data)
        record["metrics"] = scores
        print({k: v for k, v in scores.items() if isinstance(v, float)})
    history_file = args.export / HISTORY_NAME
    if history_file.is_file():  # the export's own record of its runs (earlier runs may be added by hand)
        history = json.loads(history_file.read_text())
        record.update(history=history, total_steps=sum(h["steps"] for h in history),
                      total_hours=round(sum(h["hours"] for h in history), 2))
    record.update({k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)})
    record["model_name"] = args.name
    # where rows come from earlier `--json` files, --set eval_hardware says what measured them
    record.setdefault("eval_hardware", cpu_description())
    out = PRETRAINED_DIR / args.name
    shutil.rmtree(out, ignore_errors=True)
    save_with_card(model, out, MODEL_CARDS_DIR / args.card, benchmarks=benchmarks, **record)
    for picture in sorted(args.export.glob("*.jpg")):  # e.g. a fast style's style.jpg, shown by its card
        shutil.copy2(picture, out / picture.name)
    if history_file.is_file():  # so a later --init-from run continues the step and hour totals
        shutil.copy2(history_file, out / HISTORY_NAME)
    print(f"bundled {out}: {sorted(p.name for p in out.iterdir())}")


def cpu_description() -> str:
    """This CPU as a card names it: model, the vector units that decide the default path, threads."""
    flags = cpu_flags()
    units = "native bf16 (avx512_bf16)" if "avx512_bf16" in flags else (
        "AVX-512, no native bf16" if "avx512f" in flags else ("AVX2, no native bf16" if "avx2" in flags else ""))
    return f"CPU ({cpu_name()}, {platform.machine()}{', ' + units if units else ''}, {torch.get_num_threads()} threads)"


def style_row(result: dict, name: str) -> dict:
    """One card row from an `evaluate style --json` output, with the command that measures it for `name`."""
    options = [f"--data {result['data']}"]
    options += [f"--style {result['style']}"] if result.get("style") else []
    options += ["--reconstruct"] if result["reconstruct"] else []
    options += [f"--alpha {result['alpha']}"] if result["alpha"] != 1.0 else []
    options += [f"--max-size {result['max_size']}"] if result["max_size"] else []
    return {**{k: v for k, v in result.items() if k != "images"},
            "command": f"ganzoo evaluate style --model {name} {' '.join(options)}{precision_option(result)} --json"}


def merged_deblur_results(results: list[dict], name: str) -> dict:
    """One benchmark row from several `evaluate deblur --json` runs on the same data (same input scores)."""
    if len({(r["data"], r["n"], round(r["psnr_input"], 6)) for r in results}) != 1:
        raise SystemExit("--deblur-json files must measure the same data (data, n and input PSNR differ)")
    merged = {k: v for r in results for k, v in r.items() if k not in ("images", "model")}
    kernels = results[0]["kernels"]
    option = f" --kernels {kernels}" if isinstance(kernels, str) else (f" --trajectories {kernels}" if kernels else "")
    # a non-blind row (a denoiser's card: the prior of --deconvolution pnp) is measured by its method, not --model
    method = results[0].get("method", "network")
    how = (f"--method {method} --deconvolution {results[0]['deconvolution']}" if method == "true-kernel"
           else f"--method {method} --refiner {name}" if results[0].get("refiner")
           else f"--model {name}")
    return {**merged, "command": f"ganzoo evaluate deblur {how} --data {merged['data']}{option}"
                                 f"{precision_option(results[0])} --json"}


def precision_option(result: dict) -> str:
    """The device and `--precision` an `evaluate --json` output was measured at (bundled numbers are measured on
    the CPU), pinned so that the command reproduces them on any host."""
    return " --device cpu" + (f" --precision {result['precision']}" if result.get("precision") else "")


if __name__ == "__main__":
    main()
