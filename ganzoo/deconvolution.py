"""Non-blind deconvolution: restore an image blurred by a known kernel, with an image prior.

`deconvolve(blurred, kernel)` is half-quadratic splitting in the Fourier domain with a hyper-Laplacian
prior on the image gradients (Krishnan & Fergus, "Fast image deconvolution using hyper-Laplacian priors",
NIPS 2009): minimise

    lambda / 2 * || M (k * x - y) ||^2 + sum |grad x|^alpha,       alpha = 2/3 by default,

by alternating a per-pixel step on the split gradients w (a lookup table of the exact 1-D minimiser,
as in the paper) with a closed-form Fourier step on x, while the splitting weight beta grows.

Boundaries: a real photo's blur reaches in from outside the frame, so the latent image x is taken larger
than the photo by the kernel's size and the data term only looks at the observed pixels (the mask M;
Almeida & Figueiredo 2013). The unobserved band is filled, on every iteration, with the current estimate
blurred (the exact minimisation over the missing pixels), so the Fourier step stays closed-form and no
edge rings. `boundary="circular"` instead assumes the blur wrapped around the image (synthetic
benchmarks such as Levin et al. 2009 are made that way); the default, "auto", takes circular only for an image
that is seamless across its wrap-around (`seam_ratio`), which no photo is.

The prior weight follows the noise: lambda = `prior_scale` / sigma^2, sigma given or estimated from the
blurred image by `estimate_noise` (Immerkaer 1996), never below the noise of 8-bit rounding.

Tensors: images are [C,H,W] (or [H,W]) floats in [0, 1]; kernels [kh,kw], non-negative, any sum (they are
normalised to sum 1). `check_kernel` says clearly what is wrong with a bad kernel; `load_kernel` reads one
from a PNG, .npy or .npz file.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.fft import next_fast_len

__all__ = [
    "BOUNDARIES",
    "DEFAULT_ALPHA",
    "DEFAULT_PRIOR_SCALE",
    "MAX_KERNEL_SIZE",
    "METHODS",
    "check_kernel",
    "deconvolve",
    "deconvolve_batch",
    "estimate_noise",
    "load_kernel",
    "seam_ratio",
]

METHODS = ("hqs", "pnp")
BOUNDARIES = ("auto", "unknown", "circular")
DEFAULT_ALPHA = 2.0 / 3.0
#: lambda = DEFAULT_PRIOR_SCALE / sigma^2. Tuned (with alpha) only on development sets made from BSDS500-train
#: (`ganzoo make-blur-set`: 16 images x 2 kernels of 5-30 px path, seed 124; 16 x 2 of 31-75 px, seed 123;
#: 12 x 2 of 63 and 75 px, seed 126): 0.05-3 tried; 0.2-0.3 best on average, smaller for small kernels
DEFAULT_PRIOR_SCALE = 0.25
MAX_KERNEL_SIZE = 301  # pixels per side: camera shake of a long exposure stays far below
#: noise floor: the standard deviation of rounding to 8 bits, 1 / 255 / sqrt(12)
QUANTISATION_SIGMA = 1.0 / 255.0 / math.sqrt(12.0)
#: the splitting weight's schedule (Krishnan & Fergus: from 1, times 2 sqrt 2, up to 256)
BETA_START, BETA_RATE, BETA_MAX = 1.0, 2.0 * math.sqrt(2.0), 256.0
_LUT_RANGE, _LUT_SIZE = 2.0, 8001
_PAD_MODE = "edge"  # replicate the edge: smoother than mirroring, and 1-2 dB better on a frame cut from a scene
#: "auto" takes the boundary as circular when the jump across the image's wrap-around seam is below this many
#: times the mean step between neighbouring rows (columns) at the edges: 0.8-2.0 on Levin's circularly blurred
#: benchmark, 3.3-45 on images blurred with reflected or real content beyond the frame (the development sets)
SEAMLESS_RATIO = 2.5

Progress = Callable[[float], None]


# -- inputs -------------------------------------------------------------------------------------------

def check_kernel(kernel: torch.Tensor | np.ndarray, image_size: tuple[int, int] | None = None,
                 name: str = "kernel") -> torch.Tensor:
    """The kernel as float64 [kh,kw] summing to 1, or a ValueError that says what is wrong with it: not 2-D,
    empty, not finite, negative, all zero, larger than `MAX_KERNEL_SIZE` or than the image (`image_size`
    (H, W))."""
    kernel = torch.as_tensor(np.asarray(kernel) if not isinstance(kernel, torch.Tensor) else kernel)
    if kernel.dim() != 2 or kernel.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {list(kernel.shape)}")
    if kernel.is_complex() or not (kernel.is_floating_point() or kernel.dtype in (torch.uint8, torch.int16,
                                                                                    torch.int32, torch.int64)):
        raise ValueError(f"{name} must hold real numbers, got {kernel.dtype}")
    kernel = kernel.detach().cpu().double()
    if not torch.isfinite(kernel).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if (kernel < 0).any():
        raise ValueError(f"{name} has negative values (min {kernel.min().item():.3g}); a blur kernel is "
                         "non-negative")
    if kernel.sum() <= 0:
        raise ValueError(f"{name} is all zero")
    kh, kw = kernel.shape
    if max(kh, kw) > MAX_KERNEL_SIZE:
        raise ValueError(f"{name} is {kh}x{kw}; at most {MAX_KERNEL_SIZE}x{MAX_KERNEL_SIZE} is supported")
    if image_size is not None and (kh > image_size[0] or kw > image_size[1]):
        raise ValueError(f"{name} is {kh}x{kw}, larger than the {image_size[0]}x{image_size[1]} image")
    return kernel / kernel.sum()


def load_kernel(path: str | os.PathLike) -> torch.Tensor:
    """One blur kernel from a file: a greyscale (or colour, averaged) PNG/JPEG/BMP/TIFF image, a .npy array,
    or a .npz archive holding exactly one array; float64 [kh,kw] summing to 1 (`check_kernel`'s errors)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such kernel file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if len(archive.files) != 1:
                    raise ValueError(f"{path}: a kernel archive must hold exactly one array, found "
                                     f"{len(archive.files)} ({', '.join(archive.files[:5]) or 'none'}); "
                                     "save the kernel alone with numpy.save or numpy.savez")
                array = archive[archive.files[0]]
        elif suffix in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm"):
            with Image.open(path) as image:
                array = np.asarray(image.convert("F"), dtype=np.float64)
        else:
            raise ValueError(f"{path}: unknown kernel file type {suffix or '(none)'!r}; use a PNG image, "
                             ".npy or .npz")
    except (OSError, EOFError, UnidentifiedImageError) as err:
        raise ValueError(f"{path}: cannot read the kernel ({err})") from err
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{path}: a kernel must hold real numbers, got dtype {array.dtype}")
    return check_kernel(np.asarray(array, dtype=np.float64), name=str(path))


def estimate_noise(image: torch.Tensor) -> float:
    """The standard deviation of white Gaussian noise in `image` ([C,H,W] or [H,W] in [0, 1]), by Immerkaer's
    method (1996): the mean absolute response to the difference of two Laplacians, which cancels locally
    linear image content, times sqrt(pi / 2) / 6; the median over channels. Blur leaves little content that
    the mask sees, so on a blurred photo this is the sensor noise; it varies smoothly with the noise, unlike a
    median of 8-bit differences (that moves in steps of 0.003)."""
    x = _as_planes(image, "image").double()
    if min(x.shape[-2:]) < 3:
        raise ValueError(f"estimate_noise needs at least 3x3 pixels, got {list(image.shape)}")
    mask = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]], dtype=torch.float64)
    response = torch.nn.functional.conv2d(x[:, None], mask[None, None])
    per_channel = response.abs().mean(dim=(1, 2, 3)) * math.sqrt(math.pi / 2) / 6
    return float(per_channel.median())


def seam_ratio(image: torch.Tensor) -> float:
    """How much larger the jump across the wrap-around seam of `image` ([C,H,W] or [H,W]) is than the step between
    neighbouring rows or columns at its edges: the larger of the two directions' ratios of mean absolute
    differences. About 1 for an image blurred by circular convolution (the seam is one more blurred step), far
    above for a photo, whose opposite edges show different things."""
    x = _as_planes(image, "image").double()
    if min(x.shape[-2:]) < 3:
        raise ValueError(f"seam_ratio needs at least 3x3 pixels, got {list(image.shape)}")

    def rows(y: torch.Tensor) -> float:
        seam = (y[..., 0, :] - y[..., -1, :]).abs().mean()
        steps = torch.cat([(y[..., 0, :] - y[..., 1, :]).abs().flatten(), (y[..., -1, :] - y[..., -2, :]).abs().flatten()])
        return float(seam / steps.mean().clamp_min(1e-6))
    return max(rows(x), rows(x.transpose(-1, -2)))


def _as_planes(image: torch.Tensor, name: str) -> torch.Tensor:
    """[C,H,W] from [C,H,W] or [H,W]; a ValueError for anything else or values that are not finite."""
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if image.dim() == 2:
        image = image[None]
    if image.dim() != 3 or image.numel() == 0:
        raise ValueError(f"{name} must be [C,H,W] or [H,W], got {list(image.shape)}")
    if not torch.isfinite(image).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return image


# -- the w-step: |w|^alpha + beta / 2 (w - v)^2 ------------------------------------------------------

@functools.lru_cache(maxsize=64)
def _shrinkage_table(alpha: float, beta: float) -> torch.Tensor:
    """w*(v) on v = 0.._LUT_RANGE (`_LUT_SIZE` points): the minimiser of |w|^alpha + beta/2 (w - v)^2.

    For 0 < alpha < 1 the objective is convex above w0 = (alpha (1 - alpha) / beta)^(1 / (2 - alpha)), so
    Newton's method from w = v finds the only local minimum there, if one exists; it wins if it is lower
    than the objective at 0 (Krishnan & Fergus tabulate the same minimiser)."""
    v = np.linspace(0.0, _LUT_RANGE, _LUT_SIZE)
    if alpha == 1.0:
        return torch.from_numpy(np.maximum(v - 1.0 / beta, 0.0))
    w = v.copy()
    # Just above the inflection point, where the curvature is 0.
    floor = (alpha * (1 - alpha) / beta) ** (1 / (2 - alpha)) * (1 + 1e-6)
    for _ in range(40):
        safe = np.maximum(w, floor)
        grad = alpha * safe ** (alpha - 1) + beta * (safe - v)
        curvature = alpha * (alpha - 1) * safe ** (alpha - 2) + beta
        w = np.clip(safe - grad / curvature, floor, None)
    w = np.minimum(w, v)
    keep = w**alpha + beta / 2 * (w - v) ** 2 < beta / 2 * v**2
    return torch.from_numpy(np.where(keep, w, 0.0))


def _shrink(v: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """The w-step for every gradient value in `v`: table lookup with linear interpolation; beyond the table
    one Newton step from v (there the minimiser is v minus a small correction)."""
    table = _shrinkage_table(alpha, beta).to(v.dtype)
    magnitude = v.abs()
    position = (magnitude.clamp(max=_LUT_RANGE) * ((_LUT_SIZE - 1) / _LUT_RANGE))
    low = position.floor().long().clamp(max=_LUT_SIZE - 2)
    fraction = position - low
    w = torch.lerp(table[low], table[low + 1], fraction)
    outside = magnitude > _LUT_RANGE
    if outside.any():
        m = magnitude[outside]
        w[outside] = m - alpha * m ** (alpha - 1) / (alpha * (alpha - 1) * m ** (alpha - 2) + beta)
    return w.copysign(v)


# -- the Fourier step ---------------------------------------------------------------------------------

def _otf(kernel: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The transform of `kernel` placed so that multiplying by it is `degrade.blur`'s convolution (the
    kernel's centre at (kh // 2, kw // 2))."""
    kh, kw = kernel.shape
    padded = torch.zeros(size, dtype=kernel.dtype)
    padded[:kh, :kw] = kernel
    return torch.fft.rfft2(torch.roll(padded, (-(kh // 2), -(kw // 2)), dims=(0, 1)))


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Circular forward differences along width and height."""
    return torch.roll(x, -1, dims=-1) - x, torch.roll(x, -1, dims=-2) - x


def _gradients_adjoint(gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """D^T applied to the pair (the transpose of `_gradients`)."""
    return (torch.roll(gx, 1, dims=-1) - gx) + (torch.roll(gy, 1, dims=-2) - gy)


class _Problem:
    """The quantities every iteration reuses: the padded observation, its mask, the transforms."""

    def __init__(self, blurred: torch.Tensor, kernel: torch.Tensor, boundary: str) -> None:
        c, h, w = blurred.shape
        kh, kw = kernel.shape
        if boundary == "circular":
            self.top = self.left = 0
            size = (h, w)
        else:
            # Margins of the kernel's size (more than its reach) and a size the FFT is fast at.
            self.top, self.left = kh, kw
            size = (next_fast_len(h + 2 * kh, real=True), next_fast_len(w + 2 * kw, real=True))
        self.size, self.shape = size, (h, w)
        self.observed = torch.zeros(size, dtype=torch.bool)
        self.observed[self.top:self.top + h, self.left:self.left + w] = True
        self.y = self._extend(blurred)
        self.otf = _otf(kernel, size)
        ones = torch.zeros(size, dtype=kernel.dtype)
        ones[0, 0] = 1.0
        dx, dy = _gradients(ones)
        self.kernel_power = self.otf.abs().pow(2)
        self.gradient_power = torch.fft.rfft2(dx).abs().pow(2) + torch.fft.rfft2(dy).abs().pow(2)
        self.ky = self.otf.conj() * torch.fft.rfft2(self.y)

    def _extend(self, blurred: torch.Tensor) -> torch.Tensor:
        """The observation placed in the latent frame, its margins filled from its edge (`_PAD_MODE`; only the
        first estimate sees them)."""
        h, w = self.shape
        bottom, right = self.size[0] - h - self.top, self.size[1] - w - self.left
        if bottom == right == self.top == self.left == 0:
            return blurred.clone()
        widths = ((0, 0), (self.top, bottom), (self.left, right))
        return torch.from_numpy(np.pad(blurred.numpy(), widths, mode=_PAD_MODE))

    def blur(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(torch.fft.rfft2(x) * self.otf, s=self.size)

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.shape
        return x[..., self.top:self.top + h, self.left:self.left + w]


def _betas(beta_max: float) -> list[float]:
    """The continuation: BETA_START times BETA_RATE^i up to `beta_max`."""
    betas = [BETA_START]
    while betas[-1] * BETA_RATE <= beta_max * (1 + 1e-9):
        betas.append(betas[-1] * BETA_RATE)
    return betas


def _hqs(problem: _Problem, lam: float, alpha: float, inner: int, beta_max: float,
         progress: Progress | None) -> torch.Tensor:
    """Krishnan & Fergus' continuation on beta, with the unobserved band refilled before each Fourier step.

    Four FFTs per iteration: the estimate's transform is kept, so re-blurring it costs one inverse FFT."""
    spectrum = torch.fft.rfft2(problem.y)
    ky = problem.ky
    betas = _betas(beta_max)
    steps = len(betas) * inner
    done = 0
    for beta in betas:
        for _ in range(inner):
            x = torch.fft.irfft2(spectrum, s=problem.size)
            if not problem.observed.all():
                u = torch.where(problem.observed, problem.y, torch.fft.irfft2(spectrum * problem.otf, s=problem.size))
                ky = problem.otf.conj() * torch.fft.rfft2(u)
            gx, gy = _gradients(x)
            wx, wy = _shrink(gx, alpha, beta), _shrink(gy, alpha, beta)
            numerator = ky + (beta / lam) * torch.fft.rfft2(_gradients_adjoint(wx, wy))
            spectrum = numerator / (problem.kernel_power + (beta / lam) * problem.gradient_power)
            done += 1
            if progress is not None:
                progress(done / steps)
    return torch.fft.irfft2(spectrum, s=problem.size)


Denoiser = Callable[[torch.Tensor, float], torch.Tensor]
#: DPIR's schedule for deblurring (Zhang et al. 2021): 8 iterations, the denoiser's level falling geometrically
#: from 49/255 to the noise level, the data weight alpha_k = PNP_LAMBDA sigma^2 / sigma_k^2. PNP_LAMBDA (DPIR:
#: 0.23) chosen for the bundled `denoiser` on the development sets only (runs/dev/{moderate,large,levin}, made
#: from BSDS500-train images the denoiser never saw): 0.23 / 0.35 / 0.5 / 1 / 2 tried, 0.5 best on average
PNP_ITERATIONS, PNP_SIGMA_START, PNP_LAMBDA = 8, 49.0 / 255.0, 0.5


def _pnp(problem: _Problem, sigma: float, denoiser: Denoiser, iterations: int, weight: float,
         progress: Progress | None) -> torch.Tensor:
    """Plug-and-play HQS (DPIR): a closed-form Fourier step towards the data, then the denoiser at a falling
    level, which stands in for the prior's proximal step."""
    z = problem.y.clone()
    levels = np.geomspace(PNP_SIGMA_START, max(sigma, QUANTISATION_SIGMA), iterations)
    for i, level in enumerate(levels):
        u = problem.y if problem.observed.all() else torch.where(problem.observed, problem.y, problem.blur(z))
        alpha = weight * sigma**2 / level**2
        numerator = problem.otf.conj() * torch.fft.rfft2(u) + alpha * torch.fft.rfft2(z)
        x = torch.fft.irfft2(numerator / (problem.kernel_power + alpha), s=problem.size)
        z = _denoise(denoiser, x, float(level))
        if progress is not None:
            progress((i + 1) / iterations)
    return z


def _denoise(denoiser: Denoiser, x: torch.Tensor, level: float) -> torch.Tensor:
    """`denoiser` on planes [C,H,W]: as RGB [1,3,H',W'] float32 with even sides (edge-padded), and back."""
    c, h, w = x.shape
    rgb = x.float()[None].expand(1, 3, -1, -1) if c == 1 else x.float()[None]
    rgb = torch.nn.functional.pad(rgb, (0, w % 2, 0, h % 2), mode="replicate")
    with torch.inference_mode():
        out = denoiser(rgb, level)[0, :, :h, :w].to(x.dtype)
    return out.mean(0, keepdim=True) if c == 1 else out


# -- public entry points ------------------------------------------------------------------------------

def deconvolve(blurred: torch.Tensor, kernel: torch.Tensor | np.ndarray, noise_sigma: float | None = None,
               method: str = "hqs", *, alpha: float = DEFAULT_ALPHA, prior_scale: float = DEFAULT_PRIOR_SCALE,
               boundary: str = "auto", inner_iterations: int = 1, beta_max: float = BETA_MAX,
               denoiser: Denoiser | None = None, pnp_weight: float = PNP_LAMBDA,
               progress: Progress | None = None) -> torch.Tensor:
    """Deconvolve `blurred` ([C,H,W] or [H,W], floats in [0, 1]) by the known blur `kernel` ([kh,kw]).

    `noise_sigma`: the noise's standard deviation on [0, 1] (default: `estimate_noise(blurred)`), floored at
    8-bit rounding noise; the data weight is `prior_scale / sigma^2`. `method`: "hqs" (hyper-Laplacian prior
    of exponent `alpha`, 0 < alpha <= 1) or "pnp" (plug-and-play HQS around `denoiser`, DPIR's schedule).
    `boundary`: "unknown" (the blur reached in from outside the frame: real photos), "circular" (the blur
    wrapped around: synthetic images), or "auto" (circular if the image is seamless across its wrap-around,
    `seam_ratio` < `SEAMLESS_RATIO`, else unknown). `progress` is called with the fraction done.
    Returns the restored image, the shape of `blurred`, clamped to [0, 1], float32.
    """
    planes = _as_planes(blurred, "blurred")
    kernel = check_kernel(kernel, tuple(planes.shape[-2:]))
    _check_options(method, alpha, prior_scale, boundary, inner_iterations, noise_sigma)
    sigma = estimate_noise(planes) if noise_sigma is None else float(noise_sigma)
    lam = prior_scale / max(sigma, QUANTISATION_SIGMA) ** 2
    # float32: 4x faster FFTs than float64 here, and the same result to 0.01 dB (the smallest denominator,
    # beta / lambda at the first step, is ~1e-5 even for noise-free 8-bit images)
    if boundary == "auto":
        boundary = "circular" if seam_ratio(planes) < SEAMLESS_RATIO else "unknown"
    problem = _Problem(planes.float(), kernel.float(), boundary)
    if method == "pnp":
        if denoiser is None:
            raise ValueError("method 'pnp' needs a denoiser (a function (image [1,3,H,W], sigma) -> image)")
        restored = problem.crop(_pnp(problem, max(sigma, QUANTISATION_SIGMA), denoiser, PNP_ITERATIONS,
                                     pnp_weight, progress))
    else:
        restored = problem.crop(_hqs(problem, lam, float(alpha), inner_iterations, float(beta_max), progress))
    return restored.clamp(0.0, 1.0).float().reshape(blurred.shape)


def deconvolve_batch(images: torch.Tensor, kernel: torch.Tensor | np.ndarray, noise_sigma: float | None = None,
                     method: str = "hqs", **options: object) -> torch.Tensor:
    """`deconvolve` for [N,3,H,W] batches (as the pipelines and `ganzoo evaluate` pass them), each image on
    its own; an image whose three channels are equal (grey) is deconvolved once and copied."""
    if images.dim() != 4:
        raise ValueError(f"images must be [N,C,H,W], got {list(images.shape)}")
    out = []
    for image in images:
        grey = image.shape[0] > 1 and bool((image == image[:1]).all())
        planes = image[:1] if grey else image
        restored = deconvolve(planes.cpu(), kernel, noise_sigma, method, **options)
        out.append(restored.expand_as(image) if grey else restored)
    return torch.stack(out).to(images.device)


def _check_options(method: str, alpha: float, prior_scale: float, boundary: str, inner: int,
                   noise_sigma: float | None) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {', '.join(BOUNDARIES)}, got {boundary!r}")
    if not 0.0 < float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if not (math.isfinite(prior_scale) and prior_scale > 0):
        raise ValueError(f"prior_scale must be a positive number, got {prior_scale}")
    if isinstance(inner, bool) or not isinstance(inner, int) or not 1 <= inner <= 100:
        raise ValueError(f"inner_iterations must be a whole number from 1 to 100, got {inner!r}")
    if noise_sigma is not None and not (math.isfinite(noise_sigma) and 0.0 <= noise_sigma <= 1.0):
        raise ValueError(f"noise_sigma must be a number from 0 to 1 (on the [0, 1] scale), got {noise_sigma}")
