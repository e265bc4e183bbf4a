"""Images for the models: files in and out, MATLAB-compatible resizing, tiled inference, grids.

- `io`: decoding (EXIF, pixel limits, `ImageError`), PIL <-> tensor (alpha, 16-bit grey), image files of a folder.
- `resize`: MATLAB's bicubic `imresize`, `mod_crop`, 8-bit `quantize`, the SR degradation `degrade_bicubic`.
- `tiling`: `tiled_apply` (overlapping tiles, equal to the untiled result) and its `check_tile`.
- `grids`: `make_grid_image` (sample grids) and `captioned_sheet` (the README's figures).

Every public name is importable from here: `from ganzoo import imaging; imaging.load_image(...)`.
"""

from ganzoo.imaging.grids import captioned_sheet, make_grid_image
from ganzoo.imaging.io import (
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    ImageError,
    ImageSource,
    image_files,
    image_to_tensor,
    is_greyscale,
    list_images,
    load_image,
    tensor_to_image,
)
from ganzoo.imaging.resize import degrade_bicubic, imresize, mod_crop, quantize
from ganzoo.imaging.tiling import check_tile, tiled_apply

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "ImageError",
    "ImageSource",
    "captioned_sheet",
    "check_tile",
    "degrade_bicubic",
    "image_files",
    "image_to_tensor",
    "imresize",
    "is_greyscale",
    "list_images",
    "load_image",
    "make_grid_image",
    "mod_crop",
    "quantize",
    "tensor_to_image",
    "tiled_apply",
]
