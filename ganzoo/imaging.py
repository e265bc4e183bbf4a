"""Image loading and conversion, MATLAB-compatible bicubic resizing, tiled inference."""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.utils import make_grid

MAX_PIXELS: int = 4096 * 4096

ImageSource = str | os.PathLike | bytes | IO[bytes] | Image.Image | np.ndarray

# Errors Pillow raises while decoding damaged data, depending on the format plugin.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


class ImageError(ValueError):
    """An input that cannot be used as an image: unreadable, unsupported or too large."""


def load_image(source: ImageSource, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open and fully decode an image (first frame, EXIF orientation applied).

    The pixel count is checked against `max_pixels` from the header, before any
    pixel data is decoded. Every failure is raised as `ImageError`.
    """
    if isinstance(source, np.ndarray):
        return _array_to_image(source, max_pixels)
    name = _name_of(source)
    if isinstance(source, Image.Image):
        return _decode(source, name, max_pixels)
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as fp:
                return _open(fp, name, max_pixels)
        except OSError as e:
            raise ImageError(f"{name}: cannot read file ({e.strerror or e})") from e
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _open(io.BytesIO(source), name, max_pixels)
    if hasattr(source, "read"):
        return _open(source, name, max_pixels)
    raise ImageError(f"unsupported image source of type {type(source).__name__}")


def _name_of(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    name = getattr(source, "filename", None) or getattr(source, "name", None)
    return name if isinstance(name, str) and name else "image"


def _open(fp: IO[bytes], name: str, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fp)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name}: too many pixels, refused as a decompression bomb ({e})") from e
    except UnidentifiedImageError as e:
        raise ImageError(
            f"{name}: not an image (cannot identify the format; the file is empty or unsupported)"
        ) from e
    except _DECODE_ERRORS as e:  # the header itself is damaged (e.g. a JPEG cut inside its markers)
        raise ImageError(f"{name}: truncated or corrupt image data ({e})") from e
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(img, name, max_pixels)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name}: too many pixels, refused as a decompression bomb ({e})") from e


def _decode(img: Image.Image, name: str, max_pixels: int) -> Image.Image:
    _check_pixels(img.width, img.height, max_pixels, name)
    try:
        img.seek(0)
        img.load()
        return ImageOps.exif_transpose(img)
    except _DECODE_ERRORS as e:
        raise ImageError(f"{name}: truncated or corrupt image data ({e})") from e


def _check_pixels(width: int, height: int, max_pixels: int, name: str) -> None:
    if width < 1 or height < 1:
        raise ImageError(f"{name}: empty image ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: {width}x{height} = {width * height} pixels exceeds the limit of {max_pixels}"
        )


def _array_to_image(arr: np.ndarray, max_pixels: int) -> Image.Image:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ImageError(f"array of shape {arr.shape} is not HxW, HxWx1, HxWx3 or HxWx4")
    _check_pixels(arr.shape[1], arr.shape[0], max_pixels, "array")
    if arr.dtype == np.uint16 and arr.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(arr))  # mode I;16
    if arr.dtype == np.uint16:
        # Pillow has no 16-bit colour modes.
        arr = np.round(arr / 257.0).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        arr = _check_unit_range(arr)
        if arr.ndim == 2:
            return Image.fromarray(arr.astype(np.float32))  # mode F keeps the precision
        arr = np.round(arr * 255.0).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise ImageError(
            f"unsupported array dtype {arr.dtype}: use uint8, uint16 or float in [0, 1]"
        )
    return Image.fromarray(np.ascontiguousarray(arr))


def _check_unit_range(arr: np.ndarray) -> np.ndarray:
    if not np.isfinite(arr).all():
        raise ImageError("float array contains NaN or Inf")
    low, high = float(arr.min()), float(arr.max())
    if low < 0.0 or high > 1.0:
        raise ImageError(f"float array values must lie in [0, 1], got [{low}, {high}]")
    return arr


def image_to_tensor(img: Image.Image) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """Split a PIL image into RGB [1,3,H,W] in [0,1], alpha [1,1,H,W] or None, and bit depth.

    Greyscale becomes three equal channels. Only greyscale keeps 16 bits: Pillow
    decodes 16-bit colour PNGs (RGB and RGBA) to 8 bits per channel.
    """
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        grey = torch.from_numpy(_high_depth_grey(img))
        return grey.expand(1, 3, -1, -1).contiguous(), None, 16
    has_alpha = "A" in img.getbands() or "transparency" in img.info
    arr = np.asarray(img.convert("RGBA" if has_alpha else "RGB"))
    planes = torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).float() / 255.0
    return planes[:, :3].contiguous(), planes[:, 3:].contiguous() if has_alpha else None, 8


def _high_depth_grey(img: Image.Image) -> np.ndarray:
    """Grey values of a 16-bit, 32-bit integer or float image as float32 in [0, 1]."""
    arr = np.asarray(img)
    if img.mode == "F":
        return np.clip(arr, 0.0, 1.0).astype(np.float32)
    # Mode I holds 16-bit data from some decoders and genuine 32-bit data from
    # others (e.g. TIFF); values beyond the 16-bit range tell them apart.
    full_scale = 65535.0 if arr.min() >= 0 and arr.max() <= 65535 else 2.0**31 - 1
    return (np.clip(arr, 0, None) / full_scale).astype(np.float32)


def tensor_to_image(
    rgb: torch.Tensor, alpha: torch.Tensor | None = None, bit_depth: int = 8
) -> Image.Image:
    """Turn RGB [1,3,H,W] or [3,H,W] in [0,1] (plus optional alpha [1,1,H,W]) into a PIL image.

    With bit_depth 16 and no alpha, greyscale content gives an I;16 image; all
    other cases give 8-bit RGB or RGBA.
    """
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    if rgb.dim() == 4 and rgb.shape[0] == 1:
        rgb = rgb[0]
    if rgb.dim() != 3 or rgb.shape[0] != 3:
        raise ValueError(f"expected RGB of shape [1,3,H,W] or [3,H,W], got {list(rgb.shape)}")
    rgb = rgb.detach().float().cpu().clamp(0.0, 1.0)
    if bit_depth == 16 and alpha is None and _is_grey(rgb):
        grey = (rgb.mean(0) * 65535.0).round().numpy().astype(np.uint16)
        return Image.fromarray(grey)
    planes = rgb if alpha is None else torch.cat([rgb, _alpha_plane(alpha, rgb.shape[1:])])
    arr = (planes * 255.0).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(arr)


def _is_grey(rgb: torch.Tensor) -> bool:
    # A model fed grey input returns nearly (not exactly) equal channels; a spread
    # below half an 8-bit step is invisible, so such output still counts as grey.
    return bool((rgb.amax(0) - rgb.amin(0)).max() <= 0.5 / 255.0)


def _alpha_plane(alpha: torch.Tensor, size: torch.Size) -> torch.Tensor:
    plane = alpha.detach().float().cpu()
    while plane.dim() > 2 and plane.shape[0] == 1:
        plane = plane[0]
    if plane.shape != size:
        raise ValueError(
            f"alpha of shape {list(alpha.shape)} does not match the image size {list(size)}; "
            "resize it first"
        )
    return plane.clamp(0.0, 1.0).unsqueeze(0)


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
    if overlap < 0 or tile <= 2 * overlap:
        raise ValueError(
            f"need overlap >= 0 and tile > 2 * overlap, got tile={tile}, overlap={overlap}"
        )
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


def make_grid_image(images: torch.Tensor, nrow: int) -> Image.Image:
    """Tile [N,C,H,W] images in [0,1] into one PIL image, `nrow` images per row."""
    return tensor_to_image(make_grid(images.detach().float().clamp(0.0, 1.0), nrow=nrow))


def captioned_sheet(rows: list[list[tuple[Image.Image, str]]], cell: int, pad: int = 4,
                    caption_height: int = 18) -> Image.Image:
    """A white contact sheet of (image, caption) rows, each image resized to `cell` x `cell` under its
    caption (enlarged with nearest neighbours, so pixels stay visible; shrunk with Lanczos): the
    README's comparison figures."""
    from PIL import ImageDraw

    columns = max(len(row) for row in rows)
    sheet = Image.new("RGB", (columns * (cell + pad) + pad, len(rows) * (cell + caption_height + pad) + pad),
                      "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(rows):
        for c, (image, caption) in enumerate(row):
            x, y = pad + c * (cell + pad), pad + r * (cell + caption_height + pad)
            shrink = image.width > cell or image.height > cell
            tile = image.convert("RGB").resize((cell, cell), Image.LANCZOS if shrink else Image.NEAREST)
            sheet.paste(tile, (x, y + caption_height))
            draw.text((x + 2, y + 3), caption, fill="black")
    return sheet


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def image_files(folder: Path) -> list[Path]:
    """The image files directly in `folder`, sorted by name (possibly none)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder, sorted by name (an error if there are none)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    files = image_files(folder)
    if not files:
        raise FileNotFoundError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def degrade_bicubic(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The SR training and benchmark degradation: MATLAB bicubic downscaling, quantised to 8 bits."""
    return quantize(imresize(hr, scale=1 / scale))
