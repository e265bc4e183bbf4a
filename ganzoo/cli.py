"""`ganzoo ...`: command-line access to the zoo, thin over pipelines, evaluate and the registry.

Each subcommand is one function registered with `@command(name, help, *arguments)`;
it returns the exit code. Errors a user can cause end as one `error: ...` line
and exit code 2.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

import ganzoo
from ganzoo import deconvolution, degrade, evaluate, imaging, kernel_estimation, pipelines, registry
from ganzoo.models import DEBLURRING_MODELS, AdaINStyleTransfer, DigitClassifier, DigitGenerator, TransformerNet
from ganzoo.pipelines import BICUBIC
from ganzoo.precision import PRECISIONS

# ImageError, ModelLoadError and validation errors are ValueErrors; missing input files are OSErrors.
USER_ERRORS = (ValueError, OSError, torch.OutOfMemoryError)
GROUPS = {"evaluate": "measure a model on a benchmark data set"}

Argument = tuple[tuple[str, ...], dict[str, Any]]
Handler = Callable[[argparse.Namespace], int]
_COMMANDS: list[tuple[str, str, tuple[Argument, ...], Handler]] = []


def arg(*flags: str, **options: Any) -> Argument:
    """One `add_argument` call, kept for `command`."""
    return flags, options


def command(name: str, summary: str, *arguments: Argument) -> Callable[[Handler], Handler]:
    """Register a subcommand; a name with a space ("evaluate sr") goes under the group named first."""
    def register(handler: Handler) -> Handler:
        _COMMANDS.append((name, summary, arguments, handler))
        return handler
    return register


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


INPUTS = arg("inputs", nargs="+", metavar="IN", help="image files or folders of images")
OUTPUT_DIR = arg("-o", "--output", type=Path, required=True, help="output folder (created if missing)")
DEVICE = arg("--device", help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
JSON = arg("--json", action="store_true", help="print one JSON object instead of a table")
PRECISION = arg("--precision", choices=PRECISIONS, default="auto",
                help="number format on the CPU: auto (bf16 where the CPU has it natively and the model passed the "
                     "bf16 quality gate, else fp32; the default), fp32 or bf16")
def tile_size(text: str) -> int:
    """A --tile value: a whole number larger than twice the overlap of neighbouring tiles."""
    tile = positive_int(text)
    try:
        imaging.check_tile(tile, pipelines.TILE_OVERLAP, "--tile")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return tile


TILE = arg("--tile", type=tile_size, help=f"process large images in tiles of this many pixels "
           f"(more than {2 * pipelines.TILE_OVERLAP}; saves memory, same result)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganzoo", description="A small zoo of image GANs.")
    parser.add_argument("--version", action="version", version=f"ganzoo {ganzoo.__version__}")
    groups = {"": parser.add_subparsers(dest="command", required=True, metavar="COMMAND")}
    for name, help_text, arguments, handler in _COMMANDS:
        group, _, leaf = name.rpartition(" ")
        if group not in groups:
            group_parser = groups[""].add_parser(group, help=GROUPS[group], description=GROUPS[group])
            groups[group] = group_parser.add_subparsers(dest="subcommand", required=True, metavar="WHAT")
        sub = groups[group].add_parser(leaf, help=help_text, description=help_text)
        for flags, options in arguments:
            sub.add_argument(*flags, **options)
        sub.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [list(map(str, header))] + [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row]
                                        for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def print_per_image(result: dict[str, Any], keys: list[str]) -> None:
    """A benchmark result as a table: one row per image, then the means."""
    rows = [[row["image"], *(row[k] for k in keys)] for row in result["images"]]
    print_table(["image", *keys], [*rows, [f"mean ({result['n']})", *(result[k] for k in keys)]])


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


# -- commands -----------------------------------------------------------------------------------------

@command("models", "list the models ganzoo knows by name", JSON)
def models(args: argparse.Namespace) -> int:
    entries = registry.list_models()
    if args.json:
        print_json([{"name": e.name, "task": e.task, "repo_id": e.repo_id, "bundled": e.is_bundled,
                     "description": e.description} for e in entries])
    else:
        print_table(["name", "task", "source", "description"],
                    [[e.name, e.task, "bundled" if e.is_bundled else e.repo_id, e.description] for e in entries])
    return 0


@command("sample", "draw a grid of generated digits (the same seed gives the same PNG)",
         arg("-o", "--output", type=Path, required=True, help="image file to write, e.g. grid.png"),
         arg("--model", default="mnist-dcgan", help="digit generator: name, folder or Hub repo id"),
         arg("--n", type=positive_int, default=64, help="how many digits"),
         arg("--seed", type=int, default=0),
         arg("--digit", type=int, help="only this digit (0-9); default: 0-9 in turn"),
         arg("--nrow", type=positive_int, default=8, help="digits per row"),
         DEVICE)
def sample(args: argparse.Namespace) -> int:
    device = pipelines.pick_device(args.device)
    generator = ganzoo.load(args.model, device=str(device), expected=DigitGenerator)
    grid = pipelines.sample_digits_grid(generator, n=args.n, seed=args.seed, digit=args.digit, nrow=args.nrow)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.output)
    return 0


@command("upscale", "upscale images (files or folders) into an output folder as PNG",
         INPUTS, OUTPUT_DIR,
         arg("--model", default=registry.DEFAULT_SR_MODEL, help=f"{BICUBIC}, a model name, folder or Hub repo id "
             f"(default: {registry.DEFAULT_SR_MODEL})"),
         arg("--scale", type=positive_int, default=4, help="factor for bicubic (a model uses its own)"),
         TILE, DEVICE, PRECISION)
def upscale(args: argparse.Namespace) -> int:
    files = input_files(args.inputs)
    device = pipelines.pick_device(args.device)
    model = pipelines.load_sr_model(args.model, device)
    return for_each_file(files, args.output, "upscale", lambda path: pipelines.upscale(
        path, model, scale=args.scale, tile=args.tile, device=device, precision=args.precision))


def unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {value}")
    return value


@command("stylize", "repaint images (files or folders) in a style, into an output folder as PNG",
         INPUTS, OUTPUT_DIR,
         arg("--style", required=True, metavar="NAME_OR_IMAGE",
             help="a bundled style (" + ", ".join(e.name.removeprefix("style-")
                                                  for e in registry.list_models("fast-style"))
             + "), a fast-style model folder or Hub repo id, or any style image file (uses AdaIN)"),
         arg("--alpha", type=unit_interval, default=1.0, help="style strength from 0 (the photo) to 1 (default)"),
         arg("--preserve-color", action="store_true", help="keep the photo's colours, transfer only luminance"),
         arg("--adain-model", default="adain", help="AdaIN model for a style image (default: adain)"),
         TILE, DEVICE, PRECISION)
def stylize(args: argparse.Namespace) -> int:
    files = input_files(args.inputs)
    device = pipelines.pick_device(args.device)
    if Path(args.style).is_file():
        style_image = pipelines.load_style_image(args.style)  # read once; a bad style file fails the whole run
        model = ganzoo.load(args.adain_model, device=str(device), expected=AdaINStyleTransfer)
    else:
        style_image = None
        model = ganzoo.load(registry.fast_style_name(args.style) or args.style, device=str(device),
                            expected=TransformerNet)
    return for_each_file(files, args.output, "stylize", lambda path: pipelines.stylize(
        path, model, style=style_image, alpha=args.alpha, preserve_color=args.preserve_color, tile=args.tile,
        device=device, precision=args.precision))


def input_files(inputs: list[str]) -> list[Path]:
    """The image files named or contained in `inputs` (an error if there are none)."""
    files = pipelines.expand_inputs(inputs)
    if not files:
        raise ValueError(f"no images in {', '.join(inputs)} ({', '.join(sorted(pipelines.IMAGE_SUFFIXES))})")
    return files


def for_each_file(files: list[Path], output: Path, desc: str, process: Callable[[Path], Any]) -> int:
    """Write `process(path)` (a PIL image) for every file to `output/<stem>.png`, with a progress bar.

    A failing file is reported and skipped, so one bad image never loses the others; exit code 1 if any failed.
    """
    output.mkdir(parents=True, exist_ok=True)
    written: dict[Path, Path] = {}
    failed = 0
    for path in tqdm(files, desc=desc, unit="image"):
        try:
            target = output_path(path, output, written)
            process(path).save(target)
            written[target] = path
        except USER_ERRORS as err:
            failed += 1
            message = str(err)
            # imaging's errors already start with the file name
            tqdm.write(f"error: {message if message.startswith(str(path)) else f'{path}: {message}'}",
                       file=sys.stderr)
    return 1 if failed else 0


def output_path(path: Path, folder: Path, written: dict[Path, Path]) -> Path:
    """`folder/<stem>.png`, refusing to overwrite the input or another input's result."""
    target = folder / f"{path.stem}.png"
    if target in written:
        raise ValueError(f"output {target} was already written for {written[target]}")
    if target.exists() and path.exists() and target.samefile(path):
        raise ValueError(f"output {target} would overwrite the input")
    return target


@command("evaluate sr", "PSNR/SSIM (Y and RGB) on a folder of HR images, with the standard bicubic degradation",
         arg("--model", default=registry.DEFAULT_SR_MODEL, help=f"{BICUBIC}, a model name, folder or Hub repo id"),
         arg("--data", type=Path, required=True, help="folder of high-resolution images (e.g. Set5), or a 🤗 dataset: Hub id or "
             "`save_to_disk` folder"),
         arg("--scale", type=positive_int, help="upscaling factor (default: the model's; 4 for bicubic)"),
         TILE, JSON, DEVICE, PRECISION)
def evaluate_sr(args: argparse.Namespace) -> int:
    device = pipelines.pick_device(args.device)
    model = pipelines.load_sr_model(args.model, device)
    scale = pipelines.sr_output_scale(model, args.scale)
    upscaler = pipelines.sr_upscaler(model, scale, tile=args.tile, device=device, precision=args.precision)
    precision = pipelines.model_precision(model, device, args.precision)
    result = evaluate.evaluate_sr(upscaler, args.data, scale)
    if args.json:
        print_json({**result, "model": args.model, "data": str(args.data), "scale": scale, "precision": precision})
        return 0
    print_per_image(result, ["psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "grid", "detail"])
    return 0


@command("evaluate style", "grid-artefact score of stylised photos and their content-structure SSIM to the photos",
         arg("--model", required=True, help="a bundled style, fast-style or AdaIN model folder or Hub repo id"),
         arg("--data", type=Path, required=True, help="folder of content photos"),
         arg("--style", type=Path, help="style image (AdaIN models only)"),
         arg("--alpha", type=unit_interval, default=1.0, help="style strength from 0 to 1 (default 1)"),
         arg("--reconstruct", action="store_true",
             help="AdaIN only: decode the photo's own features (what alpha=0 would return without its exact "
                  "shortcut to the photo); measures how much structure the decoder keeps"),
         arg("--max-size", type=positive_int, help="shrink photos to this longer side first (quick checks)"),
         JSON, DEVICE, PRECISION)
def evaluate_style(args: argparse.Namespace) -> int:
    device = pipelines.pick_device(args.device)
    model = ganzoo.load(registry.fast_style_name(args.model) or args.model, device=str(device),
                        expected=(TransformerNet, AdaINStyleTransfer))
    fn, precision = pipelines.style_function(model, args.style, args.alpha, args.reconstruct, device, args.precision)
    result = evaluate.evaluate_style(fn, args.data, max_size=args.max_size)
    if args.json:
        print_json({**result, "model": args.model, "data": str(args.data), "alpha": args.alpha,
                    "style": str(args.style) if args.style else None,
                    "reconstruct": args.reconstruct, "max_size": args.max_size, "precision": precision})
        return 0
    print_per_image(result, ["grid", "grid_input", "structure_ssim"])
    return 0


@command("evaluate digits", "digit FID and class accuracy of a generator against MNIST test",
         arg("--model", default="mnist-dcgan", help="digit generator: name, folder or Hub repo id"),
         arg("--data", type=Path, required=True, help="folder with the four MNIST IDX files"),
         arg("--classifier", default="mnist-classifier", help="the classifier that scores the digits"),
         arg("--samples-per-class", type=positive_int, default=1000),
         arg("--seed", type=int, default=0),
         JSON, DEVICE)
def evaluate_digits(args: argparse.Namespace) -> int:
    device = pipelines.pick_device(args.device)
    generator = ganzoo.load(args.model, device=str(device), expected=DigitGenerator)
    classifier = ganzoo.load(args.classifier, device=str(device), expected=DigitClassifier)
    result = evaluate.evaluate_digits(generator, classifier, args.data, args.samples_per_class, args.seed)
    if args.json:
        print_json({**result, "model": args.model, "classifier": args.classifier, "data": str(args.data)})
        return 0
    per_class = result.pop("class_accuracy_per_class")
    print_table(["metric", "value"], [[key, value] for key, value in result.items()])
    print_table(["class", "accuracy"], list(enumerate(per_class)))
    return 0


def noise_level(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1 (noise std on the [0, 1] scale), got {value}")
    return value


@command("deblur", "remove motion blur from images (files or folders) into an output folder as PNG",
         INPUTS, OUTPUT_DIR,
         arg("--model", help=f"deblurring model: name, folder or Hub repo id (default: "
             f"{registry.DEFAULT_DEBLUR_MODEL})"),
         arg("--kernel", type=Path, metavar="FILE",
             help="the blur kernel, if you know it (a PNG image, .npy or .npz file): deconvolve with it and an "
                  "image prior (--deconvolution) instead of running a model"),
         arg("--noise-sigma", type=noise_level, metavar="S",
             help="with --kernel or an estimate method: the noise std on [0, 1] (default: estimated from each image)"),
         arg("--deconvolution", choices=deconvolution.METHODS,
             help=f"with --kernel: the image prior: pnp, a learned denoiser ({registry.DEFAULT_DENOISER}) in "
                  "plug-and-play HQS (DPIR), or hqs, sparse gradients (Krishnan & Fergus 2009), about 10x faster "
                  f"(default: {pipelines.DEFAULT_DECONVOLUTION})"),
         arg("--method", choices=pipelines.DEBLUR_METHODS,
             help="auto: estimate the blur kernel and deconvolve it, or where the estimate is not trusted (a flat "
                  "image, a diffuse kernel) or its deconvolution strays from the model's output the model (--model) "
                  "instead; network: the model alone; estimate: the "
                  "kernel estimated and deconvolved; estimate+network: that, then the model as refiner (default: "
                  f"{pipelines.DEFAULT_DEBLUR_METHOD}, or network when only --model is given)"),
         arg("--refiner", help="with auto or estimate: a network run on each deconvolution (name, folder or Hub "
             "repo id), e.g. one trained by train_scripts/train_deblur_refiner.sh (default: none)"),
         arg("--kernel-size", type=int, metavar="PX",
             help="with an estimate method: the kernel's size, odd, 3-75 px (default: chosen per image)"),
         arg("--save-kernel", action="store_true",
             help="with an estimate method: also write each estimated kernel as OUTPUT/<name>_kernel.png"),
         TILE, DEVICE, PRECISION)
def deblur(args: argparse.Namespace) -> int:
    files = input_files(args.inputs)
    method = args.method or ("network" if args.model is not None else pipelines.DEFAULT_DEBLUR_METHOD)
    if args.kernel is not None:
        if args.model is not None or args.method is not None:
            raise ValueError("give --kernel or --model/--method, not both (--kernel deconvolves a known blur)")
        kernel = deconvolution.load_kernel(args.kernel)  # read once: a bad kernel file stops the run
        prior = args.deconvolution or pipelines.DEFAULT_DECONVOLUTION
        denoiser = pipelines.pnp_denoiser() if prior == "pnp" else None
        return for_each_file(files, args.output, "deblur", lambda path: pipelines.deblur_with_kernel(
            path, kernel, args.noise_sigma, prior, denoiser=denoiser))
    if args.deconvolution is not None:
        raise ValueError("--deconvolution applies to --kernel (deconvolution with a known kernel)")
    if method == "network" and (args.noise_sigma is not None or args.kernel_size is not None or args.save_kernel):
        raise ValueError("--noise-sigma, --kernel-size and --save-kernel apply to --kernel or an estimate method")
    if args.refiner is not None and method not in ("auto", "estimate"):
        raise ValueError("--refiner applies to --method auto and estimate")
    if args.kernel_size is not None:
        kernel_estimation.check_kernel_size(args.kernel_size)
    device = pipelines.pick_device(args.device)
    model = None if method == "estimate" else ganzoo.load(args.model or registry.DEFAULT_DEBLUR_MODEL,
                                                          device=str(device), expected=DEBLURRING_MODELS)
    if method == "network":
        return for_each_file(files, args.output, "deblur", lambda path: pipelines.deblur(
            path, model, tile=args.tile, device=device, precision=args.precision))
    refiner = model if method == "estimate+network" else load_refiner(args.refiner, device)
    fallback = model if method == "auto" else None
    return for_each_file(files, args.output, "deblur",
                         lambda path: deblur_blind_file(path, refiner, fallback, args, device))


def load_refiner(name: str | None, device: torch.device) -> torch.nn.Module | None:
    """`--refiner`: the network run on each deconvolution by an estimated kernel (a model name, folder or Hub id)."""
    return None if name is None else ganzoo.load(name, device=str(device), expected=DEBLURRING_MODELS)


def deblur_blind_file(path: Path, refiner: torch.nn.Module | None, fallback: torch.nn.Module | None,
                      args: argparse.Namespace, device: torch.device) -> Any:
    """One image through `pipelines.deblur_blind`; the kernel written beside it with --save-kernel, and any
    fallback (a flat image, a diffuse estimate) said on stderr."""
    image, estimate = pipelines.deblur_blind(path, refiner, args.kernel_size, args.noise_sigma, tile=args.tile,
                                             device=device, precision=args.precision, fallback=fallback)
    if estimate.note:
        tqdm.write(f"note: {path}: {estimate.note}", file=sys.stderr)
    if args.save_kernel:
        kernel_estimation.kernel_image(estimate.kernel).save(args.output / f"{path.stem}_kernel.png")
    return image


@command("evaluate deblur", "PSNR/SSIM of a deblurring method and of its blurred input on blurred/sharp pairs "
         "(GoPro, Levin or Lai et al. 2016 layout) or on sharp images blurred with given kernels, unaligned and "
         "aligned (SelfDeblur's protocol)",
         arg("--method", choices=(*evaluate.DEBLUR_METHODS, "auto", "estimate", "estimate+network"), default="network",
             help="network: a deblurring model (--model; the default); true-kernel: deconvolution with the true "
                  "kernel and an image prior (--deconvolution; needs the kernels); estimate: the kernel estimated blind, "
                  "then that deconvolution (with true kernels: kernel similarity and error ratio too); "
                  "estimate+network: that, refined by the model (--model); auto: the estimate, or the model where "
                  "the estimate is not trusted or its deconvolution strays from the model's output (kernel scores "
                  "count the identity kernel where the estimate is not trusted, the estimate where it strays)"),
         arg("--refiner", help="with auto or estimate: a network run on each deconvolution (name, folder or Hub "
             "repo id; default: none)"),
         arg("--kernel-size", type=int, metavar="PX",
             help="with an estimate method: the kernel's size, odd, 3-75 px (default: chosen per image)"),
         arg("--deconvolution", choices=deconvolution.METHODS,
             help="with --method true-kernel: the image prior, pnp (the learned "
                  f"{registry.DEFAULT_DENOISER} in plug-and-play HQS) or hqs (sparse gradients) (default: "
                  f"{pipelines.DEFAULT_DECONVOLUTION}, as `ganzoo deblur --kernel`)"),
         arg("--model", help="with --method network: name, folder or Hub repo id; 'none' scores the input only "
             f"(default: {registry.DEFAULT_DEBLUR_MODEL})"),
         arg("--data", type=Path, required=True,
             help="folder with sharp/ and blur*/ subfolders (and kernels/ in the Lai layout), or a folder of sharp "
                  "images (then give kernels); or a 🤗 dataset (Hub id or `save_to_disk` folder) with blur*/sharp "
                  "image columns, or sharp images only"),
         arg("--kernels", type=Path, help="kernel file (.npz/.png) or folder: blurs sharp images with each; for "
             "pairs named *_ker_N, kernel N is the true one for the Richardson-Lucy reference"),
         arg("--trajectories", type=positive_int, metavar="N",
             help="blur sharp images with N random camera-shake kernels drawn from --seed instead"),
         arg("--seed", type=int, default=0),
         arg("--no-reference", dest="reference", action="store_false",
             help="skip the Richardson-Lucy reference (needs the true kernels)"),
         arg("--no-aligned", dest="aligned", action="store_false",
             help="skip the aligned scores (about a second per image each)"),
         TILE, JSON, DEVICE, PRECISION)
def evaluate_deblur(args: argparse.Namespace) -> int:
    device = pipelines.pick_device(args.device)
    kernels = degrade.benchmark_kernels(args.kernels, args.trajectories, args.seed)
    fn, with_kernel, precision, model_name = None, None, None, args.model
    estimator = None
    if args.kernel_size is not None:
        if not args.method.startswith("estimate"):
            raise ValueError("--kernel-size applies to the estimate methods")
        kernel_estimation.check_kernel_size(args.kernel_size)
    if args.deconvolution is not None and args.method != "true-kernel":
        raise ValueError("--deconvolution applies to --method true-kernel")
    if args.refiner is not None and args.method not in ("auto", "estimate"):
        raise ValueError("--refiner applies to --method auto and estimate")
    if args.method in ("true-kernel", "estimate"):
        if args.model is not None:
            raise ValueError(f"--method {args.method} deconvolves without a network; it takes no --model"
                             + (" (see --refiner)" if args.method == "estimate" else ""))
        with_kernel = deconvolution.deconvolve_batch
        if args.method == "true-kernel":
            args.deconvolution = args.deconvolution or pipelines.DEFAULT_DECONVOLUTION
            if args.deconvolution == "pnp":
                with_kernel = functools.partial(deconvolution.deconvolve_batch, method="pnp",
                                                denoiser=pipelines.pnp_denoiser())
        precision = "fp32"  # the deconvolution's FFTs
    else:
        model_name = args.model or registry.DEFAULT_DEBLUR_MODEL
    if args.method in ("estimate", "auto"):
        estimator = lambda blurred: torch.from_numpy(  # noqa: E731
            kernel_estimation.estimate_kernel(blurred, args.kernel_size).kernel).float()
        with_kernel = pipelines.deconvolve_estimated
    refine = None
    if args.refiner is not None:
        refiner = load_refiner(args.refiner, device)
        refine = pipelines.deblurrer(refiner, tile=args.tile, device=device, precision=args.precision)
        precision = pipelines.model_precision(refiner, device, args.precision)
        # auto (below) passes it to pipelines.deconvolve_or_network
        with_kernel = functools.partial(pipelines.deconvolve_and_refine, refine=refine)
    if model_name not in (None, "none"):
        model = ganzoo.load(model_name, device=str(device), expected=DEBLURRING_MODELS)
        fn = pipelines.deblurrer(model, tile=args.tile, device=device, precision=args.precision)
        if args.method == "estimate+network":
            fn = pipelines.blind_deblurrer(model, args.kernel_size, tile=args.tile, device=device,
                                           precision=args.precision)
        if args.method == "auto":  # the network where the estimate is not trusted or its deconvolution strays
            network, fn = fn, None
            with_kernel = lambda blurred, kernel: pipelines.deconvolve_or_network(  # noqa: E731
                blurred, kernel, network, refine)[0]
        precision = pipelines.model_precision(model, device, args.precision)
    # auto's error ratio scores the kernel: both images deconvolved (the network's check, which may replace one,
    # left out)
    kernel_deconvolution = pipelines.deconvolve_estimated if args.method == "auto" else None
    result = evaluate.evaluate_deblur(fn, args.data, kernels, reference=args.reference, with_kernel=with_kernel,
                                      estimate_kernel=estimator, aligned=args.aligned,
                                      kernel_deconvolution=kernel_deconvolution)
    if args.json:
        prior = {"deconvolution": args.deconvolution} if args.method == "true-kernel" else {}
        refiner_field = {"refiner": args.refiner} if args.refiner else {}
        print_json({**result, "method": args.method, **prior, "model": model_name, **refiner_field,
                    "data": str(args.data),
                    "kernels": str(args.kernels) if args.kernels else args.trajectories, "precision": precision})
        return 0
    print_per_image(result, [k for k in result if k not in ("n", "images", "protocol")])
    for kind, text in result["protocol"].items():
        print(f"{kind}: {text}")
    return 0


@command("make-blur-set", "write a seeded deblurring benchmark in the Lai et al. 2016 layout (sharp/, blurred/, "
         "kernels/): every image blurred by every random camera-shake kernel, plus noise",
         arg("--images", type=Path, required=True, help="folder of sharp images"),
         arg("--first", type=positive_int, help="only the first N images in name order"),
         arg("-o", "--output", type=Path, required=True, help="folder to create (must be new or empty)"),
         arg("--kernels", type=positive_int, default=8, help="how many kernels (default: 8)"),
         arg("--lengths", type=float, nargs=2, metavar=("LOW", "HIGH"), help="camera path lengths in px"),
         arg("--sizes", type=int, nargs=2, metavar=("LOW", "HIGH"), help="kernel sizes in px (odd sizes between)"),
         arg("--noise", type=float, default=0.01, help="Gaussian noise std on [0, 1] (default: 0.01)"),
         arg("--speed-variation", type=float, default=0.0, metavar="S",
             help="std of the camera's log-speed along its path: 0 (default) moves at constant speed; about 1 "
                  "gives the bright knots and faint strokes of recorded camera shake"),
         arg("--seed", type=int, default=0))
def make_blur_set(args: argparse.Namespace) -> int:
    from ganzoo import blur_sets

    if args.noise < 0:
        raise ValueError(f"--noise must be at least 0, got {args.noise}")
    if args.speed_variation < 0:
        raise ValueError(f"--speed-variation must be at least 0, got {args.speed_variation}")
    images = evaluate.list_images(args.images)[:args.first]
    kernels = blur_sets.set_kernels(args.kernels, args.seed, lengths=args.lengths, sizes=args.sizes,
                                    speed_variation=args.speed_variation)
    output = blur_sets.make_blur_set(images, args.output, kernels, args.seed, args.noise)
    blur_sets.write_manifest(output, {k: v for k, v in vars(args).items() if k not in ("command", "handler")})
    print(f"{output}: {len(images)} images x {len(kernels)} kernels "
          f"({', '.join(str(k.shape[-1]) for k in kernels)} px)")
    return 0


def thread_list(text: str) -> list[int] | str | None:
    if text in ("auto", "none"):
        return None if text == "none" else text
    try:
        return [positive_int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, none or thread counts like 1,4; got {text!r}") from None


@command("benchmark", "time every inference path (eager, channels-last, exact rewrites, compile, ONNX Runtime, "
         "autocast, CUDA graphs) against the fp32 NCHW baseline",
         arg("--model", default="srresnet-x4", help="image-to-image model (super-resolution, deblurring, fast style): "
             "name, folder or Hub repo id (default: srresnet-x4)"),
         arg("--size", type=positive_int, default=256, help="input height and width in pixels (default: 256)"),
         arg("--batch", type=positive_int, default=1, help="images per call (default: 1)"),
         arg("--repeats", type=positive_int, default=10, help="timed calls per path (default: 10)"),
         arg("--warmup", type=int, default=2, help="untimed calls per path first (default: 2)"),
         arg("--threads", type=positive_int, help="CPU threads for torch and ONNX Runtime (default: torch's)"),
         arg("--thread-sweep", type=thread_list, default="auto", metavar="LIST",
             help="CPU only: extra channels-last paths at these thread counts, e.g. 1,8; "
                  "auto (1 and all CPUs, the default) or none"),
         arg("--no-compile", dest="compile", action="store_false", help="skip the torch.compile paths"),
         arg("--no-onnx", dest="onnx", action="store_false", help="skip the ONNX Runtime path"),
         arg("--tiled", type=positive_int, metavar="TILE",
             help="also time the default path untiled and in tiles of TILE pixels on a large input"),
         arg("--tiled-size", type=positive_int, metavar="PIXELS",
             help="input size for --tiled (default: the larger of --size and 2 x TILE)"),
         arg("--calibration-data", type=Path, metavar="DIR",
             help="training images (searched recursively) to calibrate the int8 path on; never benchmark images"),
         arg("--reference-data", type=Path, metavar="DIR",
             help="also score each path on this set: HR images (super-resolution, Y-PSNR) or blurred/sharp "
                  "pairs (deblurring, PSNR), reported as the difference from the baseline"),
         arg("--only", metavar="REGEX", help="time only the paths whose name matches REGEX (and the baseline), "
             "e.g. 'default' for the pipeline paths"),
         JSON, DEVICE)
def benchmark_command(args: argparse.Namespace) -> int:
    from ganzoo import benchmark

    if args.warmup < 0:
        raise ValueError(f"--warmup must be at least 0, got {args.warmup}")
    device = pipelines.pick_device(args.device)
    if args.model == BICUBIC:
        raise ValueError("benchmark needs a model, not bicubic")
    model = pipelines.load_image_model(args.model, device)
    result = benchmark.run_benchmark(model, benchmark.BenchmarkSettings(
        size=args.size, batch=args.batch, repeats=args.repeats, warmup=args.warmup, threads=args.threads,
        device=device, compile=args.compile, onnx=args.onnx, thread_sweep=args.thread_sweep, tiled=args.tiled,
        tiled_size=args.tiled_size, model_name=args.model, calibration_data=args.calibration_data,
        reference_data=args.reference_data, only=args.only))
    if args.json:
        print_json(result)
        return 0
    print(f"{result['model']}: {result['batch']}x3x{result['size']}x{result['size']} on {result['device']} "
          f"({result['device_name']}), {result['threads']} threads, torch {result['torch_version']}, "
          f"{result['flops'] / 1e9:.3g} GFLOP per call")
    print_table(*benchmark.table_rows(result))
    print(f"fastest path within {result['tolerance']:g} of the baseline: {result['fastest_matching']}")
    print(f"fastest path within its own tolerance: {result['fastest_matching_any_precision']}")
    for label, row in result["default"].items():
        extra = "".join(f", {name} {fmt.format(row[key])}" for key, name, fmt in (
            ("mfu", "MFU", "{:.1%}"), ("psnr_delta_db", "PSNR difference", "{:+.4f} dB")) if key in row)
        print(f"default path (--precision {label}): {row['precision']}, {row['ratio']:.2f}x the naive fp32 "
              f"baseline{extra}; first calls {', '.join(f'{ms:.0f}' for ms in row['first_calls_ms'])} ms")
    if "cpu_bf16" in result:
        print(f"CPU bf16: {result['cpu_bf16']['reason']}; --precision auto runs "
              f"{result['cpu_bf16']['auto_precision']}")
    return 0


@command("export-onnx", "export a model to ONNX (dynamic batch, height and width) for ONNX Runtime",
         arg("--model", default="srresnet-x4", help="model name, folder or Hub repo id (default: srresnet-x4)"),
         arg("-o", "--output", type=Path, required=True, help="file to write, e.g. model.onnx"),
         arg("--opset", type=positive_int, help="ONNX opset (default: 17)"))
def export_onnx_command(args: argparse.Namespace) -> int:
    from ganzoo import export

    if args.model == BICUBIC:
        raise ValueError("bicubic is not a model to export")
    model = pipelines.load_image_model(args.model)
    path = export.export_onnx(model, args.output, opset=args.opset or export.DEFAULT_OPSET)
    print(path)
    return 0


@command("publish", "upload every bundled model to NS/<name> with its measured card, and the built Space "
         "(`make space`) to the Space NS/<space-name>; the token comes from HF_TOKEN or `hf auth login`",
         arg("--namespace", required=True, help="Hub user or organisation to publish under"),
         arg("--space-dir", type=Path, default=Path("build/space"), help="the Space folder (default: build/space)"),
         arg("--space-name", default="ganzoo", help="name of the Space repo (default: ganzoo)"),
         arg("--no-space", action="store_true", help="publish the models only"),
         arg("--dry-run", action="store_true", help="list every repo, its files and card metadata; upload nothing"),
         JSON)
def publish_command(args: argparse.Namespace) -> int:
    from ganzoo.publish import publish

    repos = publish(args.namespace, None if args.no_space else args.space_dir, args.space_name, args.dry_run)
    if args.json:
        print_json(repos)
        return 0
    for repo in repos:
        done = f" -> {repo['commit_url']}" if "commit_url" in repo else " (dry run: not uploaded)"
        print(f"{repo['repo_type']:5} {repo['repo_id']}: {len(repo['files'])} files{done}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
