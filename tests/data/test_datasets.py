"""🤗 datasets for every image family, offline: `save_to_disk` folders, `imagefolder`, a Hub id served from the
datasets cache under HF_HUB_OFFLINE=1, streaming, 2-step training runs and `ganzoo evaluate` from a dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from datasets.arrow_writer import ArrowWriter
from PIL import Image

import ganzoo
from ganzoo.cli import main as cli_main
from ganzoo.data import (
    StreamingImageBank,
    add_dataset_args,
    image_bank,
    is_dataset_source,
    load_image_dataset,
)
from ganzoo.models import AdaINStyleTransfer, DeblurGANGenerator, SRResNet, TransformerNet

HUB_ID = "ganzoo-test/tiny-images"
SIZES = [(48, 56), (56, 48), (64, 64)]


def smooth_image(height: int, width: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx / (width - 1), yy / (height - 1), (xx + yy) / (height + width)], -1)
    return Image.fromarray(np.clip(base * 200 + rng.integers(0, 55, (height, width, 3)), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return [smooth_image(h, w, seed) for seed, (h, w) in enumerate(SIZES)]


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, images) -> Path:
    folder = tmp_path_factory.mktemp("imagefolder")
    for i, image in enumerate(images):
        image.save(folder / f"im{i}.png")
    return folder


@pytest.fixture(scope="module")
def saved_dataset(tmp_path_factory, images) -> Path:
    """Images with names, written by `save_to_disk`."""
    folder = tmp_path_factory.mktemp("saved") / "tiny"
    features = datasets.Features({"image": datasets.Image(), "name": datasets.Value("string")})
    datasets.Dataset.from_dict({"image": images, "name": [f"im{i}" for i in range(len(images))]},
                               features=features).save_to_disk(str(folder))
    return folder


@pytest.fixture(scope="module")
def paired_dataset(tmp_path_factory, images) -> Path:
    """(blurred, sharp) pairs where blurred = 255 - sharp, so that alignment is checkable pixel by pixel."""
    folder = tmp_path_factory.mktemp("paired") / "pairs"
    blurred = [Image.fromarray(255 - np.asarray(image)) for image in images]
    features = datasets.Features({"blurred": datasets.Image(), "sharp": datasets.Image()})
    datasets.Dataset.from_dict({"blurred": blurred, "sharp": images}, features=features).save_to_disk(str(folder))
    return folder


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, image_folder) -> Path:
    """A datasets cache holding HUB_ID as `load_dataset(HUB_ID)` leaves it: <ns>___<name>/<config>/<version>/<hash>/
    with `<name>-<split>.arrow` and `dataset_info.json`, which is what `load_dataset` reads offline."""
    cache = tmp_path_factory.mktemp("hf-datasets-cache")
    source = datasets.load_dataset("imagefolder", data_dir=str(image_folder), split="train",
                                   cache_dir=str(tmp_path_factory.mktemp("build")))
    name = HUB_ID.split("/")[1]
    folder = cache / HUB_ID.replace("/", "___") / "default" / "0.0.0" / "0123456789abcdef"
    folder.mkdir(parents=True)
    with ArrowWriter(path=str(folder / f"{name}-train.arrow")) as writer:
        writer.write_table(source.data.table)
        writer.finalize()
    splits = datasets.SplitDict({"train": datasets.SplitInfo("train", num_examples=len(source), dataset_name=name)})
    datasets.DatasetInfo(features=source.features, config_name="default", dataset_name=name,
                         splits=splits).write_to_directory(str(folder))
    return cache


@pytest.fixture
def offline_hub(hub_cache, monkeypatch) -> str:
    """HUB_ID resolvable offline from the temporary cache (HF_HUB_OFFLINE=1 is set for the whole suite)."""
    assert datasets.config.HF_HUB_OFFLINE
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", Path(hub_cache))
    return HUB_ID


def pixels(dataset) -> list[np.ndarray]:
    return [np.asarray(row["image"].convert("RGB")) for row in dataset]


def dataset_args(*argv: str, paired: bool = False) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_dataset_args(parser, paired=paired)
    return parser.parse_args(list(argv))


# -- loading ---------------------------------------------------------------------------------------------

def test_saved_imagefolder_and_offline_hub_id_load_the_same_images(saved_dataset, image_folder, offline_hub, images):
    expected = [np.asarray(image) for image in images]
    for dataset in (load_image_dataset(saved_dataset), load_image_dataset("imagefolder", data_dir=str(image_folder)),
                    load_image_dataset(offline_hub)):
        assert all(np.array_equal(a, b) for a, b in zip(pixels(dataset), expected, strict=True))
    streamed = load_image_dataset(offline_hub, streaming=True)
    assert isinstance(streamed, datasets.IterableDataset)
    assert all(np.array_equal(a, b) for a, b in zip(pixels(streamed), expected, strict=True))


def test_sources_are_told_apart_and_a_missing_dataset_is_a_clear_error(saved_dataset, image_folder, tmp_path):
    assert is_dataset_source(saved_dataset) and is_dataset_source("ganzoo-test/absent")
    assert not is_dataset_source(image_folder) and not is_dataset_source(tmp_path / "no" / "such" / "folder")
    with pytest.raises(FileNotFoundError, match="not a folder, and no 🤗 dataset"):
        load_image_dataset("ganzoo-test/not-cached")
    with pytest.raises(ValueError, match="needs --train-data-dir"):
        load_image_dataset("imagefolder")
    with pytest.raises(ValueError, match="no split 'test'"):
        load_image_dataset("imagefolder", "test", data_dir=str(image_folder))


def test_image_bank_joins_folders_and_dataset(saved_dataset, image_folder):
    args = dataset_args("--dataset-name", str(saved_dataset))
    bank = image_bank(args, [image_folder], 32)
    assert len(bank) == 2 * len(SIZES)
    assert all(torch.equal(a, b) for a, b in zip(bank.images[:3], bank.images[3:]))
    assert len(image_bank(dataset_args("--dataset-name", str(saved_dataset), "--max-train-samples", "2"), [], 32)) == 2
    assert len(image_bank(args, [], 50)) == 1  # only the 64x64 image holds a 50-pixel crop
    with pytest.raises(ValueError, match="no training data"):
        image_bank(dataset_args(), [], 32)
    assert image_bank(dataset_args(), [], 32, optional=True) is None
    with pytest.raises(ValueError, match="no column 'photo'"):
        image_bank(dataset_args("--dataset-name", str(saved_dataset), "--image-column", "photo"), [], 32)


def test_paired_dataset_keeps_blurred_and_sharp_aligned(paired_dataset):
    args = dataset_args("--dataset-name", str(paired_dataset), "--blurred-column", "blurred", paired=True)
    assert image_bank(args, [], 32, optional=True) is None  # the pairs are not sharp images to blur
    blurred, sharp = image_bank(args, [], 32, paired=True).random_pairs(4, 32, torch.Generator().manual_seed(0))
    assert blurred.shape == sharp.shape == (4, 3, 32, 32)
    assert torch.allclose(blurred, 1 - sharp, atol=1e-6)


def test_streaming_bank_swaps_in_every_image_and_starts_over(saved_dataset):
    args = dataset_args("--dataset-name", str(saved_dataset), "--streaming", "--stream-buffer", "2")
    bank = image_bank(args, [], 32)
    assert isinstance(bank, StreamingImageBank) and len(bank) == 2
    everything = {tuple(bank.images[0].shape), tuple(bank.images[1].shape)}
    rng = torch.Generator().manual_seed(0)
    for _ in range(4):  # 3 images in a buffer of 2: the stream must wrap around
        assert bank.random_crops(2, 32, rng).shape == (2, 3, 32, 32)
        everything |= {tuple(image.shape) for image in bank.images}
    assert everything == {(3, h, w) for h, w in SIZES}
    with pytest.raises(ValueError, match="--streaming reads only the dataset"):
        image_bank(args, [saved_dataset], 32)
    with pytest.raises(ValueError, match="no images of at least"):
        image_bank(dataset_args("--dataset-name", str(saved_dataset), "--streaming"), [], 100)


# -- 2-step training runs, one per image family ----------------------------------------------------------

SMOKE = ["--max-steps", "2", "--batch-size", "2", "--crop-size", "32", "--report-to", "none", "--sample-every", "2",
         "--cpu"]  # pinned: on a GPU host the loop would pick CUDA


def log_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("streaming", [False, True], ids=["in-memory", "streaming"])
def test_srresnet_trains_from_an_offline_hub_id(run_script, offline_hub, tmp_path, streaming):
    out = tmp_path / "run"
    run_script("train_srresnet", ["--dataset-name", offline_hub, "--output-dir", out, "--num-blocks", "1",
                                  "--channels", "8", *SMOKE, *(["--streaming", "--stream-buffer", "2"] * streaming)])
    assert isinstance(ganzoo.load(out / "final"), SRResNet) and log_steps(out)[-1] == 2
    assert json.loads((out / "final.run.json").read_text())["args"]["dataset_name"] == offline_hub
    streamed = ", streamed" if streaming else ""
    assert f"from {offline_hub} (🤗 dataset{streamed})" in (out / "final" / "README.md").read_text()


def test_deblurgan_trains_from_saved_pairs(run_script, paired_dataset, tmp_path):
    out = tmp_path / "run"
    run_script("train_deblurgan", ["--dataset-name", paired_dataset, "--blurred-column", "blurred",
                                   "--image-column", "sharp", "--output-dir", out, "--channels", "4",
                                   "--num-blocks", "1", "--critic-channels", "4", "--vgg-weights", "random", *SMOKE])
    assert isinstance(ganzoo.load(out / "final"), DeblurGANGenerator) and log_steps(out)[-1] == 2
    record = json.loads((out / "final.run.json").read_text())
    assert record["args"]["blurred_column"] == "blurred" and record["data"]["pairs"] == 3
    assert record["pair_dirs"] == [f"{paired_dataset} (🤗 dataset)"] and record["train_dirs"] == []


def test_style_trains_from_imagefolder(run_script, image_folder, tmp_path):
    style = tmp_path / "style.png"
    smooth_image(40, 40, 9).save(style)
    out = tmp_path / "run"
    run_script("train_style", ["--style-image", style, "--dataset-name", "imagefolder", "--train-data-dir",
                               image_folder, "--style-size", "32", "--channels", "4", "--num-blocks", "1",
                               "--vgg-weights", "random", "--output-dir", out, *SMOKE])
    assert isinstance(ganzoo.load(out / "final"), TransformerNet) and log_steps(out)[-1] == 2
    card = (out / "final" / "README.md").read_text()
    assert f"3 content photos from imagefolder {image_folder} (🤗 dataset)" in card


def test_adain_trains_from_imagefolder_and_refuses_streaming(run_script, image_folder, tmp_path):
    styles = tmp_path / "styles"
    styles.mkdir()
    smooth_image(40, 40, 9).save(styles / "style.png")
    out = tmp_path / "run"
    common = ["--dataset-name", "imagefolder", "--train-data-dir", image_folder, "--style-dirs", styles,
              "--resize", "40", "--channels", "4", "--vgg-weights", "random", "--output-dir", out]
    run_script("train_adain", [*common, *SMOKE])
    assert isinstance(ganzoo.load(out / "final"), AdaINStyleTransfer) and log_steps(out)[-1] == 2
    assert f"3 content photos from imagefolder {image_folder} (🤗 dataset)" in (out / "final" / "README.md").read_text()
    with pytest.raises(SystemExit):
        run_script("train_adain", [*common, "--streaming", *SMOKE])


# -- evaluation from a dataset ---------------------------------------------------------------------------

def evaluate_json(capsys, *argv) -> dict:
    capsys.readouterr()
    assert cli_main([*map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_evaluate_sr_from_a_hub_id_matches_the_folder(offline_hub, saved_dataset, image_folder, capsys):
    from_folder = evaluate_json(capsys, "evaluate", "sr", "--model", "bicubic", "--data", image_folder)
    from_hub = evaluate_json(capsys, "evaluate", "sr", "--model", "bicubic", "--data", offline_hub)
    from_saved = evaluate_json(capsys, "evaluate", "sr", "--model", "bicubic", "--data", saved_dataset)
    assert from_hub["n"] == from_folder["n"] == 3 and from_hub["data"] == offline_hub
    for key in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"):
        assert from_hub[key] == pytest.approx(from_folder[key], abs=1e-9) == from_saved[key]
    assert [row["image"] for row in from_saved["images"]] == ["im0", "im1", "im2"]  # names from the `name` column


def test_evaluate_deblur_from_a_paired_dataset(paired_dataset, capsys):
    result = evaluate_json(capsys, "evaluate", "deblur", "--model", "none", "--data", paired_dataset)
    assert result["n"] == 3
    # blurred = 255 - sharp: the input's PSNR is computable by hand for the first pair
    sharp = np.asarray(smooth_image(*SIZES[0], 0)).astype(np.float64) / 255
    expected = 10 * np.log10(1 / np.mean((1 - 2 * sharp) ** 2))
    assert result["images"][0]["psnr_input"] == pytest.approx(expected, abs=1e-6)
