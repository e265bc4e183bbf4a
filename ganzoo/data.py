"""Data sets: MNIST (IDX files or the Hub) through 🤗 datasets, and image banks of training crops,
held in memory as tensors."""

from __future__ import annotations

import argparse
import gzip
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganzoo.imaging import degrade_bicubic, image_files, image_to_tensor, list_images, load_image

__all__ = ["ImageBank", "PairedImageBank", "StreamingImageBank", "add_dataset_args", "blur_pairs", "data_sources",
           "dataset_images", "degrade_bicubic", "epoch_batch_indices", "image_bank", "load_image_dataset",
           "load_mnist", "load_mnist_dataset", "read_idx"]

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


def group_tensor(group: list[Any], min_size: int, device: torch.device | str) -> torch.Tensor | None:
    """Aligned images (paths or PIL images) as one uint8 tensor of 3 channels each; None if smaller than `min_size`."""
    rgbs = [image_to_tensor(load_image(image))[0][0] for image in group]
    if len({tuple(rgb.shape) for rgb in rgbs}) != 1:
        raise ValueError(f"{', '.join(map(str, group))}: paired images differ in size")
    if min(rgbs[0].shape[-2:]) < min_size:
        return None
    return torch.cat(rgbs).mul(255).round().to(torch.uint8).to(device)


class ImageBank:
    """Training images held in memory on the training device; batches of random crops are cut there,
    so the data pipeline never waits on disk or on CPU decoding."""

    def __init__(self, folders: list[str | os.PathLike], min_size: int, device: torch.device | str = "cpu",
                 max_images: int | None = None, exclude: set[Path] = frozenset()) -> None:
        paths = [p for folder in folders for p in list_images(folder) if p not in exclude][:max_images]
        self._fill([[path] for path in paths], min_size, device)
        if not self.images:
            raise ValueError(f"no training images of at least {min_size}x{min_size} pixels in {folders}")

    @classmethod
    def from_groups(cls, groups: list[list[Any]], min_size: int, device: torch.device | str = "cpu") -> ImageBank:
        """A bank of image groups (paths or PIL images; several aligned images per group for a paired bank)."""
        bank = cls.__new__(cls)
        bank._fill(groups, min_size, device)
        return bank

    def _fill(self, groups: list[list[Any]], min_size: int, device: torch.device | str) -> None:
        # A group of aligned images (e.g. blurred + sharp) is stored as one image with 3 channels each,
        # so that every crop, flip and rotation applies to all of them alike.
        self.images = [image for group in groups if (image := group_tensor(group, min_size, device)) is not None]
        self.skipped = len(groups) - len(self.images)

    def __len__(self) -> int:
        return len(self.images)

    def random_crops(self, batch_size: int, size: int, rng: torch.Generator) -> torch.Tensor:
        """[B, 3, size, size] float crops in [0, 1], each randomly flipped and rotated by a multiple of 90°
        ([B, 6, size, size] for a `PairedImageBank`), on the bank's device: one gather for the batch."""
        device = rng.device
        choice = torch.randint(len(self.images), (batch_size,), generator=rng, device=device)
        fractions = torch.rand(batch_size, 2, generator=rng, device=device)
        flips = torch.randint(0, 8, (batch_size,), generator=rng, device=device)
        pixels, offsets, heights, widths = self._flat()
        if size > self._smallest_side:  # a crop past an image's edge would read its neighbour's pixels
            raise ValueError(f"{size} px crops from a bank whose smallest image side is {self._smallest_side} px")
        choice, flips = choice.to(offsets.device), flips.to(offsets.device)
        height, width = heights[choice], widths[choice]
        # float64 as Python's float, so a seed cuts the same crops as the per-crop loop did.
        top = (fractions[:, 0].double().to(offsets.device) * (height - size + 1)).long()
        left = (fractions[:, 1].double().to(offsets.device) * (width - size + 1)).long()
        # Output pixel (i, j) reads crop pixel (row . (i, j, m), col . (i, j, m)), m = size - 1 (see _DIHEDRAL).
        row, col = _DIHEDRAL.to(offsets.device)[flips].unbind(1)
        step_i = row[:, 0] * width + col[:, 0]
        step_j = row[:, 1] * width + col[:, 1]
        start = offsets[choice] + (top + row[:, 2] * (size - 1)) * width + left + col[:, 2] * (size - 1)
        ij = torch.arange(size, device=offsets.device)
        index = start[:, None, None] + step_i[:, None, None] * ij[:, None] + step_j[:, None, None] * ij
        return pixels[index].permute(0, 3, 1, 2).float().div_(255)

    def _flat(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """All images as one [pixels, C] channels-last tensor, each one's first pixel and its height and width.

        Rebuilt when `images` changes (a streamed swap, resizing in place); the list then holds views of it.
        """
        if getattr(self, "_flat_sources", None) is not None and len(self._flat_sources) == len(self.images) \
                and all(a is b for a, b in zip(self._flat_sources, self.images)):
            return self._flat_cache
        pixels = torch.cat([image.permute(1, 2, 0).reshape(-1, image.shape[0]) for image in self.images])
        sizes = [image.shape[-2] * image.shape[-1] for image in self.images]
        device = pixels.device
        offsets = torch.tensor([0, *sizes[:-1]], device=device).cumsum(0)
        heights = torch.tensor([image.shape[-2] for image in self.images], device=device)
        widths = torch.tensor([image.shape[-1] for image in self.images], device=device)
        for i, (image, offset, n) in enumerate(zip(self.images, offsets.tolist(), sizes)):
            self.images[i] = pixels[offset:offset + n].view(image.shape[1], image.shape[2], -1).permute(2, 0, 1)
        self._flat_sources = list(self.images)
        self._smallest_side = min(min(image.shape[-2:]) for image in self.images)
        self._flat_cache = (pixels, offsets, heights, widths)
        return self._flat_cache


# The 8 flips and rotations of `random_crops`, k = 0..7: torch.rot90 by k % 4 (dims 1, 2), then a left-right
# flip if k >= 4. Output pixel (i, j) of a size x size crop reads (r, c) = (a i + b j + e m, c i + d j + f m),
# m = size - 1; rows hold (a, b, e) and (c, d, f).
_DIHEDRAL = torch.tensor([
    [[1, 0, 0], [0, 1, 0]], [[0, 1, 0], [-1, 0, 1]], [[-1, 0, 1], [0, -1, 1]], [[0, -1, 1], [1, 0, 0]],
    [[1, 0, 0], [0, -1, 1]], [[0, -1, 1], [-1, 0, 1]], [[-1, 0, 1], [0, 1, 0]], [[0, 1, 0], [1, 0, 0]],
])


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



# -- 🤗 datasets: Hub ids, `save_to_disk` folders and `imagefolder`, for every image family ------------------

SAVED_DATASET_FILES = ("dataset_info.json", "dataset_dict.json", "state.json")  # what `save_to_disk` writes
PREFERRED_SPLITS = ("test", "validation", "train")
HUB_ID = re.compile(r"^[\w-][\w.-]*(/[\w-][\w.-]*)?$")


def add_dataset_args(parser: argparse.ArgumentParser, *, paired: bool = False) -> None:
    """The options that train from a 🤗 dataset instead of (or as well as) image folders."""
    group = parser.add_argument_group("🤗 datasets")
    group.add_argument("--dataset-name", default=None,
                       help="a Hub dataset id (offline: its cached copy), a folder written by `save_to_disk`, or "
                            "`imagefolder` with --train-data-dir")
    group.add_argument("--dataset-config-name", default=None)
    group.add_argument("--train-data-dir", default=None, help="the folder for --dataset-name imagefolder (implies it)")
    group.add_argument("--dataset-split", default="train")
    group.add_argument("--image-column", default=None, help="default: the dataset's only image column, or `image`")
    if paired:
        group.add_argument("--blurred-column", default=None,
                           help="a column of blurred images aligned with --image-column (sharp): real pairs "
                                "instead of synthetic blur")
    group.add_argument("--streaming", action="store_true",
                       help="stream the dataset (for one too big for memory): keep --stream-buffer images in memory "
                            "and swap one for the next streamed image every batch")
    group.add_argument("--stream-buffer", type=int, default=256)
    group.add_argument("--max-train-samples", type=int, default=None)
    group.add_argument("--cache-dir", default=None, help="the 🤗 datasets cache (default: HF_DATASETS_CACHE)")


def add_sr_data_args(parser: argparse.ArgumentParser) -> None:
    """The data options of both super-resolution scripts (train_srresnet.py, train_srgan.py)."""
    parser.add_argument("--train-dirs", nargs="*", default=[], help="folders of high-resolution training images")
    add_dataset_args(parser)
    parser.add_argument("--val-dir", default=None, help="folder of HR images for validation (e.g. Set5)")
    parser.add_argument("--scale", type=int, default=4, choices=[2, 4, 8])
    parser.add_argument("--crop-size", type=int, default=96, help="HR crop size (the paper's 96)")
    parser.add_argument("--eval-every", type=int, default=2000)
    parser.add_argument("--synthetic-data", action="store_true",
                        help="reuse one in-memory batch every step: times the model alone, to compare with the "
                             "real pipeline and show the data is not the bottleneck")


def is_dataset_source(source: str | os.PathLike) -> bool:
    """Whether `source` names a 🤗 dataset: a `save_to_disk` folder, or no path but shaped like a Hub id."""
    path = Path(source)
    if path.is_dir():
        return any((path / name).is_file() for name in SAVED_DATASET_FILES)
    return not path.exists() and HUB_ID.match(str(source)) is not None


def load_image_dataset(source: str | os.PathLike, split: str | None = "train", *, config_name: str | None = None,
                       data_dir: str | None = None, streaming: bool = False, cache_dir: str | None = None):
    """A 🤗 `Dataset` (`IterableDataset` when streaming): a Hub id, a `save_to_disk` folder or `imagefolder`.

    `split=None` takes the dataset's only split, else the first of test, validation, train it has.
    """
    try:
        import datasets
    except ImportError as e:
        raise ImportError("loading a 🤗 dataset needs `datasets` (pip install 'ganzoo[train]')") from e
    if Path(source).is_dir() and is_dataset_source(source):
        dataset = datasets.load_from_disk(str(source))
    else:
        if str(source) == "imagefolder" and not data_dir:
            raise ValueError("--dataset-name imagefolder needs --train-data-dir")
        try:
            dataset = datasets.load_dataset(str(source), config_name, data_dir=data_dir, streaming=streaming,
                                            cache_dir=cache_dir)
        except (FileNotFoundError, ConnectionError) as e:  # offline and not cached, or not on the Hub
            raise FileNotFoundError(f"{source}: not a folder, and no 🤗 dataset of that name could be loaded "
                                    f"({type(e).__name__}: {e})") from e
    if isinstance(dataset, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        if split is None:
            split = next(iter(dataset)) if len(dataset) == 1 else next(
                (name for name in PREFERRED_SPLITS if name in dataset), None)
        if split not in dataset:
            raise ValueError(f"{source}: no split {split!r} (it has {', '.join(dataset)})")
        dataset = dataset[split]
    if streaming and isinstance(dataset, datasets.Dataset):
        dataset = dataset.to_iterable_dataset()
    return dataset


def image_column(dataset, wanted: str | None = None, exclude: str | None = None) -> str:
    """`wanted` once checked, else the dataset's one image column (besides `exclude`), else `image`."""
    import datasets

    features = dataset.features
    if features is None:  # some streamed datasets only know their columns once read
        return wanted or "image"
    if wanted is not None:
        if wanted not in features:
            raise ValueError(f"no column {wanted!r} in the dataset (columns: {', '.join(features)})")
        return wanted
    found = [name for name, feature in features.items() if isinstance(feature, datasets.Image) and name != exclude]
    if len(found) == 1:
        return found[0]
    if "image" in found:
        return "image"
    raise ValueError(f"which image column? the dataset has {', '.join(found) or 'none'} (columns: "
                     f"{', '.join(features)})")


def dataset_images(source: str | os.PathLike, split: str | None = None) -> list[tuple[str, Any, Any]]:
    """(name, image, blurred image or None) for each row of a 🤗 dataset, for evaluation.

    A column whose name starts with "blur" holds blurred images paired with the other image column.
    """
    dataset = load_image_dataset(source, split)
    blurred = next((c for c in dataset.features if c.lower().startswith(BLURRED_DIR_PREFIX)), None)
    sharp = image_column(dataset, exclude=blurred)
    names = next((c for c in ("name", "file_name", "filename", "id") if c in dataset.features), None)
    return [(str(row[names]) if names else f"{index:04d}", row[sharp], row[blurred] if blurred else None)
            for index, row in enumerate(dataset)]


def image_bank(args: argparse.Namespace, folders: list[str | os.PathLike], min_size: int,
               device: torch.device | str = "cpu", *, paired: bool = False, optional: bool = False,
               exclude: frozenset[Path] | set[Path] = frozenset()) -> ImageBank | None:
    """The training images of `folders` (blurred/sharp pair folders if `paired`) and of `--dataset-name`.

    The dataset joins the paired bank when `--blurred-column` is given, the unpaired one otherwise. With
    `--streaming` it is read through a `StreamingImageBank`. None (if `optional`) when neither gives anything.
    `exclude`: folder images to leave out (held-out evaluation images, `blur_sets.HeldOut`).
    """
    name = _dataset_for(args, paired)
    from_dataset = name is not None
    if not folders and not from_dataset:
        if optional:
            return None
        raise ValueError("no training data: give image folders or --dataset-name (or --train-data-dir)")
    if from_dataset and args.streaming and folders:
        raise ValueError("--streaming reads only the dataset: drop the folders or --streaming")
    groups: list[list[Any]] = ([list(pair) for folder in folders for pair in blur_pairs(folder)] if paired else
                               [[path] for folder in folders for path in list_images(folder) if path not in exclude])
    if from_dataset:
        dataset = load_image_dataset(name, args.dataset_split, config_name=args.dataset_config_name,
                                     data_dir=args.train_data_dir, streaming=args.streaming, cache_dir=args.cache_dir)
        columns = [args.blurred_column] if paired else []
        columns.append(image_column(dataset, args.image_column, exclude=columns[0] if paired else None))
        if args.max_train_samples is not None:
            dataset = (dataset.take(args.max_train_samples) if args.streaming else
                       dataset.select(range(min(args.max_train_samples, len(dataset)))))
        if args.streaming:
            return StreamingImageBank(dataset, columns, args.stream_buffer, min_size, device)
        groups += ([row[c] for c in columns] for row in dataset)
    bank = (PairedImageBank if paired else ImageBank).from_groups(groups, min_size, device)
    if not bank.images:
        raise ValueError(f"no training images of at least {min_size}x{min_size} pixels in {[*folders, name]}")
    return bank


def _dataset_for(args: argparse.Namespace, paired: bool) -> str | None:
    """The --dataset-name that feeds a paired (it has --blurred-column) or an unpaired bank, if any."""
    name = args.dataset_name or ("imagefolder" if args.train_data_dir else None)
    return name if name is not None and bool(getattr(args, "blurred_column", None)) == paired else None


def data_sources(args: argparse.Namespace, folders: list[str | os.PathLike], *, paired: bool = False) -> list[str]:
    """What `image_bank` read for `folders`, for the model card: the folders and the 🤗 dataset."""
    name = _dataset_for(args, paired)
    if name == "imagefolder":
        name = f"imagefolder {args.train_data_dir}"
    streamed = ", streamed" if args.streaming else ""
    return [str(folder) for folder in folders] + ([f"{name} (🤗 dataset{streamed})"] if name else [])


class StreamingImageBank(PairedImageBank):
    """A buffer of streamed images (or aligned image groups): each batch of crops first swaps one buffered image
    for the next in the stream, which starts over when it ends. The stream's order is not part of a checkpoint,
    so a resumed run sees different crops than an uninterrupted one."""

    def __init__(self, dataset, columns: list[str], buffer: int, min_size: int,
                 device: torch.device | str = "cpu") -> None:
        if buffer < 1:
            raise ValueError(f"--stream-buffer must be at least 1, got {buffer}")
        from accelerate import PartialState
        from datasets.distributed import split_dataset_by_node

        state = PartialState()
        if state.num_processes > 1:  # each process streams its own share
            dataset = split_dataset_by_node(dataset, rank=state.process_index, world_size=state.num_processes)
        self.dataset, self.columns, self.min_size, self.device = dataset, columns, min_size, device
        self.skipped = 0
        self._stream = self._endless()
        self.images = [next(self._stream) for _ in range(buffer)]

    def _endless(self) -> Iterator[torch.Tensor]:
        epoch = 0
        while True:
            self.dataset.set_epoch(epoch)  # reshuffles a shuffled stream each pass
            found = False
            for row in self.dataset:
                image = group_tensor([row[c] for c in self.columns], self.min_size, self.device)
                if image is None:
                    self.skipped += 1
                    continue
                found = True
                yield image
            if not found:
                raise ValueError(f"the streamed dataset has no images of at least {self.min_size}x{self.min_size}")
            epoch += 1

    def random_crops(self, batch_size: int, size: int, rng: torch.Generator) -> torch.Tensor:
        self.images[int(torch.randint(len(self.images), (1,), generator=rng))] = next(self._stream)
        return super().random_crops(batch_size, size, rng)


def sr_batches(args: argparse.Namespace,
               bank: ImageBank) -> Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]]:
    """A step's (HR crops, bicubic LR): fresh each step, or with --synthetic-data one fixed pair."""
    def fresh(rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        hr = bank.random_crops(args.batch_size, args.crop_size, rng)
        return hr, degrade_bicubic(hr, args.scale)

    if args.synthetic_data:
        fixed = fresh(torch.Generator().manual_seed(0))
        return lambda rng: fixed
    return fresh
