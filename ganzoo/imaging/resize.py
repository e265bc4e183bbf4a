"""MATLAB-compatible bicubic resizing (imresize), 8-bit quantisation and the SR degradation built from them."""

from __future__ import annotations

import math

import torch


def imresize(
    x: torch.Tensor,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """Resize [N,C,H,W] as MATLAB's imresize(..., 'bicubic'); values are not clamped.

    Give either `scale` (output size rounded up, as MATLAB does) or `size` (H, W).
    """
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"expected a float tensor [N,C,H,W], got {x.dtype} {list(x.shape)}")
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    height, width = x.shape[-2:]
    if scale is not None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        out_h, out_w = math.ceil(height * scale), math.ceil(width * scale)
        scale_h = scale_w = scale
    else:
        out_h, out_w = size
        if out_h < 1 or out_w < 1:
            raise ValueError(f"size must be positive, got {size}")
        scale_h, scale_w = out_h / height, out_w / width
    x = _resize_axis(x, -2, out_h, scale_h, antialias)
    return _resize_axis(x, -1, out_w, scale_w, antialias)


def _cubic(t: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5."""
    a = t.abs()
    near = (1.5 * a**3 - 2.5 * a**2 + 1) * (a <= 1)
    far = (-0.5 * a**3 + 2.5 * a**2 - 4 * a + 2) * ((a > 1) & (a <= 2))
    return near + far


def _contributions(
    in_len: int, out_len: int, scale: float, antialias: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input indices [out, taps] and weights per output pixel, as MATLAB's contributions()."""
    shrink = antialias and scale < 1
    kernel_width = 4.0 / scale if shrink else 4.0
    centre = torch.arange(1, out_len + 1, dtype=torch.float64) / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(centre - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    index = left[:, None] + torch.arange(taps, dtype=torch.float64)
    distance = centre[:, None] - index
    weights = scale * _cubic(distance * scale) if shrink else _cubic(distance)
    weights = weights / weights.sum(1, keepdim=True)
    # MATLAB pads symmetrically (edge pixel repeated): fold 1-based indices back in.
    index = (index.long() - 1) % (2 * in_len)
    index = torch.where(index < in_len, index, 2 * in_len - 1 - index)
    return index, weights


def _resize_axis(
    x: torch.Tensor, dim: int, out_len: int, scale: float, antialias: bool
) -> torch.Tensor:
    index, weights = _contributions(x.shape[dim], out_len, scale, antialias)
    index, weights = index.to(x.device), weights.to(x.device, x.dtype)
    weight_shape = (out_len, 1) if dim == -2 else (out_len,)
    out_shape = list(x.shape)
    out_shape[dim] = out_len
    out = x.new_zeros(out_shape)
    for tap in range(index.shape[1]):  # a handful of kernel taps; pixels are vectorised
        out += x.index_select(dim, index[:, tap]) * weights[:, tap].view(weight_shape)
    return out


def mod_crop(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Crop H and W of [..., H, W] down to a multiple of `multiple` (bottom/right removed)."""
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    height, width = x.shape[-2:]
    return x[..., : height - height % multiple, : width - width % multiple]


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to the 8-bit grid."""
    return (x.clamp(0.0, 1.0) * 255.0).round() / 255.0


def degrade_bicubic(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The SR training and benchmark degradation: MATLAB bicubic downscaling, quantised to 8 bits."""
    return quantize(imresize(hr, scale=1 / scale))
