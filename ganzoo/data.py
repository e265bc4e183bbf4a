"""Data sets: MNIST (IDX files or the Hub) through 🤗 datasets, and image banks of training crops,
held in memory as tensors."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from ganzoo.imaging import degrade_bicubic, image_files, image_to_tensor, list_images, load_image

__all__ = ["ImageBank", "PairedImageBank", "blur_pairs", "degrade_bicubic", "epoch_batch_indices", "load_mnist", "load_mnist_dataset", "read_idx"]

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or .gz), the format MNIST ships in."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    payload = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if payload.size != int(np.prod(shape)):
        raise ValueError(f"{path}: expected {shape} values, found {payload.size} (truncated?)")
    return payload.reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem, folder / stem.replace("-idx", ".idx")):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{folder}: no {stem}[.gz] (MNIST IDX files expected)")


def load_mnist_dataset(source: str | os.PathLike, split: str = "train"):
    """MNIST as a 🤗 `datasets.Dataset` with columns `image` (28x28 uint8) and `label`.

    `source` is a folder with the four IDX files, or a Hub dataset id (e.g. `ylecun/mnist`).
    """
    import datasets

    if split not in MNIST_FILES:
        raise ValueError(f"split must be one of {sorted(MNIST_FILES)}, got {split!r}")
    features = datasets.Features({"image": datasets.Array2D((28, 28), "uint8"),
                                  "label": datasets.ClassLabel(num_classes=10)})
    if os.path.isdir(source):
        images_file, labels_file = MNIST_FILES[split]
        images, labels = read_idx(_find(Path(source), images_file)), read_idx(_find(Path(source), labels_file))
        if len(images) != len(labels):
            raise ValueError(f"{source}: {len(images)} images but {len(labels)} labels")
        return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
    hub = datasets.load_dataset(str(source), split=split)
    return hub.map(lambda row: {"image": np.asarray(row["image"], dtype=np.uint8)},
                   features=features, desc="decoding MNIST")


def load_mnist(source: str | os.PathLike, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST in memory: images float32 [N, 1, 28, 28] in [0, 1], labels int64 [N]."""
    dataset = load_mnist_dataset(source, split).with_format("numpy")
    images = torch.from_numpy(np.ascontiguousarray(dataset["image"]))
    labels = torch.from_numpy(np.ascontiguousarray(dataset["label"])).long()
    return images.unsqueeze(1).float().div_(255), labels


def epoch_batch_indices(n: int, batch_size: int, step: int, seed: int, rank: int = 0,
                        world_size: int = 1) -> torch.Tensor:
    """Indices of the batch at `step` of an epoch-wise shuffle: a pure function of its arguments.

    Each process takes its own slice of the global batch, so a resumed or
    multi-process run sees the same examples as a single uninterrupted one.
    """
    global_batch = batch_size * world_size
    steps_per_epoch = max(n // global_batch, 1)
    epoch, offset = divmod(step, steps_per_epoch)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
    start = offset * global_batch + rank * batch_size
    return order[start:start + batch_size]


class ImageBank:
    """Training images held in memory on the training device; batches of random crops are cut there,
    so the data pipeline never waits on disk or on CPU decoding."""

    def __init__(self, folders: list[str | os.PathLike], min_size: int, device: torch.device | str = "cpu",
                 max_images: int | None = None, exclude: set[Path] = frozenset()) -> None:
        paths = [p for folder in folders for p in list_images(folder) if p not in exclude][:max_images]
        self._fill([[path] for path in paths], min_size, device)
        if not self.images:
            raise ValueError(f"no training images of at least {min_size}x{min_size} pixels in {folders}")

    def _fill(self, groups: list[list[Path]], min_size: int, device: torch.device | str) -> None:
        # A group of aligned images (e.g. blurred + sharp) is stored as one image with 3 channels each,
        # so that every crop, flip and rotation applies to all of them alike.
        self.images: list[torch.Tensor] = []
        for group in groups:
            rgbs = [image_to_tensor(load_image(path))[0][0] for path in group]
            if len({tuple(rgb.shape) for rgb in rgbs}) != 1:
                raise ValueError(f"{', '.join(map(str, group))}: paired images differ in size")
            if min(rgbs[0].shape[-2:]) >= min_size:
                self.images.append(torch.cat(rgbs).mul(255).round().to(torch.uint8).to(device))
        self.skipped = len(groups) - len(self.images)

    def __len__(self) -> int:
        return len(self.images)

    def random_crops(self, batch_size: int, size: int, rng: torch.Generator) -> torch.Tensor:
        """[B, 3, size, size] float crops in [0, 1], each randomly flipped and rotated by a multiple of 90°
        ([B, 6, size, size] for a `PairedImageBank`)."""
        choice = torch.randint(len(self.images), (batch_size,), generator=rng).tolist()
        fractions = torch.rand(batch_size, 2, generator=rng).tolist()
        flips = torch.randint(0, 8, (batch_size,), generator=rng).tolist()
        crops = []
        for index, (fy, fx), flip in zip(choice, fractions, flips):
            image = self.images[index]
            top, left = int(fy * (image.shape[1] - size + 1)), int(fx * (image.shape[2] - size + 1))
            crop = image[:, top:top + size, left:left + size]
            crop = torch.rot90(crop, flip % 4, dims=(1, 2))
            crops.append(crop.flip(2) if flip >= 4 else crop)
        return torch.stack(crops).float().div_(255)



BLURRED_DIR_PREFIX = "blur"


def sharp_folders(folder: Path) -> list[Path]:
    """The folders named `sharp` in or below `folder`, sorted (each pairs with its `blur*` siblings)."""
    return sorted(p for p in [folder, *folder.rglob("*")] if p.is_dir() and p.name == "sharp")


def sharp_stem_of(blurred_stem: str, sharp_stems: set[str]) -> str | None:
    """The sharp image a blurred one shows: the same stem, else the longest sharp stem that the blurred
    stem starts with followed by `_` (`im_1_ker_3` -> `im_1`; `car_2_kernel_01` -> `car_2`, not `car`)."""
    if blurred_stem in sharp_stems:
        return blurred_stem
    prefixes = [s for s in sharp_stems if blurred_stem.startswith(f"{s}_")]
    return max(prefixes, key=len) if prefixes else None


def blur_pairs(folder: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(blurred, sharp) image paths under `folder`, sorted.

    Every folder named `sharp` pairs with its sibling folders whose names start
    with "blur" (GoPro: `<scene>/blur/X.png` + `<scene>/sharp/X.png`; Levin:
    `blurred_*/im_1_ker_3.png` + `sharp/im_1.png`; Lai et al. 2016: `blurred/X_kernel_01.png` +
    `sharp/X.png`), a blurred file pairing with the sharp one whose stem it starts with (`sharp_stem_of`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    pairs = []
    for sharp_dir in sharp_folders(folder):
        sharp = {p.stem: p for p in image_files(sharp_dir)}
        for blurred_dir in sorted(p for p in sharp_dir.parent.iterdir()
                                  if p.is_dir() and p.name.lower().startswith(BLURRED_DIR_PREFIX)):
            for path in image_files(blurred_dir):
                stem = sharp_stem_of(path.stem, set(sharp))
                if stem is None:
                    raise FileNotFoundError(f"{path}: no sharp image {path.stem}.* (nor one whose stem it starts "
                                            f"with, then _) in {sharp_dir}")
                pairs.append((path, sharp[stem]))
    if not pairs:
        raise FileNotFoundError(f"{folder}: no blurred/sharp pairs (expected a `sharp/` folder beside `blur*/` "
                                "folders, as in GoPro or the Levin benchmark)")
    return pairs


class PairedImageBank(ImageBank):
    """Aligned (blurred, sharp) training pairs in memory; crops are cut at the same place in both."""

    def __init__(self, folders: list[str | os.PathLike], min_size: int, device: torch.device | str = "cpu",
                 max_images: int | None = None) -> None:
        pairs = [list(pair) for folder in folders for pair in blur_pairs(folder)][:max_images]
        self._fill(pairs, min_size, device)
        if not self.images:
            raise ValueError(f"no blurred/sharp pairs of at least {min_size}x{min_size} pixels in {folders}")

    def random_pairs(self, batch_size: int, size: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(blurred, sharp) crops, each [B, 3, size, size] in [0, 1]."""
        crops = self.random_crops(batch_size, size, rng)
        return crops[:, :3], crops[:, 3:]
