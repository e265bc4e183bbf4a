"""Image in -> image out, one function per task; the CLI and every app tab call these.

Conversion (decoding, alpha, 16-bit grey), the device, tiling and the
inference context live here and in `imaging`, nowhere else.

Each image-to-image task comes as a pair with the same arguments: `upscale`/`sr_upscaler`,
`deblur`/`deblurrer`, `stylize`/`stylizer`. The first takes an image (file, PIL, array) and returns a
PIL image; the second returns the same work as a tensor function [N,3,H,W] -> [N,3,sH,sW] (for
benchmarks and training-time evaluation). Only the image-level one takes `image` and `max_pixels`
(a decoding limit); the image-level one is the tensor-level one run through `run_image_to_image`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import os
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ganzoo import gate_records, imaging, kernel_estimation
from ganzoo.deconvolution import deconvolve_batch, estimate_noise
from ganzoo.gate_records import weights_key
from ganzoo.graphs import ShapeGraphs
from ganzoo.imaging import IMAGE_SUFFIXES
from ganzoo.inference import for_inference, to_bf16
from ganzoo.kernel_estimation import scaled_progress
from ganzoo.models.digits import latent_noise
from ganzoo.precision import cpu_bf16_support, cuda_bf16_support, resolve_cpu_precision

__all__ = [
    "BICUBIC",
    "DEBLUR_METHODS",
    "DEFAULT_DEBLUR_METHOD",
    "IMAGE_SUFFIXES",
    "TILE_OVERLAP",
    "apply_checked",
    "blind_deblurrer",
    "check_whole_number",
    "deblur",
    "deblur_blind",
    "deblur_with_kernel",
    "deblurrer",
    "deconvolve_estimated",
    "deconvolve_or_network",
    "digit_labels",
    "expand_inputs",
    "image_model_scale",
    "interpolate_digits",
    "kernel_deconvolver",
    "load_image_model",
    "load_sr_model",
    "load_style_image",
    "memory_format_for",
    "model_function",
    "model_precision",
    "network_agreement",
    "pick_device",
    "run_image_to_image",
    "sample_digits",
    "sample_digits_grid",
    "slerp",
    "sr_output_scale",
    "sr_scale",
    "sr_upscaler",
    "strays",
    "strays_from_network",
    "stylize",
    "style_function",
    "stylizer",
    "upscale",
    "uses_cuda_graphs",
    "warm_up",
]

TILE_OVERLAP = 16
MAX_DIGITS = 1024
TensorFn = Callable[[torch.Tensor], torch.Tensor]


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, or CUDA when available and the CPU otherwise; ValueError for an unusable one."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {str(device)!r}: {err}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available; use cpu")
    return device


def check_whole_number(name: str, value: object, low: int, high: int | None = None) -> None:
    """ValueError unless `value` is a whole number (not a bool) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or \
            (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"from {low} to {high}"
        raise ValueError(f"{name} must be a whole number {bounds}, got {value!r}")


# -- digits -----------------------------------------------------------------------------------------

def digit_labels(digit: int | None, n: int, seed: int) -> torch.Tensor:
    """`n` copies of `digit`, or the classes 0..9 in turn when `digit` is None.

    `seed` does not change the labels; it is part of the signature so that
    random classes per seed can be added without changing callers.
    """
    check_whole_number("the number of digits", n, 1, MAX_DIGITS)
    if digit is None:
        return torch.arange(n) % 10
    check_whole_number("digit", digit, 0, 9)
    return torch.full((n,), int(digit), dtype=torch.long)


def sample_digits(generator: nn.Module, n: int = 64, seed: int = 0, digit: int | None = None) -> torch.Tensor:
    """[n,1,28,28] digits in [0,1] on the CPU; the same seed gives identical images."""
    labels = digit_labels(digit, n, seed)
    generator.eval()
    return generator.sample(labels, seed=seed).float().clamp(0.0, 1.0).cpu()


def sample_digits_grid(generator: nn.Module, n: int = 64, seed: int = 0, digit: int | None = None,
                       nrow: int = 8) -> Image.Image:
    check_whole_number("nrow", nrow, 1)
    return imaging.make_grid_image(sample_digits(generator, n, seed, digit), nrow=nrow)


def interpolate_digits(generator: nn.Module, seed_a: int, seed_b: int, digit: int, steps: int = 10) -> Image.Image:
    """One row of `steps` digits walking the latent sphere from the noise of `seed_a` to that of `seed_b`."""
    if digit is None:
        raise ValueError("interpolation needs one digit from 0 to 9")
    check_whole_number("steps", steps, 2, MAX_DIGITS)
    labels = digit_labels(digit, steps, seed_a)
    z_a, z_b = (latent_noise(1, generator.latent_dim, seed) for seed in (seed_a, seed_b))
    z = slerp(z_a, z_b, torch.linspace(0.0, 1.0, steps))
    generator.eval()
    device = next(generator.parameters()).device
    with torch.no_grad():
        images = generator(z.to(device), labels.to(device))
    return imaging.make_grid_image(images, nrow=steps)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between [1,D] vectors at each weight in `t` -> [len(t), D]."""
    a64, b64, t64 = a.double(), b.double(), t.double()[:, None]
    cos = (a64 / a64.norm() * (b64 / b64.norm())).sum().clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.sin().abs() < 1e-6:  # (anti)parallel: the great circle is undefined, fall back to a line
        return ((1 - t64) * a64 + t64 * b64).to(a.dtype)
    mixed = (torch.sin((1 - t64) * omega) * a64 + torch.sin(t64 * omega) * b64) / omega.sin()
    return mixed.to(a.dtype)


# -- image to image ---------------------------------------------------------------------------------

def run_image_to_image(image: imaging.ImageSource, fn: TensorFn, scale: int = 1, tile: int | None = None,
                       overlap: int = TILE_OVERLAP, max_pixels: int = imaging.MAX_PIXELS,
                       device: torch.device | None = None) -> Image.Image:
    """Decode `image`, run `fn` (RGB [1,3,H,W] in [0,1] -> [1,3,sH,sW]) on the device, re-attach alpha.

    With `tile`, large images go through `imaging.tiled_apply`; 16-bit grey
    input gives 16-bit grey output when `fn` keeps it grey (`upscale` and `deblur` always keep grey grey).
    """
    device = pick_device(device)
    return _run_on_image(image, _tensor_level(fn, scale, tile, overlap, device), max_pixels)


def _run_on_image(image: imaging.ImageSource, fn: TensorFn, max_pixels: int, keep_grey: bool = False
                  ) -> Image.Image:
    """Decode `image`, apply the tensor function `fn` to its RGB, re-attach alpha (resized to the output).

    With `keep_grey`, a greyscale image comes back greyscale (the mean of the output's channels): restoration
    must not invent colour, and a GAN fed three equal channels can tint them."""
    decoded = imaging.load_image(image, max_pixels)
    rgb, alpha, bit_depth = imaging.image_to_tensor(decoded)
    out = fn(rgb)
    grey = keep_grey and imaging.is_greyscale(decoded)
    if grey:
        out = out.mean(1, keepdim=True).expand_as(out)
    if alpha is not None and tuple(out.shape[-2:]) != tuple(alpha.shape[-2:]):
        alpha = imaging.imresize(alpha, size=tuple(out.shape[-2:]))
    result = imaging.tensor_to_image(out, alpha, bit_depth)  # 16-bit grey comes back as I;16 already
    if grey and result.mode in ("RGB", "RGBA"):
        result = result.convert("L" if result.mode == "RGB" else "LA")
    return result


def apply_checked(fn: TensorFn, x: torch.Tensor, scale: int, tile: int | None, overlap: int) -> torch.Tensor:
    """fn(x), tiled when `tile` is set, with the output size checked."""
    y = fn(x) if tile is None else imaging.tiled_apply(fn, x, tile, overlap, scale)
    expected = [x.shape[0], x.shape[2] * scale, x.shape[3] * scale]
    if y.dim() != 4 or [y.shape[0], y.shape[2], y.shape[3]] != expected:
        raise ValueError(f"the model turned an input of shape {list(x.shape)} into {list(y.shape)}; "
                         f"expected {expected[0]} images of {expected[1]}x{expected[2]} (scale {scale})")
    return y


def _tensor_level(fn: TensorFn, scale: int, tile: int | None, overlap: int, device: torch.device) -> TensorFn:
    """`fn` on `device` without autograd, tiled and size-checked; the result on the input's device."""
    def apply(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return apply_checked(fn, x.to(device), scale, tile, overlap).to(x.device)
    return apply


def sr_scale(model: nn.Module) -> int:
    """The upscaling factor of a super-resolution model (its `scale` attribute)."""
    scale = getattr(model, "scale", None)
    if isinstance(scale, bool) or not isinstance(scale, numbers.Integral) or scale < 1:
        raise ValueError(f"{type(model).__name__} is not a super-resolution model (it has no integer `scale`)")
    return int(scale)


def image_model_scale(model: nn.Module) -> int:
    """How many times larger an image-to-image model's output is: its `scale` for SR, 1 for deblurring and
    fast style networks; ValueError for any other model (a digit generator, a classifier)."""
    from ganzoo.models import DEBLURRING_MODELS, TransformerNet

    if hasattr(model, "scale"):
        return sr_scale(model)
    if isinstance(model, (*DEBLURRING_MODELS, TransformerNet)):
        return 1
    raise ValueError(f"{type(model).__name__} is not an image-to-image model")


def model_function(model: nn.Module, device: torch.device, precision: str = "auto") -> TensorFn:
    """`model` on `device` in eval mode as a tensor function clamped to [0, 1], run the fastest way measured
    to match it there: on the CPU and CUDA, channels-last with the exact rewrites of `inference.for_inference`
    (`memory_format_for`), in the number format `model_precision` picks (bf16: `inference.to_bf16`, output in
    fp32); on CUDA replayed from a CUDA graph per input shape (`uses_cuda_graphs`, `graphs.ShapeGraphs`).
    On the CPU and CUDA `model` itself is left as it is; elsewhere it is moved to `device` and set to eval mode."""
    precision = model_precision(model, device, precision)
    memory_format = memory_format_for(device)
    if memory_format == torch.contiguous_format and precision == "fp32":
        model.to(device).eval()
        return lambda x: model(x).clamp(0.0, 1.0)
    fast = _rewritten(model, device, memory_format, precision)

    def run(x: torch.Tensor) -> torch.Tensor:
        return fast(x.contiguous(memory_format=memory_format)).float().clamp(0.0, 1.0).contiguous()
    if not uses_cuda_graphs(device):
        return run
    cached = _GRAPHS.get(model)
    if cached is None or cached[0] is not fast:  # kept with the rewritten copy: the app calls this per request
        cached = _GRAPHS[model] = (fast, ShapeGraphs(run))
    return cached[1]


def uses_cuda_graphs(device: torch.device) -> bool:
    """Whether `model_function` replays CUDA graphs on `device`: on CUDA, unless GANZOO_CUDA_GRAPHS=0."""
    return device.type == "cuda" and os.environ.get("GANZOO_CUDA_GRAPHS", "1") != "0"


def warm_up(model: nn.Module, device: torch.device, shapes: list[tuple[int, ...]], precision: str = "auto") -> None:
    """Capture the CUDA graphs of `model_function` for these input shapes now (at load), not on a user's click;
    nothing to do where no graphs are used."""
    fn = model_function(model, device, precision)
    if isinstance(fn, ShapeGraphs):
        for shape in shapes:
            fn.warm_up(torch.rand(shape, device=device))


def model_precision(model: nn.Module | None, device: torch.device, precision: str = "auto") -> str:
    """'fp32' or 'bf16', the format `model_function` runs `model` in on `device`.

    An explicit choice is kept, on every device. "auto" is bf16 only where the device computes bf16
    natively (a CPU with AVX512-BF16 or AMX, `precision.cpu_bf16_support`; a CUDA GPU of compute capability
    8.0 or later, `precision.cuda_bf16_support`) and only for weights whose bf16 quality-gate record for that
    kind of device passed (`gate_records.bf16_passed`); fp32 otherwise, and on other devices.
    """
    if model is None:  # bicubic
        return "fp32"
    resolved = resolve_cpu_precision(precision)
    if precision != "auto":
        return resolved
    if device.type == "cpu":
        gated = cpu_bf16_support().native and gate_records.bf16_passed(model)
    elif device.type == "cuda":
        gated = cuda_bf16_support(device).native and gate_records.bf16_passed(model, device_type="cuda")
    else:
        gated = False
    return "bf16" if gated else "fp32"


# model -> (what its weights were, the rewritten copy): the app calls model_function on every request, and
# rewriting srresnet-x4 costs ~15 ms, a third of a small image's upscale.
_REWRITTEN: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, nn.Module]] = weakref.WeakKeyDictionary()
# model -> (its rewritten copy, that copy's CUDA graphs, one per input shape); keyed by the model, not by the
# copy, which the graphs hold: a weak key its own value refers to would never be dropped
_GRAPHS: weakref.WeakKeyDictionary[nn.Module, tuple[nn.Module, ShapeGraphs]] = weakref.WeakKeyDictionary()


def _rewritten(model: nn.Module, device: torch.device, memory_format: torch.memory_format,
               precision: str = "fp32") -> nn.Module:
    """`for_inference(model)` on `device` (in bf16 via `to_bf16` if asked), rebuilt only when a weight or
    buffer changed (in place or replaced)."""
    key = (device, memory_format, precision, weights_key(model))
    cached = _REWRITTEN.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    fast = for_inference(model)
    if precision == "bf16":
        fast = to_bf16(fast)
    fast = fast.to(device, memory_format=memory_format)
    _REWRITTEN[model] = (key, fast)
    return fast


BICUBIC = "bicubic"  # the name that stands for no model: MATLAB bicubic interpolation


def load_sr_model(name: str, device: torch.device | str = "cpu") -> nn.Module | None:
    """None for "bicubic", else the super-resolution model `name` (name, folder or Hub repo id)."""
    from ganzoo.registry import load

    if name == BICUBIC:
        return None
    model = load(name, device=str(device))
    sr_scale(model)
    return model


def load_image_model(name: str, device: torch.device | str = "cpu") -> nn.Module:
    """An image-to-image model (super-resolution, deblurring or a fast style network) by name."""
    from ganzoo.registry import load

    model = load(name, device=str(device))
    image_model_scale(model)
    return model


def sr_output_scale(model: nn.Module | None, requested: int | None = None) -> int:
    """The factor an upscaling runs at: the model's own (ValueError if `requested` differs), else `requested`
    or 4 for bicubic."""
    if model is None:
        return 4 if requested is None else requested
    scale = sr_scale(model)
    if requested not in (None, scale):
        raise ValueError(f"{type(model).__name__} upscales x{scale}, not x{requested}")
    return scale


def _sr_function(model: nn.Module | None, scale: int, device: torch.device,
                 precision: str = "auto") -> tuple[TensorFn, int]:
    """The per-tensor upscaling function and its factor: MATLAB bicubic, or the model on `device`."""
    if model is None:
        check_whole_number("scale", scale, 1)
        return (lambda lr: imaging.imresize(lr, scale=scale).clamp(0.0, 1.0)), scale
    return model_function(model, device, precision), sr_scale(model)


def memory_format_for(device: torch.device) -> torch.memory_format:
    """The layout image-to-image models run in on `device`: channels-last (with `for_inference`'s rewrites) on
    the CPU and on CUDA, where `ganzoo benchmark` measures it faster than the naive path with outputs within its
    tolerance (docs/performance.md has the measured ratios and their commands); the default layout,
    unrewritten, elsewhere until measured there. The number format is `model_precision`'s choice."""
    return torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format


def upscale(image: imaging.ImageSource, model: nn.Module | None = None, scale: int = 4, tile: int | None = None,
            overlap: int = TILE_OVERLAP, device: torch.device | None = None, precision: str = "auto",
            max_pixels: int = imaging.MAX_PIXELS) -> Image.Image:
    """Upscale with an SR model (its own `scale` wins) or, without one, MATLAB bicubic by `scale`; grey stays grey."""
    return _run_on_image(image, sr_upscaler(model, scale, tile, overlap, device, precision), max_pixels,
                         keep_grey=True)


def sr_upscaler(model: nn.Module | None = None, scale: int = 4, tile: int | None = None, overlap: int = TILE_OVERLAP,
                device: torch.device | None = None, precision: str = "auto") -> TensorFn:
    """`upscale` as a tensor function ([N,3,h,w] -> [N,3,sh,sw] on the input's device), e.g. for `evaluate_sr`."""
    device = pick_device(device)
    fn, scale = _sr_function(model, scale, device, precision)
    return _tensor_level(fn, scale, tile, overlap, device)


# -- deblurring -------------------------------------------------------------------------------------

def deblur(image: imaging.ImageSource, model: nn.Module, tile: int | None = None, overlap: int = TILE_OVERLAP,
           device: torch.device | None = None, precision: str = "auto",
           max_pixels: int = imaging.MAX_PIXELS) -> Image.Image:
    """Remove motion blur from one image with a deblurring model (same size out); grey stays grey."""
    return _run_on_image(image, deblurrer(model, tile, overlap, device, precision), max_pixels, keep_grey=True)


def deblurrer(model: nn.Module, tile: int | None = None, overlap: int = TILE_OVERLAP,
              device: torch.device | None = None, precision: str = "auto") -> TensorFn:
    """`deblur` as a tensor function ([N,3,H,W] -> [N,3,H,W] on the input's device), e.g. for `evaluate_deblur`."""
    device = pick_device(device)
    return _tensor_level(model_function(model, device, precision), 1, tile, overlap, device)


#: the image prior of deconvolution with a known kernel (`ganzoo deblur --kernel`, the Deblur tab's true-kernel
#: row): the learned one (plug-and-play around the bundled denoiser) restored the development sets better than the
#: sparse-gradient "hqs" (runs/dev/moderate, large, levin: +1.7, +0.25, +0.17 dB), at 7-12x its time
#: (`benchmarks/bench_deconvolution.py`)
DEFAULT_DECONVOLUTION = "pnp"


def deblur_with_kernel(image: imaging.ImageSource, kernel: torch.Tensor | str | os.PathLike,
                       noise_sigma: float | None = None, method: str = DEFAULT_DECONVOLUTION,
                       max_pixels: int = imaging.MAX_PIXELS,
                       progress: Callable[[float], None] | None = None,
                       denoiser: nn.Module | str | None = None) -> Image.Image:
    """Non-blind deblurring: deconvolve one image by a blur `kernel` the user knows (an array [kh,kw], or a
    PNG/.npy/.npz file) with an image prior (`deconvolution.deconvolve`; `noise_sigma` on [0, 1], default
    estimated): `method` "hqs" (a sparse-gradient prior) or "pnp" (a learned prior: `denoiser`, by default the
    bundled `registry.DEFAULT_DENOISER`). Same size out; grey stays grey (16-bit grey stays 16-bit), alpha is
    kept."""
    return _run_on_image(image, kernel_deconvolver(kernel, noise_sigma, method, progress, denoiser), max_pixels,
                         keep_grey=True)


def kernel_deconvolver(kernel: torch.Tensor | str | os.PathLike, noise_sigma: float | None = None,
                       method: str = DEFAULT_DECONVOLUTION, progress: Callable[[float], None] | None = None,
                       denoiser: nn.Module | str | None = None) -> TensorFn:
    """`deblur_with_kernel` as a tensor function [N,3,H,W] -> [N,3,H,W] (the CPU does the work)."""
    from ganzoo import deconvolution

    kernel = deconvolution.load_kernel(kernel) if isinstance(kernel, (str, os.PathLike)) else \
        deconvolution.check_kernel(kernel)
    options = {"denoiser": pnp_denoiser(denoiser)} if method == "pnp" else {}
    return lambda x: deconvolution.deconvolve_batch(x, kernel, noise_sigma, method, progress=progress, **options)


def pnp_denoiser(denoiser: nn.Module | str | None = None) -> nn.Module:
    """The learned prior of plug-and-play deconvolution: `denoiser` (a `Denoiser`, or its name, folder or Hub id;
    default `registry.DEFAULT_DENOISER`) on the CPU in fp32, ready for inference."""
    from ganzoo.models import Denoiser
    from ganzoo.registry import DEFAULT_DENOISER, load

    if denoiser is None:
        return _bundled_denoiser(DEFAULT_DENOISER)
    if isinstance(denoiser, (str, os.PathLike)):
        denoiser = load(denoiser, expected=(Denoiser,))
    if not isinstance(denoiser, Denoiser):
        raise TypeError(f"the plug-and-play prior must be a Denoiser, got {type(denoiser).__name__}")
    return denoiser.float().cpu().eval()


@functools.lru_cache(maxsize=1)
def _bundled_denoiser(name: str) -> nn.Module:
    """The default prior, read once per process (the Deblur tab asks for it on every click)."""
    from ganzoo.models import Denoiser
    from ganzoo.registry import load

    return load(name, expected=(Denoiser,)).float().cpu().eval()


# -- blind deblurring: estimate the kernel, deconvolve it, optionally refine with a network ------------

#: `ganzoo deblur --method`: a deblurring network alone; the kernel estimated and deconvolved
#: (`kernel_estimation`, `deconvolution`); that followed by a deblurring network as refiner; and auto: the
#: estimate, or the network alone where the estimate is not trusted (a flat image, a diffuse kernel, one that
#: filled the largest window, or one that fails the re-blur check: `kernel_estimation.estimate_kernel`) or where
#: its deconvolution strays from the network's result (`strays_from_network`). auto and
#: estimate take an optional refiner too (`--refiner`: e.g. one trained by `train_deblur_unet.py --pair-dirs` on
#: `make_refiner_pairs.py`'s pairs; none is bundled, see docs/evaluation.md)
DEBLUR_METHODS = ("auto", "network", "estimate", "estimate+network")
#: auto restored the development sets best (362 cases of eight sets: mean unaligned PSNR +2.60 dB over the input
#: with the network check, +2.29 without; the network alone +1.02; docs/evaluation.md)
DEFAULT_DEBLUR_METHOD = "auto"
ESTIMATE_SHARE = 0.85  # of the progress bar: kernel estimation takes most of the time
#: `strays_from_network`: a deconvolution this many dB further from the network's output than the input is...
AWAY_FROM_NETWORK_DB = 3.0
#: ...and not this many dB nearer to the network's output than to the input (both chosen on the development sets
#: by train_scripts/choose_network_check.py)
TOWARDS_NETWORK_DB = 0.25
KERNEL_ERROR_SIGMA = kernel_estimation.KERNEL_ERROR_SIGMA  # the estimate's error, as extra noise (see there)


def blind_deblurrer(refiner: nn.Module | None = None, kernel_size: int | None = None,
                    noise_sigma: float | None = None, tile: int | None = None, overlap: int = TILE_OVERLAP,
                    device: torch.device | None = None, precision: str = "auto",
                    progress: Callable[[float, str], None] | None = None,
                    on_estimate: Callable[[kernel_estimation.KernelEstimate], None] | None = None,
                    fallback: nn.Module | None = None) -> TensorFn:
    """Blind deblurring as a tensor function [N,3,H,W] -> [N,3,H,W]: each image's blur kernel estimated
    (`kernel_estimation.estimate_kernel`, `kernel_size` None: chosen), the image deconvolved with it
    (`deconvolve_estimated`), then with `refiner` passed through that deblurring network. `on_estimate`
    receives each `KernelEstimate` (its `note` says when the kernel fell back to the identity, e.g. for a flat
    image: the image then passes unchanged, to the refiner only, or with `fallback` to that network instead).
    `progress(fraction, message)` follows the work."""
    refine = deblurrer(refiner, tile, overlap, device, precision) if refiner is not None else None
    instead = deblurrer(fallback, tile, overlap, device, precision) if fallback is not None else None
    if kernel_size is not None:
        kernel_estimation.check_kernel_size(kernel_size)

    def apply(x: torch.Tensor) -> torch.Tensor:
        out = []
        for image in x:
            estimate = kernel_estimation.estimate_kernel(image, kernel_size,
                                                         scaled_progress(progress, 0.0, ESTIMATE_SHARE))
            if instead is None:
                restored = deconvolve_and_refine(image[None], estimate.kernel, refine, noise_sigma,
                                                 scaled_progress(progress, ESTIMATE_SHARE, 1.0,
                                                                 "deconvolution"))
            else:
                restored, note = deconvolve_or_network(image[None], estimate.kernel, instead, refine, noise_sigma,
                                                       scaled_progress(progress, ESTIMATE_SHARE, 1.0))
                if note:  # said as the other fallbacks are: no kernel was used
                    estimate = dataclasses.replace(estimate, kernel=np.ones((1, 1)), size=1, note=note)
            if on_estimate is not None:
                on_estimate(estimate)
            out.append(restored)
        return torch.cat(out)
    return apply


def deconvolve_or_network(x: torch.Tensor, kernel: np.ndarray | torch.Tensor, network: TensorFn,
                          refine: TensorFn | None = None, noise_sigma: float | None = None,
                          progress: Callable[[float, str], None] | None = None) -> tuple[torch.Tensor, str]:
    """`--method auto` on one image [1,3,H,W] given its kernel estimate: the network's output where the kernel
    is the identity (an estimate not trusted) or where the deconvolution by it strays from the network's output
    (`strays_from_network`); else the deconvolution, then `refine` if given (`deconvolve_and_refine`). Returns
    (the restored image, a note saying why the network's output was used where the deconvolution was rejected,
    else "")."""
    kernel = np.asarray(kernel.detach().cpu() if isinstance(kernel, torch.Tensor) else kernel)
    if kernel.size == 1:
        return network(x), ""  # the fallback network's output is final: not refined
    restored = deconvolve_estimated(x, kernel, noise_sigma, None if progress is None else
                                    lambda fraction: progress(0.7 * fraction, "deconvolution"))
    if progress is not None:
        progress(0.7, "checking the deconvolution against the network")
    networked = network(x)
    if strays_from_network(x, restored, networked):
        return networked, ("the image deconvolved by the kernel estimate strays from the network's deblurred image "
                           "(ghosts or ringing of a wrong kernel), so the estimate is not trusted")
    return restored if refine is None else refine(restored.clamp(0, 1)), ""


def strays_from_network(blurred: torch.Tensor, deconvolved: torch.Tensor, network_output: torch.Tensor) -> bool:
    """Whether a deconvolution by an estimated kernel moved the photo away from a deblurring network's output
    rather than towards it: more than `AWAY_FROM_NETWORK_DB` further from that output than the input is, and not
    `TOWARDS_NETWORK_DB` nearer to it than to the input (PSNR of 8-bit images). A right kernel sharpens the
    edges the network sharpens; a wrong one that passes the estimator's own checks (a faint tail along the
    image's main edges, a kernel much larger than the blur) adds ghost copies and ringing the network does not
    make. On the development sets this caught the deconvolutions that lost most (5-19 dB below the input)."""
    return strays(*network_agreement(blurred, deconvolved, network_output))


def strays(away: float, towards: float, away_db: float = AWAY_FROM_NETWORK_DB,
           towards_db: float = TOWARDS_NETWORK_DB) -> bool:
    """`strays_from_network`'s rule on its two measures (`network_agreement`), at these thresholds."""
    return away < -away_db and towards < towards_db


def network_agreement(blurred: torch.Tensor, deconvolved: torch.Tensor, network_output: torch.Tensor,
                      ) -> tuple[float, float]:
    """(how much nearer the deconvolution is to the network's output than the input is, how much nearer it is to
    the network's output than to the input), in dB of PSNR between 8-bit images: `strays_from_network`'s two
    measures (`train_scripts/choose_network_check.py` chose their thresholds)."""
    from ganzoo import metrics

    blurred, deconvolved, network_output = (imaging.quantize(t.detach().float().cpu().clamp(0, 1))
                                            for t in (blurred, deconvolved, network_output))
    to_network = metrics.psnr(deconvolved, network_output).mean().item()
    return (to_network - metrics.psnr(blurred, network_output).mean().item(),
            to_network - metrics.psnr(deconvolved, blurred).mean().item())


def deconvolve_and_refine(x: torch.Tensor, kernel: np.ndarray | torch.Tensor, refine: TensorFn | None,
                          noise_sigma: float | None = None, progress: Callable[[float], None] | None = None,
                          ) -> torch.Tensor:
    """`deconvolve_estimated`, then `refine` (a network's tensor function, if any) on the result clipped to
    [0, 1], as the refiner was trained; an identity kernel (no deconvolution) is refined too."""
    restored = deconvolve_estimated(x, kernel, noise_sigma, progress)
    return restored if refine is None else refine(restored.clamp(0, 1))


def deconvolve_estimated(x: torch.Tensor, kernel: np.ndarray | torch.Tensor, noise_sigma: float | None = None,
                         progress: Callable[[float], None] | None = None) -> torch.Tensor:
    """Deconvolve [N,3,H,W] by an estimated kernel: the noise level (given or estimated per image) raised by
    `KERNEL_ERROR_SIGMA` for the estimate's own error; then the result moved by the kernel's sub-pixel centre of
    mass offset (`kernel_estimation.kernel_offset`), so that it lies where a kernel centred exactly (by centre of
    mass) would put it; the identity kernel (a fallback) leaves `x` as it is."""
    kernel = torch.as_tensor(np.asarray(kernel), dtype=torch.float32)
    if kernel.numel() == 1:
        return x
    offset = kernel_estimation.kernel_offset(kernel.double().numpy())
    out = []
    for image in x:
        sigma = estimate_noise(image.cpu()) if noise_sigma is None else noise_sigma
        restored = deconvolve_batch(image[None].cpu(), kernel, math.hypot(sigma, KERNEL_ERROR_SIGMA),
                                    progress=progress)
        out.append(kernel_estimation.shift_image(restored, offset))
    return torch.cat(out).to(x.device)


def deblur_blind(image: imaging.ImageSource, refiner: nn.Module | None = None, kernel_size: int | None = None,
                 noise_sigma: float | None = None, tile: int | None = None, device: torch.device | None = None,
                 precision: str = "auto", max_pixels: int = imaging.MAX_PIXELS,
                 progress: Callable[[float, str], None] | None = None, fallback: nn.Module | None = None,
                 ) -> tuple[Image.Image, kernel_estimation.KernelEstimate]:
    """Blind deblurring of one image (`blind_deblurrer`): (the restored image, the `KernelEstimate`, whose
    `kernel_estimation.kernel_image` is the kernel to show). Same size out; grey stays grey, alpha is kept."""
    estimates: list[kernel_estimation.KernelEstimate] = []
    fn = blind_deblurrer(refiner, kernel_size, noise_sigma, tile, TILE_OVERLAP, device, precision, progress,
                         estimates.append, fallback)
    return _run_on_image(image, fn, max_pixels, keep_grey=True), estimates[0]


# -- style transfer ---------------------------------------------------------------------------------

STYLE_MAX_SIDE = 512  # AdaIN style images are shrunk to this longer side (the paper's scale)


def load_style_image(style: imaging.ImageSource, max_side: int = STYLE_MAX_SIDE,
                     max_pixels: int = imaging.MAX_PIXELS) -> torch.Tensor:
    """A style image as RGB [1,3,h,w] in [0, 1], shrunk (Lanczos) to at most `max_side` pixels per side."""
    image = imaging.load_image(style, max_pixels).convert("RGB")
    if max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return imaging.image_to_tensor(image)[0]


def stylize(image: imaging.ImageSource, model: nn.Module,
            style: imaging.ImageSource | list[imaging.ImageSource] | None = None, alpha: float = 1.0,
            preserve_color: bool = False, style_weights: list[float] | None = None, tile: int | None = None,
            overlap: int = TILE_OVERLAP, device: torch.device | None = None, precision: str = "auto",
            max_pixels: int = imaging.MAX_PIXELS) -> Image.Image:
    """Stylise one image (same size out; alpha and 16-bit grey input handled as elsewhere): with a fast
    per-style network, or with AdaIN and `style` (see `stylizer`)."""
    fn = stylizer(model, style, alpha, preserve_color, style_weights, tile, overlap, device, precision)
    return _run_on_image(image, fn, max_pixels)


def stylizer(model: nn.Module, style: imaging.ImageSource | list[imaging.ImageSource] | None = None,
             alpha: float = 1.0, preserve_color: bool = False, style_weights: list[float] | None = None,
             tile: int | None = None, overlap: int = TILE_OVERLAP, device: torch.device | None = None,
             precision: str = "auto") -> TensorFn:
    """`stylize` as a tensor function [N,3,H,W] -> [N,3,H,W] in [0, 1] on the input's device.

    A fast network (`TransformerNet`) takes no `style`; `alpha` then blends its output with the input
    in image space. `AdaINStyleTransfer` needs `style`: one image (any image source, or an RGB tensor
    [1,3,h,w] as `load_style_image` returns), or several with `style_weights` to
    interpolate between them; `alpha` is AdaIN's feature-space strength (0 returns the input).
    `preserve_color` keeps the input's chroma (YCbCr) and transfers only luminance. A fast network runs
    through `model_function` (`precision` as there); AdaIN runs in fp32 (bf16 is not offered for it).
    """
    from ganzoo.models.style import AdaINStyleTransfer, TransformerNet
    from ganzoo.models.style import preserve_color as keep_chroma

    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be a number from 0 to 1, got {alpha!r}")
    device = pick_device(device)
    if isinstance(model, TransformerNet):
        if style is not None:
            raise ValueError("a fast style network has its style built in; pass style=None "
                             "(use the adain model for a style image)")
        network = model_function(model, device, precision)

        def transfer(x: torch.Tensor) -> torch.Tensor:
            return torch.lerp(x, network(x), float(alpha)) if alpha > 0 else x.clone()
    elif isinstance(model, AdaINStyleTransfer):
        if precision not in ("auto", "fp32"):
            raise ValueError(f"AdaIN runs in fp32 (bf16 is offered for the fast style networks); got {precision!r}")
        model.to(device).eval()
        if style is None:
            raise ValueError("AdaIN needs a style image (style=...)")
        styles = style if isinstance(style, (list, tuple)) else [style]
        weights = [1.0] * len(styles) if style_weights is None else list(style_weights)
        style_tensors = [(s if isinstance(s, torch.Tensor) else load_style_image(s)).to(device) for s in styles]

        def transfer(x: torch.Tensor) -> torch.Tensor:
            return model.mix(x, style_tensors, weights, float(alpha))
    else:
        # a ValueError like every user error here (the CLI and the app report those)
        raise ValueError(  # noqa: TRY004
            f"{type(model).__name__} is not a style-transfer model (TransformerNet or AdaINStyleTransfer)")
    styled = transfer if not preserve_color else (lambda x: keep_chroma(x, transfer(x)))
    return _tensor_level(styled, 1, tile, overlap, device)


def style_function(model: nn.Module, style: imaging.ImageSource | None = None, alpha: float = 1.0,
                   reconstruct: bool = False, device: torch.device | None = None,
                   precision: str = "auto") -> tuple[TensorFn, str]:
    """What `ganzoo evaluate style` measures, as a tensor function, and the number format it runs in:
    `stylizer`, or with `reconstruct` an AdaIN model decoding the photo's own features (fp32)."""
    from ganzoo.models.style import AdaINStyleTransfer, TransformerNet

    device = pick_device(device)
    if reconstruct:
        if not isinstance(model, AdaINStyleTransfer):
            raise ValueError("--reconstruct applies to AdaIN models only")
        model.to(device).eval()
        return _tensor_level(model.reconstruct, 1, None, TILE_OVERLAP, device), "fp32"
    style_tensor = load_style_image(style) if style is not None else None
    fn = stylizer(model, style_tensor, alpha=alpha, device=device, precision=precision)
    # AdaIN runs in fp32 (stylizer)
    return fn, model_precision(model, device, precision) if isinstance(model, TransformerNet) else "fp32"


def expand_inputs(paths: list[str | os.PathLike]) -> list[Path]:
    """Files as given, folders replaced by their image files (sorted).

    A path that does not exist is kept, so that processing it reports the
    missing file next to the other per-file errors instead of stopping the run.
    """
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files += imaging.image_files(path)
        else:
            files.append(path)
    return files
