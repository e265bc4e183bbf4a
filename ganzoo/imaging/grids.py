"""Image grids and captioned contact sheets (training samples, the README's figures)."""

from __future__ import annotations

import torch
from PIL import Image
from torchvision.utils import make_grid

from ganzoo.imaging.io import tensor_to_image


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
