"""Seeded deblurring benchmarks in the Lai et al. 2016 layout, and the guard that keeps them out of training.

A set is a folder with `sharp/<image>.png`, `blurred/<image>_kernel_<NN>.png` (every image blurred by every
kernel, reflected borders, Gaussian noise, 8 bits) and `kernels/kernel_<NN>.png` (scaled to a peak of 255),
which `ganzoo evaluate deblur --data DIR` reads. The same arguments and seed write the same files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganzoo.degrade import _uniform, add_noise, blur, load_kernels, shake_kernel, sized_shake_kernel
from ganzoo.imaging import image_files, image_to_tensor, list_images, load_image, quantize, tensor_to_image

__all__ = ["HeldOut", "make_blur_set", "set_kernels"]

SET_DIRS = ("sharp", "blurred", "kernels")


def set_kernels(count: int, seed: int, lengths: tuple[float, float] | None = None,
                sizes: tuple[int, int] | None = None, speed_variation: float = 0.0) -> list[torch.Tensor]:
    """`count` camera-shake kernels drawn from `seed`: path lengths uniform in `lengths` px (on the smallest
    grid that holds them), or grids of an odd size uniform in `sizes` px that the path spans; the camera's
    speed along the path varies by `speed_variation` (`degrade.vary_speed`; 0, constant, draws as before)."""
    if (lengths is None) == (sizes is None):
        raise ValueError("give the kernels' path lengths or their sizes (one of the two)")
    rng = torch.Generator().manual_seed(seed)
    if lengths is not None:
        return [shake_kernel(_uniform(rng, *lengths), rng, speed_variation=speed_variation) for _ in range(count)]
    odd_sizes = list(range(sizes[0] + 1 - sizes[0] % 2, sizes[1] + 1, 2))
    if not odd_sizes or odd_sizes[0] < 5:
        raise ValueError(f"sizes must hold an odd size of at least 5, got {sizes}")
    picks = torch.randint(len(odd_sizes), (count,), generator=rng).tolist()
    return [sized_shake_kernel(odd_sizes[i], rng, speed_variation) for i in picks]


def make_blur_set(images: list[Path], output: str | os.PathLike, kernels: list[torch.Tensor], seed: int,
                  noise: float = 0.01) -> Path:
    """Write the Lai-layout set: each image blurred by each kernel, noise of std `noise` from `seed`."""
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise FileExistsError(f"{output}: exists and is not empty; remove it or choose another folder")
    for name in SET_DIRS:
        (output / name).mkdir(parents=True, exist_ok=True)
    for number, kernel in enumerate(kernels, 1):
        peak = (kernel / kernel.max() * 255).round().to(torch.uint8).numpy()
        Image.fromarray(peak, mode="L").save(output / "kernels" / f"kernel_{number:02d}.png")
    # The blur uses the kernels as read back from their PNGs: those are the true kernels an evaluation sees.
    kernels = load_kernels(output / "kernels", skip_png_copies=False)
    rng = torch.Generator().manual_seed(seed)
    for path in images:
        sharp = image_to_tensor(load_image(path))[0]
        tensor_to_image(sharp).save(output / "sharp" / f"{path.stem}.png")
        for number, kernel in enumerate(kernels, 1):
            if min(sharp.shape[-2:]) <= max(kernel.shape) // 2:
                raise ValueError(f"{path}: smaller than half the {max(kernel.shape)} px kernel {number}")
            blurred = quantize(add_noise(blur(sharp, kernel), noise, rng))
            tensor_to_image(blurred).save(output / "blurred" / f"{path.stem}_kernel_{number:02d}.png")
    return output


def _pixel_hash(path: Path) -> str:
    """The hash of an image's decoded 8-bit RGB pixels: a PNG copy of a JPEG hashes as the JPEG."""
    with load_image(path) as image:
        array = np.asarray(image.convert("RGB"))
    return hashlib.sha256(repr(array.shape).encode() + array.tobytes()).hexdigest()


class HeldOut:
    """The images and kernels of evaluation sets, which training must never read.

    Each source is a benchmark folder (its `sharp/` images and `kernels/`), a folder of images, a folder of
    kernels (named `kernels`, or holding .npz files), or one kernel file (.npz/.png).
    """

    def __init__(self, sources: list[str | os.PathLike]) -> None:
        self.sources = [str(s) for s in sources]
        self.image_hashes: set[str] = set()
        self.kernels: list[torch.Tensor] = []
        for source in map(Path, sources):
            if not source.exists():
                raise FileNotFoundError(f"held-out set {source}: no such file or folder")
            if source.is_file() or source.name == "kernels" or any(source.glob("*.npz")):
                self.kernels.extend(load_kernels(source, skip_png_copies=False))
                continue
            sharp = sorted(source.rglob("sharp"))
            folders = [p for p in sharp if p.is_dir()] or [source]
            for folder in folders:
                self.image_hashes.update(_pixel_hash(p) for p in image_files(folder))
            if (source / "kernels").is_dir():
                self.kernels.extend(load_kernels(source / "kernels", skip_png_copies=False))

    def describe(self) -> dict[str, object]:
        return {"held_out_sets": self.sources, "held_out_images": len(self.image_hashes),
                "held_out_kernels": len(self.kernels)}

    def split_images(self, folders: list[str | os.PathLike]) -> tuple[list[Path], list[Path]]:
        """(images training may read, images it must not) of the given folders."""
        kept, dropped = [], []
        for path in (p for folder in folders for p in list_images(folder)):
            (dropped if _pixel_hash(path) in self.image_hashes else kept).append(path)
        return kept, dropped

    def check_kernels(self, kernels: list[torch.Tensor], source: str) -> None:
        """Refuse training kernels that match a held-out one (up to 8-bit PNG rounding and zero padding)."""
        for i, kernel in enumerate(kernels):
            for held in self.kernels:
                if _same_support(kernel, held):
                    raise ValueError(f"{source}: kernel {i + 1} belongs to a held-out evaluation set "
                                     f"({', '.join(self.sources)}); evaluation kernels are never training data")


def _same_support(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = _trim(a), _trim(b)
    return a.shape == b.shape and bool((a / a.max() - b / b.max()).abs().max() <= 1.5 / 255)


def _trim(kernel: torch.Tensor) -> torch.Tensor:
    """The kernel's bounding box of non-negligible weight (so zero-padded copies compare equal)."""
    mask = kernel > kernel.max() * 1.5 / 255
    rows, cols = mask.any(1).nonzero()[:, 0], mask.any(0).nonzero()[:, 0]
    return kernel[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def write_manifest(output: Path, fields: dict[str, object]) -> None:
    """What made the set (the command's arguments), beside it."""
    (output / "manifest.json").write_text(json.dumps(fields, indent=2, default=str) + "\n")
