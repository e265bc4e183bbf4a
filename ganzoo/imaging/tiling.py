"""Tiled inference: an image-to-image function applied tile by tile with overlap, equal to the untiled result."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def check_tile(tile: int | None, overlap: int, name: str = "tile") -> None:
    """ValueError unless `tile` (None: untiled) is more than twice the `overlap` each tile shares per side;
    `name` is what the message calls the tile size (e.g. a command-line option)."""
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    if tile is not None and tile <= 2 * overlap:
        raise ValueError(f"{name} must be more than {2 * overlap} "
                         f"(tiles overlap by {overlap} pixels on each side), got {tile}")


def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int = 16,
    scale: int = 1,
    batch_tiles: int = 1,
) -> torch.Tensor:
    """Apply an image-to-image `fn` (output `scale` times larger) to [N,C,H,W] tile by tile.

    Tiles of `tile` pixels overlap by `overlap` on each side and each contributes
    only its central part, so the result equals fn(x) when fn's receptive field
    reaches at most `overlap` input pixels. The output is assembled on x's device.
    """
    if x.dim() != 4:
        raise ValueError(f"expected [N,C,H,W], got {list(x.shape)}")
    check_tile(tile, overlap)
    if scale < 1 or batch_tiles < 1:
        raise ValueError(f"scale and batch_tiles must be >= 1, got {scale} and {batch_tiles}")
    height, width = x.shape[-2:]
    if height <= tile and width <= tile:
        return fn(x)
    tiles = [
        (rows, cols)
        for rows in _spans(height, tile, overlap, scale)
        for cols in _spans(width, tile, overlap, scale)
    ]
    out = None
    for first in range(0, len(tiles), batch_tiles):
        group = tiles[first : first + batch_tiles]
        batch = torch.cat([x[..., rows[0], cols[0]] for rows, cols in group])
        y = _checked_call(fn, batch, scale)
        if out is None:
            out_shape = (x.shape[0], y.shape[1], height * scale, width * scale)
            out = torch.empty(out_shape, dtype=y.dtype, device=x.device)
        for (rows, cols), part in zip(group, y.split(x.shape[0]), strict=True):
            out[..., rows[1], cols[1]] = part[..., rows[2], cols[2]].to(x.device)
    return out


def _spans(length: int, tile: int, overlap: int, scale: int) -> list[tuple[slice, slice, slice]]:
    """Per tile along one axis: input window, core position in the output and in the tile output."""
    if length <= tile:
        whole = slice(0, length * scale)
        return [(slice(0, length), whole, whole)]
    count = 1 + math.ceil((length - tile) / (tile - 2 * overlap))
    # The smallest equal tiles that still cover the axis with `count` windows: less
    # recomputed overlap than full-size tiles clamped at the border (e.g. 512 px in
    # tiles of at most 256: three of 192 rather than three of 256).
    tile = math.ceil((length + 2 * overlap * (count - 1)) / count)
    step = tile - 2 * overlap
    # Cores partition the axis; each lies at least `overlap` pixels inside its
    # window except where the window touches the image border.
    bounds = [0] + [i * step + overlap for i in range(1, count)] + [length]
    spans = []
    for i in range(count):
        start = min(i * step, length - tile)
        core_start, core_end = bounds[i], bounds[i + 1]
        spans.append(
            (
                slice(start, start + tile),
                slice(core_start * scale, core_end * scale),
                slice((core_start - start) * scale, (core_end - start) * scale),
            )
        )
    return spans


def _checked_call(
    fn: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, scale: int
) -> torch.Tensor:
    y = fn(batch)
    expected = (batch.shape[0], batch.shape[2] * scale, batch.shape[3] * scale)
    if y.dim() != 4 or (y.shape[0], y.shape[2], y.shape[3]) != expected:
        raise ValueError(
            f"fn turned a tile of shape {list(batch.shape)} into {list(y.shape)}; "
            f"expected batch {expected[0]} and size {expected[1]}x{expected[2]} for scale {scale}"
        )
    return y
