"""Blind blur-kernel estimation: coarse to fine, L0-sparse sharp edges, least-squares kernels.

The scheme of Xu et al. 2013 ("Unnatural L0 sparse representation") and Pan et al. 2014 ("L0-regularized
intensity and gradient prior"). Over an image pyramid, from a kernel of ~5 px up to the full size, alternate

1. the latent step: x = argmin |k * x - y|^2 + lambda |grad x|_0, by half-quadratic splitting with a growing
   weight beta, each stage solved in closed form in the Fourier domain. It keeps only strong, sharp edges,
   which is what the kernel step needs (not a good-looking image);
2. the kernel step: k = argmin |M (grad x * k - grad y)|^2 + gamma |k|^2, by conjugate gradients with FFT
   convolutions; then k >= 0, weights below 5 % of the peak and small connected pieces removed, sum 1,
   centre of mass moved to the centre pixel.

M leaves out the frame's border (where the blur reaches in from outside the image) and clipped highlights,
dilated by the kernel (Hu et al. 2014, Pan et al. 2016): a saturated pixel does not obey y = k * x and would
pull the kernel towards a blob. The estimate is deterministic (no random numbers; FFTs on one thread).

The final kernel loses its weights below 20 % of the peak (stray mass rings in the deconvolution), gets one more
kernel step at full resolution against the image deconvolved by it (`refine_kernel`: all edges, not only the
L0 latent's strongest), and is then trusted only if it is thin (`thickness`), did not fill the largest window,
and passes a re-blur check (`reblur_ratio`). All this runs once per starting L0 weight (`Options.lambda_starts`),
and of the trusted estimates the one with the lowest re-blur ratio is kept; if none is trusted, the identity
kernel comes back with a note, and `--method auto` uses the network. Recorded camera shake has faint strokes
(fast motion between the knots where the camera lingered) that the 20 % clean-up cuts: the kept estimate's
pyramid kernel is also cleaned at 10 % and refined, and that kernel replaces it where it is trusted too and
explains the blurred image clearly better by generalised cross-validation (`gcv_score`, above the noise floor),
which, unlike the re-blur ratio, does not penalise the weaker regularisation a more spread kernel brings.
The kept kernel's centre of mass is left within half a pixel of the centre; `kernel_offset` gives the rest and
`shift_image` moves the deconvolved image by it (`pipelines.deconvolve_estimated`).

`estimate_kernel` is the entry point; the non-blind step that uses its kernel is `ganzoo.deconvolution`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from PIL import Image
from scipy import fft, ndimage
from skimage.transform import resize

__all__ = ["KERNEL_ERROR_SIGMA", "KernelEstimate", "MAX_KERNEL", "MIN_KERNEL", "Options", "auto_kernel_size",
           "check_kernel_size", "clean_kernel", "estimate_kernel", "gcv_score", "kernel_image", "kernel_offset",
           "kernel_step", "l0_latent", "reblur_ratio", "refine_kernel", "scaled_progress", "shift_image", "to_grey"]

MAX_KERNEL = 75  # px, the largest kernel estimated (the size of the largest evaluation blur)
MIN_KERNEL = 3
SATURATED = 0.97  # a pixel this bright (on [0, 1]) may be clipped; left out of the kernel step
FIRST_AUTO_WINDOW = 11  # px: an automatic window starts at this on the coarsest level
MIN_LEVEL_SIDE = 64  # px: the pyramid's coarsest image is no smaller than this
FLAT_GRADIENT = 2e-3  # mean |grad| below this: no edges to estimate from
CORE_SHARE = 0.2  # of the peak: weights below this are halo, not core, when sizing the next window
REFINE_SHARE = 0.9  # of an estimate's progress: the pyramid; the rest is `refine_kernel` (about a tenth of its time)
GCV_WEIGHTS = np.logspace(-6, -1, 31)  # `gcv_score`'s Tikhonov weights, tried in turn
FAINT_SHARE = 0.05  # of the progress bar: the faint-stroke alternative (one more refinement and its checks)
#: an estimated kernel's error acts on the deconvolution like noise of about this std (on [0, 1]), added to the
#: image's own: tuned on the development set (without it, ringing cost 1-3 dB there); the pipeline's
#: deconvolution and the re-blur check both use it
KERNEL_ERROR_SIGMA = 0.01
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Options:
    """The estimator's parameters (defaults tuned on the development set only, see README)."""

    iterations: int = 5  # latent/kernel alternations per pyramid level
    # L0 weight of the latent step at the start, divided by 1.1 each alternation (down to `lambda_min`): one
    # estimate per value, and of those the re-blur check trusts, the one with the lowest ratio is kept. No single
    # weight suits every image (8e-3 alone, on development cases: +1 dB on city photos, -1 dB on Levin's images)
    lambda_starts: tuple[float, ...] = (4e-3, 8e-3)
    lambda_min: float = 1e-4  # ...down to this
    # gamma, relative to the masked gradient energy of the latent: `kernel_weight` on windows up to `small_window`
    # px, `large_kernel_weight` on larger ones (a weaker ridge lets thin strokes of small kernels through; large
    # blur needs the stronger one). 0.3 instead of 1 everywhere: +0.19 dB over the 362 development cases, but
    # -0.5 dB on large blur, hence the split (see docs/evaluation.md)
    kernel_weight: float = 0.3
    large_kernel_weight: float = 1.0
    small_window: int = 25
    cg_iterations: int = 20
    prune_peak: float = 0.05  # kernel weights below this fraction of the peak are set to 0
    prune_mass: float = 0.1  # connected kernel pieces holding less than this share of the mass are removed
    level_ratio: float = math.sqrt(0.5)  # image scale from one pyramid level to the next coarser one
    max_side: int = 1024  # longer images are estimated on their central crop of this size
    max_thickness: float = 12.0  # a more diffuse estimate is not trusted (`thickness`)
    max_reblur: float = 1.1  # a larger `reblur_ratio` is not trusted
    kernel_error_sigma: float = KERNEL_ERROR_SIGMA  # the re-blur check's extra noise for the estimate's error
    final_prune: float = 0.2  # the final kernel: weights below this fraction of the peak set to 0 (stray mass
    # that survives the per-level clean-up moves the centre of mass and rings in the deconvolution)
    refinements: int = 1  # kernel steps at full resolution against the deconvolved image (`refine_kernel`)
    # the alternative final clean-up that keeps faint strokes (set it to `final_prune` for none), and by what
    # factor its kernel's `gcv_score` above the noise floor must be lower to replace the kept one. Chosen on 138
    # development cases, confirmed on 296 others: +0.22 to +0.45 dB on shake with faint strokes and on large
    # blur, -0.05 on constant-speed shake (docs/evaluation.md)
    faint_prune: float = 0.1
    faint_gcv_margin: float = 1.05

    def __post_init__(self) -> None:
        if not self.lambda_starts or min(self.lambda_starts) <= 0:
            raise ValueError(f"lambda_starts must hold at least one positive L0 weight, not {self.lambda_starts!r}")
        if min(self.kernel_weight, self.large_kernel_weight) <= 0:
            raise ValueError(f"the kernel ridge weights must be positive, not {self.kernel_weight!r} and "
                             f"{self.large_kernel_weight!r}")
        if not (0 <= self.faint_prune < 1 and 0 <= self.final_prune < 1):
            raise ValueError(f"the final clean-ups are fractions of the peak in [0, 1), not {self.final_prune!r} "
                             f"and {self.faint_prune!r}")
        if not self.faint_gcv_margin > 0:
            raise ValueError(f"faint_gcv_margin must be positive, not {self.faint_gcv_margin!r}")

    def ridge(self, window: int) -> float:
        """The kernel step's relative ridge weight for a kernel window of `window` px."""
        return self.kernel_weight if window <= self.small_window else self.large_kernel_weight


@dataclass
class KernelEstimate:
    """An estimated kernel [k, k] (non-negative, sum 1, centre of mass on the centre pixel) and how it was found."""

    kernel: np.ndarray
    size: int  # the kernel window used at full resolution (odd)
    automatic: bool  # whether `size` was chosen by `auto_kernel_size`
    saturated_fraction: float  # share of pixels left out of the kernel step as clipped highlights
    seconds: float
    note: str = ""  # non-empty when a fallback was taken (e.g. a flat image): say it to the user
    levels: list[int] = field(default_factory=list)  # kernel window per pyramid level, coarse to fine
    reblur: float = 0.0  # the kept estimate's `reblur_ratio` (lower: the kernel explains the blur better)
    faint: bool = False  # whether the kernel is the clean-up that keeps faint strokes (`Options.faint_prune`)


# -- input -----------------------------------------------------------------------------------------

def to_grey(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float64 [H, W] luma plane on [0, 1] from [H, W], [H, W, C], [C, H, W] or [1, C, H, W] values on [0, 1]
    (C = 1, 3 or 4; alpha ignored), numpy or torch."""
    # Rounded to single precision first: the estimate can turn on last-digit differences, so the same photo must
    # give the same plane whether it comes as float32 (the pipelines' tensors) or float64
    array = (image.detach().cpu().float().numpy() if isinstance(image, torch.Tensor)
             else np.asarray(image, np.float32)).astype(np.float64)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        array = array[..., :3] @ np.array([0.299, 0.587, 0.114])
    elif array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"expected a grey or colour image, got an array of shape {np.shape(image)}")
    if not np.isfinite(array).all():
        raise ValueError("the image holds values that are not finite")
    return np.clip(array, 0.0, 1.0)


def check_kernel_size(kernel_size: object) -> int:
    """`kernel_size` as an odd int in [MIN_KERNEL, MAX_KERNEL] (an even size is rounded up), else ValueError."""
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, (int, np.integer)):
        raise ValueError(f"kernel size must be a whole number of pixels, got {kernel_size!r}")
    if not MIN_KERNEL <= kernel_size <= MAX_KERNEL:
        raise ValueError(f"kernel size must lie in [{MIN_KERNEL}, {MAX_KERNEL}] px, got {kernel_size}")
    return int(kernel_size) | 1


def auto_kernel_size(height: int, width: int) -> int:
    """The window for an unknown kernel: MAX_KERNEL, less on small images (at most a third of the shorter
    side, so that the kernel step keeps an interior of real data). The pyramid then shrinks it to the
    support it finds (`_next_window`)."""
    return max(MIN_KERNEL, min(MAX_KERNEL, (min(height, width) // 3) | 1 if min(height, width) // 3 >= 3 else 3))


# -- Fourier helpers -------------------------------------------------------------------------------

def _otf(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The transform of `kernel` placed with its centre pixel at the origin of a `shape` grid."""
    padded = np.zeros(shape, np.float32)  # single precision: twice as fast, and ample for this
    kh, kw = kernel.shape
    padded[:kh, :kw] = kernel
    return fft.rfft2(np.roll(padded, (-(kh // 2), -(kw // 2)), axis=(0, 1)))


def _periodic(image: np.ndarray, pad: int) -> np.ndarray:
    """`image` mirrored outwards by `pad` px and faded to its mean, so that the FFT's wrap-around sees no edge.
    The result is at least `pad` px larger on each side, up to a fast FFT size."""
    h, w = image.shape
    shape = (fft.next_fast_len(h + 2 * pad, real=True), fft.next_fast_len(w + 2 * pad, real=True))
    extra = (shape[0] - h - pad, shape[1] - w - pad)
    mirrored = np.pad(image, ((pad, extra[0]), (pad, extra[1])), mode="symmetric")
    fade = np.outer(_fade(h, pad, extra[0]), _fade(w, pad, extra[1]))
    mean = image.mean()
    return mean + (mirrored - mean) * fade


def _fade(length: int, before: int, after: int) -> np.ndarray:
    """1 over `length`, a half cosine down to 0 over `before` px before and `after` px after."""
    ramp = lambda n: 0.5 - 0.5 * np.cos(np.pi * np.arange(1, n + 1) / (n + 1))  # noqa: E731
    return np.concatenate([ramp(before), np.ones(length), ramp(after)[::-1]])


def _gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences along x and y, 0 in the last column / row."""
    gx = np.zeros_like(image)
    gy = np.zeros_like(image)
    gx[:, :-1] = image[:, 1:] - image[:, :-1]
    gy[:-1] = image[1:] - image[:-1]
    return gx, gy


# -- the two steps ---------------------------------------------------------------------------------

def l0_latent(blurred: np.ndarray, kernel: np.ndarray, weight: float, kappa: float = 2.0,
              beta_max: float = 1e5) -> np.ndarray:
    """argmin_x |k * x - y|^2 + weight |grad x|_0 (Xu et al. 2013's half-quadratic scheme, Pan et al. 2014's
    `L0Restoration`): an image of flat regions and sharp edges, the same size as `blurred`."""
    pad = max(kernel.shape)
    padded = _periodic(blurred, pad)
    shape = padded.shape
    k_f = _otf(kernel, shape)
    dx_f = _otf(np.array([[1.0, -1.0, 0.0]]), shape)  # forward differences, as `_circular_gradients`
    dy_f = _otf(np.array([[1.0], [-1.0], [0.0]]), shape)
    data = np.conj(k_f) * fft.rfft2(padded)
    k_power = np.abs(k_f) ** 2
    d_power = np.abs(dx_f) ** 2 + np.abs(dy_f) ** 2
    latent = padded
    beta = 2 * weight
    while beta < beta_max:
        gx, gy = _circular_gradients(latent)
        small = gx ** 2 + gy ** 2 < weight / beta  # the L0 step: a gradient survives only if it is strong
        gx[small] = 0.0
        gy[small] = 0.0
        # D^T g in the image domain (one transform instead of two): the adjoint of a forward difference.
        prior = fft.rfft2(np.roll(gx, 1, axis=1) - gx + np.roll(gy, 1, axis=0) - gy)
        latent = fft.irfft2((data + beta * prior) / (k_power + beta * d_power), s=shape)
        beta *= kappa
    h, w = blurred.shape
    return latent[pad:pad + h, pad:pad + w]


def _circular_gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.roll(image, -1, axis=1) - image, np.roll(image, -1, axis=0) - image


def kernel_step(latent: np.ndarray, blurred: np.ndarray, mask: np.ndarray, start: np.ndarray,
                weight: float, iterations: int = 20) -> np.ndarray:
    """argmin_k |mask (grad latent * k - grad blurred)|^2 + gamma |k|^2 by conjugate gradients, from `start`
    (its shape is the kernel's); gamma is `weight` x the masked gradient energy of the latent (the normal
    matrix's diagonal), so the ridge is relative. Unconstrained:
    `clean_kernel` makes the result a kernel."""
    size = start.shape[0]
    h, w = latent.shape
    shape = (fft.next_fast_len(h + size, real=True), fft.next_fast_len(w + size, real=True))  # no wrap-around
    sources = [fft.rfft2(g, s=shape) for g in _gradients(latent)]
    targets = [g * mask for g in _gradients(blurred)]
    gamma = weight * sum(float((mask * np.abs(fft.irfft2(s, shape)[:h, :w]) ** 2).sum()) for s in sources)

    def forward(kernel: np.ndarray) -> list[np.ndarray]:
        k_f = _otf(kernel, shape)
        return [mask * fft.irfft2(s * k_f, s=shape)[:h, :w] for s in sources]

    def adjoint(residuals: list[np.ndarray]) -> np.ndarray:
        total = sum(np.conj(s) * fft.rfft2(r, s=shape) for s, r in zip(sources, residuals))
        full = np.roll(fft.irfft2(total, s=shape), (size // 2, size // 2), axis=(0, 1))
        return full[:size, :size]

    def normal(kernel: np.ndarray) -> np.ndarray:
        return adjoint(forward(kernel)) + gamma * kernel

    return _conjugate_gradients(normal, adjoint(targets), start.copy(), iterations)


def _conjugate_gradients(apply: Callable[[np.ndarray], np.ndarray], rhs: np.ndarray, x: np.ndarray,
                         iterations: int, tolerance: float = 1e-5) -> np.ndarray:
    r = rhs - apply(x)
    p = r.copy()
    rr = float((r * r).sum())
    stop = tolerance ** 2 * float((rhs * rhs).sum())
    for _ in range(iterations):
        if rr <= stop:
            break
        ap = apply(p)
        alpha = rr / float((p * ap).sum())
        x += alpha * p
        r -= alpha * ap
        rr_new = float((r * r).sum())
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def clean_kernel(kernel: np.ndarray, prune_peak: float = 0.05, prune_mass: float = 0.1) -> np.ndarray | None:
    """Non-negative, small weights and small connected pieces (8-connected) removed, sum 1, centre of mass
    moved to the centre pixel (an integer shift); None when nothing is left."""
    kernel = np.asarray(kernel, dtype=np.float64)
    if not np.isfinite(kernel).all():  # a diverged kernel step: no kernel
        return None
    k = np.where(kernel > prune_peak * kernel.max(), kernel, 0.0) if kernel.max() > 0 else np.zeros_like(kernel)
    labels, count = ndimage.label(k > 0, structure=np.ones((3, 3)))
    if count == 0:
        return None
    mass = ndimage.sum(k, labels, index=np.arange(1, count + 1))
    keep = np.concatenate([[False], mass >= prune_mass * mass.sum()])
    k = np.where(keep[labels], k, 0.0)
    total = k.sum()
    if not (np.isfinite(total) and total > 0):
        return None
    return _centred(k / total)


def kernel_offset(kernel: np.ndarray) -> tuple[float, float]:
    """(dy, dx): the kernel's centre of mass minus its centre pixel (within half a pixel after `clean_kernel`).
    Deconvolving by such a kernel leaves the result shifted by minus this; `shift_image` moves it back."""
    k = np.asarray(kernel, dtype=np.float64)
    if k.size <= 1 or k.sum() <= 0:
        return 0.0, 0.0
    cy, cx = ndimage.center_of_mass(k)
    return float(cy - k.shape[0] // 2), float(cx - k.shape[1] // 2)


def shift_image(image: torch.Tensor, offset: tuple[float, float], pad: int = 16) -> torch.Tensor:
    """`image` [..., H, W] moved by `offset` (dy, dx) px, sub-pixel: a phase ramp in the Fourier domain of the
    image mirrored outwards by `pad` px (no interpolation blur; the mirror keeps the wrap-around away)."""
    dy, dx = offset
    if dy == 0 and dx == 0:
        return image
    pad = min(pad, image.shape[-2] - 1, image.shape[-1] - 1)
    array = image.detach().cpu().double().numpy()
    widths = [(0, 0)] * (array.ndim - 2) + [(pad, pad), (pad, pad)]
    padded = np.pad(array, widths, mode="symmetric")
    h, w = padded.shape[-2:]
    ramp = np.exp(-2j * np.pi * (fft.fftfreq(h)[:, None] * dy + fft.rfftfreq(w)[None, :] * dx))
    moved = fft.irfft2(fft.rfft2(padded) * ramp, s=(h, w))
    moved = moved[..., pad:pad + image.shape[-2], pad:pad + image.shape[-1]]
    return torch.from_numpy(np.ascontiguousarray(moved)).to(image.dtype).to(image.device)


def _centred(kernel: np.ndarray) -> np.ndarray:
    """`kernel` shifted by whole pixels so that its centre of mass is within half a pixel of the centre."""
    cy, cx = ndimage.center_of_mass(kernel)
    size = kernel.shape[0]
    dy, dx = size // 2 - round(cy), size // 2 - round(cx)
    return ndimage.shift(kernel, (dy, dx), order=0, mode="constant")


# -- the pyramid -----------------------------------------------------------------------------------

def _levels(size: int, ratio: float, short_side: int, min_side: int = MIN_LEVEL_SIDE) -> list[tuple[float, int]]:
    """(image scale, kernel window) per level, coarse to fine: the coarsest window is about 5 px, or larger
    where the image would otherwise shrink below `min_side` px (too few edges to estimate anything from)."""
    count = max(int(math.floor(math.log(5 / size) / math.log(ratio))), 0) + 1 if size > 5 else 1
    if short_side > min_side:
        count = min(count, int(math.floor(math.log(min_side / short_side) / math.log(ratio))) + 1)
    count = max(count, 1)
    levels = []
    for level in reversed(range(count)):
        scale = ratio ** level
        levels.append((scale, max(MIN_KERNEL, int(math.ceil(size * scale)) | 1)))
    return levels


def _resized_kernel(kernel: np.ndarray, factor: float, size: int) -> np.ndarray:
    """`kernel` magnified by `factor` about its centre onto a `size` x `size` window, sum 1."""
    grown = ndimage.zoom(kernel, factor, order=1, mode="grid-constant", grid_mode=True)
    grown = np.maximum(grown, 0)
    out = np.zeros((size, size))
    n = grown.shape[0]
    # Centre pixel onto centre pixel; crop or pad symmetrically.
    src0, dst0 = max((n - size) // 2, 0), max((size - n) // 2, 0)
    m = min(n, size)
    out[dst0:dst0 + m, dst0:dst0 + m] = grown[src0:src0 + m, src0:src0 + m]
    if out.sum() <= 0:
        out[size // 2, size // 2] = 1.0
    return _centred(out / out.sum())


def _support_window(kernel: np.ndarray, mass: float = 0.97) -> int:
    """The smallest odd window about the centre that holds `mass` of the kernel (faint outliers aside)."""
    centre = kernel.shape[0] // 2
    ys, xs = np.indices(kernel.shape)
    reach = np.maximum(np.abs(ys - centre), np.abs(xs - centre)).ravel()
    order = np.argsort(reach, kind="stable")
    cumulative = np.cumsum(kernel.ravel()[order])
    return 2 * int(reach[order][np.searchsorted(cumulative, mass * cumulative[-1])]) + 1


def _kernel_mask(blurred: np.ndarray, size: int) -> np.ndarray:
    """1 where the kernel step may trust y = k * x: away from the border and from clipped highlights."""
    mask = np.zeros(blurred.shape, np.float32)
    border = size // 2 + 1
    mask[border:-border, border:-border] = 1.0
    saturated = blurred >= SATURATED
    if saturated.any():
        near = ndimage.binary_dilation(saturated, structure=np.ones((size + 2, size + 2), bool))
        mask[near] = 0.0
    return mask


def _initial_kernel(size: int) -> np.ndarray:
    kernel = np.zeros((size, size))
    kernel[size // 2, size // 2 - 1: size // 2 + 1] = 0.5  # Pan et al.'s start: a 2 px line
    return kernel


def estimate_kernel(image: np.ndarray | torch.Tensor, kernel_size: int | None = None,
                    progress: Progress | None = None, options: Options = Options()) -> KernelEstimate:
    """The blur kernel of a uniformly blurred image ([H, W], [H, W, C] or [1, C, H, W] on [0, 1]).

    `kernel_size` (odd, 3..75 px) fixes the window; None chooses it (`auto_kernel_size`, then each pyramid level
    shrinks the next one's window to the support it found plus a margin). One estimate per L0 weight in
    `options.lambda_starts`; the trusted one that explains the blur best (`reblur_ratio`) is kept, or its
    clean-up that keeps faint strokes where that explains the blur clearly better (`faint` says which).
    `progress(fraction, message)` is called after every alternation. A flat image (no edges), one too small, or
    one where no estimate is trusted gives the identity kernel, with `note` saying why.
    """
    started = time.perf_counter()
    grey = _central_crop(to_grey(image), options.max_side)
    automatic = kernel_size is None
    size = auto_kernel_size(*grey.shape) if automatic else check_kernel_size(kernel_size)
    if min(grey.shape) < 2 * size + 1:
        if automatic:
            return _identity(started, f"the image ({grey.shape[1]}x{grey.shape[0]} px) is too small to estimate a "
                                      "blur kernel from: returned the identity kernel (no deblurring)")
        raise ValueError(f"a {size} px kernel needs an image of at least {2 * size + 1} px on each side; this one "
                         f"is {grey.shape[1]}x{grey.shape[0]} (choose a smaller --kernel-size)")
    if np.abs(np.diff(grey, axis=1)).mean() + np.abs(np.diff(grey, axis=0)).mean() < FLAT_GRADIENT:
        return _identity(started, "the image is flat (no edges to estimate a blur from): returned the identity "
                                  "kernel (no deblurring)", size, automatic)
    count = len(options.lambda_starts)
    keep_faint = options.faint_prune != options.final_prune
    faint_share = FAINT_SHARE if keep_faint else 0.0
    best, first_note = None, ""
    for index, lambda_start in enumerate(options.lambda_starts):
        stage = f"kernel estimation, {index + 1} of {count}: " if count > 1 else "kernel estimation: "
        part = scaled_progress(progress, (1 - faint_share) * index / count, (1 - faint_share) * (index + 1) / count,
                               prefix=stage)
        pyramid, saturated, windows = _coarse_to_fine(grey, size, automatic, lambda_start,
                                                      scaled_progress(part, 0.0, _pyramid_share(options)), options)
        kernel = _finished(grey, pyramid, options.final_prune, options,
                           scaled_progress(part, _pyramid_share(options), 1.0, "refining at full resolution"))
        ratio, note = _trust(grey, kernel, size, automatic, windows, options)
        if note:
            first_note = first_note or note
        elif best is None or ratio < best[0]:
            best = ratio, kernel, saturated, windows, pyramid
    if best is None:
        return _identity(started, first_note, size, automatic)
    ratio, kernel, saturated, windows, pyramid = best
    faint = None
    if keep_faint:
        faint = _faint_alternative(grey, kernel, pyramid, size, automatic, windows, options,
                                   scaled_progress(progress, 1 - faint_share, 1.0,
                                                   "refining the clean-up that keeps faint strokes"))
    if faint is not None:
        kernel, ratio = faint
    if progress is not None:
        progress(1.0, "kernel estimated")
    return KernelEstimate(kernel, kernel.shape[0], automatic, saturated, time.perf_counter() - started,
                          levels=windows, reblur=ratio, faint=faint is not None)


def _pyramid_share(options: Options) -> float:
    return REFINE_SHARE if options.refinements else 1.0


def _finished(grey: np.ndarray, pyramid: np.ndarray | None, prune: float, options: Options,
              progress: Callable[[float], None] | None) -> np.ndarray | None:
    """The pyramid's kernel through the final clean-up at `prune` of the peak, then `refine_kernel` (cleaning at
    the same level)."""
    kernel = clean_kernel(pyramid, prune, options.prune_mass) if pyramid is not None else None
    if kernel is not None:
        kernel = refine_kernel(grey, kernel, dataclasses.replace(options, final_prune=prune), progress)
    return kernel


def _faint_alternative(grey: np.ndarray, kernel: np.ndarray, pyramid: np.ndarray, size: int, automatic: bool,
                       windows: list[int], options: Options, progress: Callable[[float], None] | None,
                       ) -> tuple[np.ndarray, float] | None:
    """(the kernel cleaned at `options.faint_prune` instead, its re-blur ratio) where it is trusted and its
    `gcv_score` above the image's noise floor is lower than the kept kernel's by the factor
    `options.faint_gcv_margin`; else None."""
    from ganzoo import deconvolution

    faint = _finished(grey, pyramid, options.faint_prune, options, progress)
    ratio, note = _trust(grey, faint, size, automatic, windows, options)
    if note:
        return None
    # GCV estimates the prediction error, noise included: the noise variance is a floor both kernels share, and
    # on a noisy photo it would hide the difference between them (as a plain ratio of the scores did)
    floor = deconvolution.estimate_noise(torch.from_numpy(np.ascontiguousarray(grey, dtype=np.float32))) ** 2
    if (gcv_score(grey, faint) - floor) * options.faint_gcv_margin >= gcv_score(grey, kernel) - floor:
        return None
    return faint, ratio


def gcv_score(grey: np.ndarray, kernel: np.ndarray, weights: np.ndarray = GCV_WEIGHTS) -> float:
    """How well `kernel` explains the blurred luma, by generalised cross-validation (Reeves & Mersereau 1992):
    for a Tikhonov deconvolution with a gradient penalty of weight w, re-blurred (in the Fourier domain: the
    influence A = |K|^2 / (|K|^2 + w |D|^2)), the mean squared residual away from the border and from clipped
    highlights over (the mean of 1 - A)^2, at the best of `weights`. Lower is better. The denominator counts the
    degrees of freedom the deconvolution leaves, so a spread kernel, which needs more regularisation, is not
    penalised for it as the plain re-blur residual (`reblur_ratio`) penalises it. Only |K| matters."""
    size = kernel.shape[0]
    padded = _periodic(grey, size)
    shape = padded.shape
    blurred_f = fft.rfft2(padded)
    k_power = np.abs(_otf(kernel, shape)) ** 2
    d_power = (np.abs(_otf(np.array([[1.0, -1.0, 0.0]]), shape)) ** 2
               + np.abs(_otf(np.array([[1.0], [-1.0], [0.0]]), shape)) ** 2)
    # rfft2 holds half the spectrum: the columns other than the first (and the last, for an even width) stand
    # for two frequencies each
    counts = np.full(k_power.shape[1], 2.0)
    counts[0] = 1.0
    if shape[1] % 2 == 0:
        counts[-1] = 1.0
    h, w = grey.shape
    inside = _kernel_mask(grey, size)[size:h - size, size:w - size] > 0
    best = math.inf
    for weight in weights:
        leave = weight * d_power / (k_power + weight * d_power + 1e-30)  # 1 - A
        residual = fft.irfft2(leave * blurred_f, s=shape)[size + size:size + h - size, size + size:size + w - size]
        dof = float((leave * counts).sum() / counts.sum() / shape[0])
        if inside.any() and dof > 0:
            best = min(best, float((residual[inside] ** 2).mean()) / dof ** 2)
    return best


def _trust(grey: np.ndarray, kernel: np.ndarray | None, size: int, automatic: bool, windows: list[int],
           options: Options) -> tuple[float, str]:
    """(the estimate's `reblur_ratio`, "") when it is trusted; (inf, why not) when it is not."""
    if kernel is None:
        return math.inf, ("no consistent blur kernel was found (the estimate vanished): returned the identity "
                          "kernel (no deblurring)")
    if thickness(kernel) > options.max_thickness:
        return math.inf, (f"the kernel estimate is diffuse (thickness {thickness(kernel):.0f} > "
                          f"{options.max_thickness:.0f} px), not a camera path, so it is not trusted: returned the "
                          "identity kernel (no deblurring)")
    if automatic and windows and windows[-1] >= size:
        return math.inf, (f"the kernel estimate filled the largest window ({size} px): the blur may be larger "
                          "than can be estimated here, so it is not trusted: returned the identity kernel (no "
                          "deblurring)")
    ratio = reblur_ratio(grey, kernel, options.kernel_error_sigma)
    if ratio > options.max_reblur:
        return math.inf, (f"the image deconvolved by the kernel estimate, blurred again, does not match the input "
                          f"(re-blur ratio {ratio:.2f} > {options.max_reblur:.2f}), so the estimate is not "
                          "trusted: returned the identity kernel (no deblurring)")
    return ratio, ""


def reblur_ratio(grey: np.ndarray, kernel: np.ndarray, kernel_error_sigma: float = KERNEL_ERROR_SIGMA) -> float:
    """A no-reference check of an estimate: deconvolve the luma by it (`deconvolution.deconvolve`, as the
    pipeline does), blur the result by it again, and compare with the input away from the border: the RMS of
    that residual over the mean absolute vertical gradient of the input. A kernel that explains the blur leaves
    the residual well below the image's edge content (0.3-1.0 on the development set, one 1.2); a wrong one
    does not (1.2-1.7 where the estimate fell 1-9 dB below the network). Clipped highlights are left out."""
    from ganzoo import deconvolution

    kernel = np.ascontiguousarray(kernel, dtype=np.float64)
    plane = torch.from_numpy(np.ascontiguousarray(grey, dtype=np.float32))
    sigma = math.hypot(deconvolution.estimate_noise(plane), kernel_error_sigma)
    restored = deconvolution.deconvolve(plane, kernel, sigma).double().numpy()
    size = kernel.shape[0]
    shape = (restored.shape[0] + size, restored.shape[1] + size)  # no wrap-around
    reblurred = fft.irfft2(fft.rfft2(restored, s=shape) * fft.rfft2(kernel, s=shape), s=shape)
    reblurred = reblurred[size // 2:size // 2 + grey.shape[0], size // 2:size // 2 + grey.shape[1]]
    inside = _kernel_mask(grey, size)[size:-size, size:-size] > 0  # clipped highlights do not obey the model
    residual = (grey - reblurred)[size:-size, size:-size][inside]
    edges = np.abs(np.diff(grey, axis=0, append=grey[-1:]))[size:-size, size:-size][inside]
    if residual.size == 0 or edges.mean() <= 0:
        return 0.0
    return float(np.sqrt((residual ** 2).mean()) / edges.mean())


def _coarse_to_fine(grey: np.ndarray, size: int, automatic: bool, lambda_start: float, progress: Progress | None,
                    options: Options) -> tuple[np.ndarray | None, float, list[int]]:
    levels = _levels(size, options.level_ratio, min(grey.shape))
    weight = lambda_start
    if automatic:  # start small: each level's window then grows to the support found (`_next_window`)
        levels[0] = (levels[0][0], min(levels[0][1], FIRST_AUTO_WINDOW))
    kernel = _initial_kernel(levels[0][1])
    previous_scale = levels[0][0]
    windows = []
    steps = len(levels) * options.iterations
    for index, (scale, window) in enumerate(levels):
        if automatic and index > 0:
            window = min(window, _next_window(kernel, scale / previous_scale))
        kernel = _resized_kernel(kernel, scale / previous_scale, window) if index else kernel
        shape = (max(round(grey.shape[0] * scale), 2 * window + 1), max(round(grey.shape[1] * scale), 2 * window + 1))
        blurred = resize(grey, shape, order=1, anti_aliasing=scale < 1, mode="symmetric").astype(np.float32)
        mask = _kernel_mask(blurred, window)
        for iteration in range(options.iterations):
            latent = l0_latent(blurred, kernel, weight)
            raw = kernel_step(latent, blurred, mask, kernel, options.ridge(window), options.cg_iterations)
            cleaned = clean_kernel(raw, options.prune_peak, options.prune_mass)
            if cleaned is None:
                return None, 0.0, windows
            kernel = cleaned
            weight = max(weight / 1.1, options.lambda_min)
            if progress is not None:
                done = index * options.iterations + iteration + 1
                progress(done / steps, f"level {index + 1}/{len(levels)} ({window} px)")
        windows.append(window)
        previous_scale = scale
    saturated = float((_kernel_mask(grey, 1) == 0).mean()) if (grey >= SATURATED).any() else 0.0
    return kernel, saturated, windows


def refine_kernel(grey: np.ndarray, kernel: np.ndarray, options: Options = Options(),
                  progress: Callable[[float], None] | None = None) -> np.ndarray:
    """`options.refinements` more kernel steps at full resolution, each against the image deconvolved by the
    kernel so far (`deconvolution.deconvolve`, a hyper-Laplacian prior) in place of the L0 latent. The L0 latent
    keeps only the strongest edges, flattened; the deconvolved image has all of them with their real profiles,
    so the kernel step sees far more of the blur. Same window; a step whose kernel vanishes is dropped.
    `progress(fraction)` is called after each step."""
    from ganzoo import deconvolution

    plane = torch.from_numpy(np.ascontiguousarray(grey, dtype=np.float32))
    sigma = math.hypot(deconvolution.estimate_noise(plane), options.kernel_error_sigma)
    mask = _kernel_mask(grey, kernel.shape[0])
    for step in range(options.refinements):
        latent = deconvolution.deconvolve(plane, kernel, sigma).double().numpy()
        raw = kernel_step(latent, grey, mask, kernel, options.ridge(kernel.shape[0]), options.cg_iterations)
        refined = clean_kernel(raw, options.final_prune, options.prune_mass)
        if progress is not None:
            progress((step + 1) / options.refinements)
        if refined is None:
            break
        kernel = refined
    return kernel


def scaled_progress(progress: Progress | None, start: float, end: float, message: str = "", prefix: str = "",
                    ) -> Callable[..., None] | None:
    """`progress` for a stage that covers [start, end] of the work (its own fraction goes 0..1; its message, or
    `message` where it gives none, after `prefix`)."""
    if progress is None:
        return None
    return lambda fraction, text=message: progress(start + (end - start) * fraction, prefix + text)


def thickness(kernel: np.ndarray) -> float:
    """How many pixels hold 90 % of the kernel's mass, per pixel of its support's width: a camera path is a
    thin curve (about 3-10 on the development set), a failed estimate a diffuse cloud (12-30)."""
    ordered = np.sort(kernel.ravel())[::-1]
    return (np.searchsorted(ordered.cumsum(), 0.9 * ordered.sum()) + 1) / _support_window(kernel)


def _next_window(kernel: np.ndarray, factor: float) -> int:
    """The next level's window for a kernel of this support: magnified plus 4 px, and a quarter more when the
    kernel fills its window (it may be larger than the window let it be)."""
    # The support of the kernel's core, not of its faint halo: on a coarse level the halo is mostly noise, and a
    # window grown to it lets the next level spread more of it (+0.09 dB over the 362 development cases).
    support = _support_window(np.where(kernel >= CORE_SHARE * kernel.max(), kernel, 0))
    growth = 1.25 if support >= kernel.shape[0] - 2 else 1.0
    return int(math.ceil(support * factor * growth + 4)) | 1


def _central_crop(grey: np.ndarray, max_side: int) -> np.ndarray:
    h, w = grey.shape
    top, left = max((h - max_side) // 2, 0), max((w - max_side) // 2, 0)
    return grey[top:top + max_side, left:left + max_side]


def _identity(started: float, note: str, size: int = 1, automatic: bool = True) -> KernelEstimate:
    kernel = np.ones((1, 1))
    return KernelEstimate(kernel, 1, automatic, 0.0, time.perf_counter() - started, note=note)


def kernel_image(kernel: np.ndarray | torch.Tensor) -> Image.Image:
    """The kernel as an 8-bit grey PNG-ready image scaled to its peak (as `ganzoo make-blur-set` writes kernels;
    `ganzoo deblur --kernel` and `degrade.load_kernels` read it back, normalised to sum 1)."""
    k = np.asarray(kernel.detach().cpu() if isinstance(kernel, torch.Tensor) else kernel, dtype=np.float64)
    return Image.fromarray(np.round(k / k.max() * 255).astype(np.uint8), mode="L")
