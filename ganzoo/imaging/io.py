"""Image files in and out: decoding to PIL (EXIF orientation, pixel limits, clear errors), PIL <-> tensor
(alpha, 16-bit grey), and the image files of a folder."""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

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


def is_greyscale(img: Image.Image) -> bool:
    """Whether a decoded image is stored as grey (bilevel, 8-bit grey with or without alpha, 16/32-bit, float)."""
    return img.mode in ("1", "L", "LA", "I", "F") or img.mode.startswith("I;16")


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
