"""PSNR, SSIM and Fréchet distance: the only place these metrics are computed."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg

_SSIM_RADIUS = 5  # skimage: int(truncate * sigma + 0.5) with truncate 3.5, sigma 1.5
_SSIM_SIGMA = 1.5
_SSIM_K1, _SSIM_K2 = 0.01, 0.03
_FID_EPS = 1e-6


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma as MATLAB's rgb2ycbcr: RGB [N,3,H,W] in [0,1] -> Y [N,1,H,W]."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"rgb_to_y needs [N,3,H,W], got {list(x.shape)}")
    weights = x.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
    return (16.0 + (x * weights).sum(1, keepdim=True)) / 255.0


def _prepare(
    pred: torch.Tensor,
    target: torch.Tensor,
    crop_border: int,
    y_channel: bool,
    data_range: float,
    min_size: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate, crop the border, convert to float64 and optionally to luma."""
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target shapes differ: {list(pred.shape)} vs {list(target.shape)}"
        )
    if pred.dim() != 4:
        raise ValueError(f"expected [N,C,H,W] tensors, got {list(pred.shape)}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    height, width = pred.shape[-2] - 2 * crop_border, pred.shape[-1] - 2 * crop_border
    if min(height, width) < min_size:
        raise ValueError(
            f"crop_border={crop_border} leaves {height}x{width} of {list(pred.shape[-2:])}; "
            f"need at least {min_size}x{min_size}"
        )
    if y_channel and pred.shape[1] != 3:
        raise ValueError(f"y_channel needs 3 RGB channels, got {pred.shape[1]}")
    region = (
        ...,
        slice(crop_border, crop_border + height),
        slice(crop_border, crop_border + width),
    )
    pred, target = pred[region].double(), target[region].double()
    if y_channel:
        pred = rgb_to_y(pred / data_range) * data_range
        target = rgb_to_y(target / data_range) * data_range
    return pred, target


def psnr(
    pred: torch.Tensor,
    target: torch.Tensor,
    crop_border: int = 0,
    y_channel: bool = False,
    data_range: float = 1.0,
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, [N] float64 (inf for identical images)."""
    pred, target = _prepare(pred, target, crop_border, y_channel, data_range)
    mse = (pred - target).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(data_range**2 / mse)


def _gaussian_blur(x: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter over [B,1,H,W], keeping only the fully covered (valid) region."""
    coords = torch.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=x.dtype, device=x.device)
    taps = torch.exp(-(coords**2) / (2 * _SSIM_SIGMA**2))
    taps = taps / taps.sum()
    x = F.conv2d(x, taps.view(1, 1, -1, 1))
    return F.conv2d(x, taps.view(1, 1, 1, -1))


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    crop_border: int = 0,
    y_channel: bool = False,
    data_range: float = 1.0,
) -> torch.Tensor:
    """Structural similarity per image, [N] float64, matching skimage's Gaussian-weighted SSIM.

    Same as structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False): averaged over the valid region and channels.
    """
    window = 2 * _SSIM_RADIUS + 1
    pred, target = _prepare(pred, target, crop_border, y_channel, data_range, min_size=window)
    n, c, h, w = pred.shape
    x, y = pred.reshape(n * c, 1, h, w), target.reshape(n * c, 1, h, w)
    moments = _gaussian_blur(torch.cat([x, y, x * x, y * y, x * y]))
    mu_x, mu_y, xx, yy, xy = moments.chunk(5)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    c1, c2 = (_SSIM_K1 * data_range) ** 2, (_SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return ssim_map.reshape(n, -1).mean(1)


def detail_ratio(pred: torch.Tensor, target: torch.Tensor, crop_border: int = 0) -> torch.Tensor:
    """How much fine detail an output has next to its reference, per image, [N] float64: the mean luma
    (BT.601) gradient magnitude of `pred` over that of `target` (forward differences, after the border
    crop). 1 means as much edge and texture energy as the reference; a blurry output scores below 1 (a
    bicubic x4 upscale 0.3-0.55 on skimage photos), added noise or lattice above. PSNR rewards the blur;
    this says it."""
    pred, target = _prepare(pred, target, crop_border, y_channel=pred.shape[1] == 3, data_range=1.0, min_size=2)

    def mean_gradient(x: torch.Tensor) -> torch.Tensor:
        dy, dx = x[..., 1:, :-1] - x[..., :-1, :-1], x[..., :-1, 1:] - x[..., :-1, :-1]
        return (dy.pow(2) + dx.pow(2)).sqrt().mean(dim=(1, 2, 3))

    return mean_gradient(pred) / mean_gradient(target).clamp_min(1e-12)


def _as_features(feats: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    if isinstance(feats, torch.Tensor):
        feats = feats.detach().cpu().double().numpy()
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"{name} must be [N,D] with N >= 2, got shape {feats.shape}")
    if not np.isfinite(feats).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return feats


def frechet_distance(
    feats_a: np.ndarray | torch.Tensor, feats_b: np.ndarray | torch.Tensor
) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [N,D] (the FID formula)."""
    a, b = _as_features(feats_a, "feats_a"), _as_features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():
        # Singular covariances (fewer samples than dimensions) make sqrtm blow up.
        offset = np.eye(len(cov_a)) * _FID_EPS
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean).real)


# -- grid (lattice) artefacts -----------------------------------------------------------------------

GRID_PERIOD = 4  # the lattice frequencies k*H/4, k*W/4 hold periods 2 and 4 (and their mixtures)
_GRID_NEIGHBOURHOOD = 4  # radius (bins) of the spectrum neighbourhood a peak is compared with
_QUANTISATION_NOISE = 1 / 255 / np.sqrt(12)  # standard deviation of uniform rounding to 8 bits


def grid_artifact_score(image: torch.Tensor | np.ndarray) -> float:
    """How strongly an image carries a periodic pixel lattice of period 2 or 4 (checkerboard, crosshatch).

    The luma (BT.601, as `rgb_to_y`; a single-channel image is used as is) is cropped to a multiple of
    4 from the top left, mean-subtracted, Hann-windowed (so the borders add no spectral lines), and
    Fourier-transformed; the log magnitude is taken of |F| plus the magnitude that 8-bit rounding
    noise would have (so float images smoother than any real one have no spurious peaks). At each of the 15 lattice frequencies (k*H/4, l*W/4) with k, l in 0..3, not both
    0, the peak height is the log magnitude (natural log) of that bin minus the mean log magnitude of
    its 9x9 neighbourhood (wrapped around the spectrum's edges, the bin itself left out). The score is
    the mean of the 15 peak heights: about 0 for natural images (no peaks; their spectra fall smoothly),
    1 for a lattice e = 2.7 times the surrounding spectrum, more for stronger ones. Issue 16's definition,
    with the neighbourhood fixed at 9x9 (that reproduces its table within 0.1).

    `image`: RGB or grey, [3 or 1, H, W] or [1, 3 or 1, H, W] tensor in [0, 1], or an HxW(x3) array in
    [0, 1] or uint8; at least 16x16 pixels.
    """
    luma = _grid_luma(image)
    height, width = luma.shape
    luma = luma[: height - height % GRID_PERIOD, : width - width % GRID_PERIOD]
    height, width = luma.shape
    if min(height, width) < 4 * GRID_PERIOD:
        raise ValueError(f"grid_artifact_score needs at least 16x16 pixels, got {height}x{width}")
    window = np.outer(np.hanning(height), np.hanning(width))
    # The floor is the magnitude 8-bit quantisation noise has: images smoother than that (synthetic,
    # float) would otherwise show the ripples of rounding errors as peaks.
    floor = _QUANTISATION_NOISE * np.sqrt((window**2).sum())
    spectrum = np.log(np.abs(np.fft.fft2((luma - luma.mean()) * window)) + floor)
    offsets = np.arange(-_GRID_NEIGHBOURHOOD, _GRID_NEIGHBOURHOOD + 1)
    ring = np.ones((len(offsets), len(offsets)), dtype=bool)
    ring[_GRID_NEIGHBOURHOOD, _GRID_NEIGHBOURHOOD] = False
    heights = []
    for k in range(GRID_PERIOD):
        for l in range(GRID_PERIOD):
            if k == l == 0:
                continue
            rows = (k * height // GRID_PERIOD + offsets) % height
            cols = (l * width // GRID_PERIOD + offsets) % width
            patch = spectrum[np.ix_(rows, cols)]
            heights.append(patch[_GRID_NEIGHBOURHOOD, _GRID_NEIGHBOURHOOD] - patch[ring].mean())
    return float(np.mean(heights))


def _grid_luma(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """An HxW float64 luma plane in [0, 1] from the inputs `grid_artifact_score` accepts."""
    if isinstance(image, torch.Tensor):
        x = image.detach().cpu().double()
        if x.dim() == 4:
            if x.shape[0] != 1:
                raise ValueError(f"grid_artifact_score takes one image, got a batch of {x.shape[0]}")
            x = x[0]
        if x.dim() != 3 or x.shape[0] not in (1, 3):
            raise ValueError(f"expected [3 or 1,H,W] or [1,3 or 1,H,W], got {list(image.shape)}")
        return (rgb_to_y(x[None])[0, 0] if x.shape[0] == 3 else x[0]).numpy()
    array = np.asarray(image)
    if array.dtype == np.uint8:
        array = array / 255.0
    array = array.astype(np.float64)
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return rgb_to_y(torch.from_numpy(array[..., :3]).permute(2, 0, 1)[None])[0, 0].numpy()
    if array.ndim != 2:
        raise ValueError(f"expected an HxW or HxWx3 array, got shape {array.shape}")
    return array


STRUCTURE_BLUR_SIGMA = 1.0  # pixels: wipes out period-2 texture, damps period 4 to 0.3, keeps edges and layout


def structure_ssim(pred: torch.Tensor, target: torch.Tensor, blur_sigma: float = STRUCTURE_BLUR_SIGMA) -> torch.Tensor:
    """Content-structure similarity per image, [N] float64: `ssim` of the BT.601 luma of both images after a
    Gaussian blur of `blur_sigma` pixels (reflect padding). The blur removes the finest texture, so the score
    says how well the photo's edges and layout survive (a blurred reconstruction still loses), largely
    whatever the palette."""
    if pred.shape != target.shape or pred.dim() != 4 or pred.shape[1] != 3:
        raise ValueError(f"structure_ssim needs two RGB [N,3,H,W] tensors of one shape, got {list(pred.shape)} "
                         f"and {list(target.shape)}")
    from torchvision.transforms.functional import gaussian_blur

    kernel = 2 * int(3 * blur_sigma + 0.5) + 1
    pred_y, target_y = (gaussian_blur(rgb_to_y(x.double()), [kernel, kernel], [blur_sigma, blur_sigma])
                        for x in (pred, target))
    return ssim(pred_y, target_y)


# -- deblurring: shift alignment, kernel similarity, error ratio ---------------------------------------

ALIGN_CROP = 15  # pixels cut from each border of the reference (Levin et al. 2009, SelfDeblur)
ALIGN_MAX_SHIFT = 5.0  # pixels searched in each direction
ALIGN_STEP = 0.25  # pixels between the shifts tried


def evaluation_planes(*images: torch.Tensor) -> list[torch.Tensor]:
    """The planes deblurring is scored on, each [N,1,H,W] float64: the images themselves if all are grey (one
    channel, or three equal ones), else their BT.601 luma (`rgb_to_y`), as SelfDeblur's evaluation scripts
    score colour images. All images are scored on the same kind of plane."""
    for x in images:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected [N,1 or 3,H,W], got {list(x.shape)}")
    images = tuple(x.double() for x in images)
    if all(x.shape[1] == 1 or bool((x == x[:, :1]).all()) for x in images):
        return [x[:, :1] for x in images]
    return [rgb_to_y(x.expand(-1, 3, -1, -1)) for x in images]


def align_to_reference(pred: torch.Tensor, target: torch.Tensor, crop: int = ALIGN_CROP,
                       max_shift: float = ALIGN_MAX_SHIFT, step: float = ALIGN_STEP,
                       ) -> tuple[torch.Tensor, torch.Tensor, tuple[float, float]]:
    """Levin et al.'s `comp_upto_shift`, as SelfDeblur's evaluation uses it: crop `crop` px from each border of
    the reference, move the estimate by every sub-pixel shift (dy, dx) in [-max_shift, max_shift] in steps of
    `step` (bilinear interpolation), and keep the shift with the smallest sum of squared differences.

    `pred`, `target`: [1,C,H,W] of one size, or planes [H,W]; colour images are compared on
    `evaluation_plane`. Returns (aligned estimate, cropped reference) as [1,1,h,w] float64 and the shift:
    aligned[i, j] = pred[i + crop + dy, j + crop + dx]. A blind method's kernel, and so its image, is only
    defined up to a translation; this scores the image, not where it sits.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {list(pred.shape)} vs {list(target.shape)}")
    pred, target = _planes(pred, target)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {list(pred.shape)} vs {list(target.shape)}")
    reach = math.ceil(max_shift)
    if crop < reach:
        raise ValueError(f"crop ({crop}) must be at least the largest shift ({max_shift})")
    h, w = pred.shape[0] - 2 * crop, pred.shape[1] - 2 * crop
    if min(h, w) < 1:
        raise ValueError(f"a {pred.shape[0]}x{pred.shape[1]} image leaves nothing after a {crop} px crop")
    steps = round(max_shift / step)
    shifts = [i * step for i in range(-steps, steps + 1)]
    reference = target[crop:crop + h, crop:crop + w]
    ssd = _ssd_over_shifts(pred, reference, crop, shifts)
    index = int(ssd.argmin())  # the first smallest, dy the outer loop as in comp_upto_shift
    best = (float(ssd.flatten()[index]), shifts[index // len(shifts)], shifts[index % len(shifts)])
    _, dy, dx = best
    aligned = _shifted_cols(_shifted_rows(pred, crop + dy, h), crop + dx, w)
    return aligned[None, None], reference[None, None], (dy, dx)


def _ssd_over_shifts(pred: torch.Tensor, reference: torch.Tensor, crop: int, shifts: list[float]) -> torch.Tensor:
    """SSD[a, b] between `reference` [h,w] and `pred` moved by (shifts[a], shifts[b]) with bilinear
    interpolation, as `align_to_reference` defines it; [len(shifts), len(shifts)] float64.

    All shifts with one fractional part share an interpolated image J, and over the whole-pixel parts
    SSD = sum J^2 (a window sum: cumulative sums) - 2 (J correlated with the reference: one FFT) + sum R^2,
    so 1,681 shifts cost 16 FFTs instead of 1,681 passes over the image."""
    h, w = reference.shape
    out = torch.full((len(shifts), len(shifts)), math.inf, dtype=torch.float64)
    fractions = sorted({s - math.floor(s) for s in shifts})
    reference_energy = reference.pow(2).sum()
    for fy in fractions:
        rows = pred if fy == 0 else torch.lerp(pred[:-1], pred[1:], fy)
        for fx in fractions:
            moved = rows if fx == 0 else torch.lerp(rows[:, :-1], rows[:, 1:], fx)
            size = moved.shape
            cross = torch.fft.irfft2(torch.fft.rfft2(moved) * torch.fft.rfft2(reference, s=size).conj(), s=size)
            energy = _window_sums(moved.pow(2), h, w)
            rows_at, cols_at = (torch.tensor([i for i, s in enumerate(shifts) if s - math.floor(s) == f])
                                for f in (fy, fx))
            tops, lefts = (torch.tensor([crop + math.floor(shifts[i]) for i in at]) for at in (rows_at, cols_at))
            window = (tops[:, None], lefts[None, :])
            out[rows_at[:, None], cols_at[None, :]] = energy[window] - 2 * cross[window] + reference_energy
    return out


def _window_sums(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """sums[i, j] = x[i:i + h, j:j + w].sum() for every window that fits, from 2-D cumulative sums."""
    table = torch.nn.functional.pad(x.cumsum(0).cumsum(1), (1, 0, 1, 0))
    return table[h:, w:] - table[:-h, w:] - table[h:, :-w] + table[:-h, :-w]


def _planes(pred: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
    if pred.dim() == 2:
        return [pred.double(), target.double()]
    if pred.dim() == 4 and pred.shape[0] == 1:
        return [x[0, 0] for x in evaluation_planes(pred, target)]
    raise ValueError(f"expected one image [1,C,H,W] or a plane [H,W], got {list(pred.shape)}")


def _shifted_rows(x: torch.Tensor, start: float, length: int) -> torch.Tensor:
    """Rows start, start + 1, ... (`length` of them) of `x`, linearly interpolated at fractional `start`."""
    base = math.floor(start)
    fraction = start - base
    top = x[base:base + length]
    return top if fraction == 0 else torch.lerp(top, x[base + 1:base + 1 + length], fraction)


def _shifted_cols(x: torch.Tensor, start: float, length: int) -> torch.Tensor:
    return _shifted_rows(x.T, start, length).T


def aligned_scores(pred: torch.Tensor, target: torch.Tensor, crop: int = ALIGN_CROP,
                   max_shift: float = ALIGN_MAX_SHIFT, step: float = ALIGN_STEP) -> dict[str, float]:
    """PSNR, SSIM and SSD after `align_to_reference` (SelfDeblur's protocol), and the shift found."""
    aligned, reference, (dy, dx) = align_to_reference(pred, target, crop, max_shift, step)
    return {"psnr": psnr(aligned, reference).item(), "ssim": ssim(aligned, reference).item(),
            "ssd": float((aligned - reference).pow(2).sum()), "shift_y": dy, "shift_x": dx}


def kernel_similarity(estimate: torch.Tensor | np.ndarray, true: torch.Tensor | np.ndarray) -> float:
    """The largest normalised cross-correlation of two blur kernels over all relative shifts (Hu & Yang 2012;
    Lai et al. 2016): max_s sum k1(t) k2(t + s) / (|k1| |k2|). 1 for the same kernel anywhere in its grid;
    the kernels may differ in size."""
    from scipy.signal import correlate

    a, b = (np.asarray(k.detach().cpu().double() if isinstance(k, torch.Tensor) else k, dtype=np.float64)
            for k in (estimate, true))
    for name, k in (("estimate", a), ("true", b)):
        if k.ndim != 2 or k.size == 0 or not np.isfinite(k).all() or not np.any(k):
            raise ValueError(f"the {name} kernel must be a finite, non-zero 2-D array, got shape {k.shape}")
    return float(correlate(a, b, mode="full", method="direct" if a.size * b.size < 1e6 else "fft").max()
                 / (np.linalg.norm(a) * np.linalg.norm(b)))


def error_ratio(with_estimate: torch.Tensor, with_true: torch.Tensor, sharp: torch.Tensor,
                aligned: bool = True) -> float:
    """Levin et al. 2009's error ratio: the SSD to the sharp image of the image deconvolved with the estimated
    kernel over that of the image deconvolved (by the same non-blind step) with the true kernel; each aligned
    first (`align_to_reference`) unless `aligned` is False. 1 means the estimate is as good as the truth; Levin
    et al. count ratios up to 2-3 as visually good."""
    if aligned:
        ssd_estimate, ssd_true = (aligned_scores(x, sharp)["ssd"] for x in (with_estimate, with_true))
    else:
        ssd_estimate, ssd_true = (float((a - b).pow(2).sum()) for a, b in
                                  (evaluation_planes(x, sharp) for x in (with_estimate, with_true)))
    if ssd_true == 0:
        return 1.0 if ssd_estimate == 0 else math.inf
    return ssd_estimate / ssd_true
