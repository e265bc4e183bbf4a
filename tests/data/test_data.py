"""ganzoo.data: image banks and crops, blur pairs, epoch batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo import degrade
from ganzoo.data import ImageBank, PairedImageBank, blur_pairs, degrade_bicubic, epoch_batch_indices, sharp_stem_of
from ganzoo.evaluate import deblur_cases

from conftest import save, write_png


@pytest.mark.parametrize("n,batch_size,world_size", [(64, 8, 1), (64, 8, 2), (100, 7, 1), (100, 6, 4), (10, 3, 3)])
def test_epoch_batches_cover_the_epoch_without_repeats(n, batch_size, world_size):
    steps = n // (batch_size * world_size)
    for epoch in range(2):
        seen = torch.cat([epoch_batch_indices(n, batch_size, epoch * steps + s, seed=3, rank=r, world_size=world_size)
                          for s in range(steps) for r in range(world_size)])
        assert len(seen) == steps * batch_size * world_size
        assert len(set(seen.tolist())) == len(seen), "an index repeats within an epoch"
        assert 0 <= seen.min() and seen.max() < n
        if n % (batch_size * world_size) == 0:
            assert sorted(seen.tolist()) == list(range(n))


@pytest.mark.parametrize("world_size", [2, 3])
def test_rank_slices_are_disjoint_and_make_up_the_global_batch(world_size):
    n, batch_size = 120, 5
    for step in range(10):
        parts = [epoch_batch_indices(n, batch_size, step, seed=1, rank=r, world_size=world_size)
                 for r in range(world_size)]
        assert all(len(p) == batch_size for p in parts)
        flat = torch.cat(parts).tolist()
        assert len(set(flat)) == len(flat), f"ranks overlap at step {step}"
        # world_size processes see exactly what one process with the global batch would.
        assert flat == epoch_batch_indices(n, batch_size * world_size, step, seed=1).tolist()


def test_epoch_batches_are_a_pure_function_of_their_arguments():
    a = epoch_batch_indices(50, 4, 7, seed=2)
    assert torch.equal(a, epoch_batch_indices(50, 4, 7, seed=2))
    assert not torch.equal(a, epoch_batch_indices(50, 4, 7, seed=3))
    steps = 50 // 4
    first, second = (torch.cat([epoch_batch_indices(50, 4, e * steps + s, seed=2) for s in range(steps)])
                     for e in range(2))
    assert not torch.equal(first, second), "every epoch should reshuffle"


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    write_png(folder / "a.png", 40, 50, seed=0)
    write_png(folder / "b.png", 64, 36, seed=1)
    write_png(folder / "small.png", 20, 60, seed=2)  # shorter side 20 < crop 32: skipped
    Image.fromarray(np.full((48, 48), 128, np.uint8), "L").save(folder / "grey.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_image_bank_crops(image_folder):
    bank = ImageBank([image_folder], min_size=32)
    assert len(bank) == 3 and bank.skipped == 1
    assert all(img.dtype == torch.uint8 and img.shape[0] == 3 for img in bank.images)  # grey -> RGB
    crops = bank.random_crops(16, 32, torch.Generator().manual_seed(0))
    assert crops.shape == (16, 3, 32, 32) and crops.dtype == torch.float32
    assert crops.min() >= 0 and crops.max() <= 1
    assert torch.equal(crops * 255, (crops * 255).round())  # 8-bit values
    same = bank.random_crops(16, 32, torch.Generator().manual_seed(0))
    other = bank.random_crops(16, 32, torch.Generator().manual_seed(1))
    assert torch.equal(crops, same) and not torch.equal(crops, other)
    whole = bank.random_crops(4, 36, torch.Generator().manual_seed(0))  # crop = the smallest side
    assert whole.shape == (4, 3, 36, 36)


def test_image_bank_crops_come_from_the_images(tmp_path):
    """Every crop is a 32x32 window of its source image, rotated by a multiple of 90° and maybe flipped."""
    folder = tmp_path / "one"
    folder.mkdir()
    write_png(folder / "x.png", 33, 34, seed=5)
    bank = ImageBank([folder], min_size=32)
    source = bank.images[0].float() / 255
    crops = bank.random_crops(8, 32, torch.Generator().manual_seed(0))
    windows = [source[:, top:top + 32, left:left + 32] for top in range(2) for left in range(3)]
    for crop in crops:
        variants = [torch.rot90(w, k, dims=(1, 2)) for w in windows for k in range(4)]
        variants += [v.flip(2) for v in variants]
        assert any(torch.equal(crop, v) for v in variants)


def test_image_bank_errors_and_limits(image_folder, tmp_path):
    with pytest.raises(ValueError, match="no training images of at least 100x100"):
        ImageBank([image_folder], min_size=100)
    assert len(ImageBank([image_folder], min_size=8, max_images=2)) == 2
    assert len(ImageBank([image_folder, image_folder], min_size=32)) == 6
    with pytest.raises(FileNotFoundError):
        ImageBank([tmp_path / "missing"], min_size=8)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_degrade_bicubic_shape_and_range(scale):
    hr = torch.rand(2, 3, 48, 40)
    lr = degrade_bicubic(hr, scale)
    assert lr.shape == (2, 3, 48 // scale, 40 // scale)
    assert lr.min() >= 0 and lr.max() <= 1
    assert torch.equal(lr * 255, (lr * 255).round())
    assert degrade_bicubic(torch.rand(1, 3, 30, 31), 4).shape == (1, 3, 8, 8)  # MATLAB rounds up
    flat = torch.full((1, 3, 16, 16), 0.5)
    assert torch.allclose(degrade_bicubic(flat, scale), torch.full_like(degrade_bicubic(flat, scale), 0.5),
                          atol=1 / 255)


def test_synthetic_data_reuses_one_batch_and_real_data_does_not(image_folder):
    import argparse

    from ganzoo.data import sr_batches

    bank = ImageBank([image_folder], min_size=32)
    args = argparse.Namespace(batch_size=2, crop_size=32, scale=4, synthetic_data=True)
    synthetic = sr_batches(args, bank)
    first, second = synthetic(torch.Generator().manual_seed(1)), synthetic(torch.Generator().manual_seed(2))
    assert first[0] is second[0] and first[1].shape == (2, 3, 8, 8)
    real = sr_batches(argparse.Namespace(**{**vars(args), "synthetic_data": False}), bank)
    assert not torch.equal(real(torch.Generator().manual_seed(1))[0], real(torch.Generator().manual_seed(2))[0])


def test_blur_pairs_levin_and_gopro_layouts(levin_like, tmp_path):
    pairs = blur_pairs(levin_like)
    assert [(b.name, s.name) for b, s in pairs] == [
        ("im_1_ker_1.png", "im_1.png"), ("im_1_ker_2.png", "im_1.png"),
        ("im_2_ker_1.png", "im_2.png"), ("im_2_ker_2.png", "im_2.png")]
    for scene in ("GOPR0001", "GOPR0002"):
        for sub in ("blur", "sharp"):
            save(torch.rand(1, 3, 40, 48), tmp_path / "train" / scene / sub / "000001.png")
    gopro = blur_pairs(tmp_path)
    assert len(gopro) == 2 and all(b.parent.name == "blur" and s.parent.name == "sharp" for b, s in gopro)
    bank = PairedImageBank([tmp_path], min_size=32)
    blurred, sharp = bank.random_pairs(3, 32, torch.Generator().manual_seed(0))
    assert blurred.shape == sharp.shape == (3, 3, 32, 32)


def test_blur_pairs_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no blurred/sharp pairs"):
        blur_pairs(tmp_path)
    save(torch.rand(1, 3, 8, 8), tmp_path / "blur" / "a.png")
    (tmp_path / "sharp").mkdir()
    with pytest.raises(FileNotFoundError, match="no sharp image a"):
        blur_pairs(tmp_path)


def test_paired_crops_stay_aligned(tmp_path):
    sharp = torch.rand(1, 3, 50, 60)
    save(sharp, tmp_path / "s" / "sharp" / "x.png")
    save(1 - sharp, tmp_path / "s" / "blur" / "x.png")  # a known pixelwise relation
    blurred, crops = PairedImageBank([tmp_path], min_size=16).random_pairs(8, 16, torch.Generator().manual_seed(1))
    assert torch.allclose(blurred, 1 - crops, atol=1 / 255 + 1e-6)


def test_longest_sharp_stem_wins():
    stems = {"car", "car_2", "im_1", "im_10"}
    assert sharp_stem_of("car_2_kernel_01", stems) == "car_2"
    assert sharp_stem_of("car_kernel_01", stems) == "car"
    assert sharp_stem_of("im_10_ker_3", stems) == "im_10" and sharp_stem_of("im_1_ker_3", stems) == "im_1"
    assert sharp_stem_of("car_2", stems) == "car_2"  # GoPro: the same name
    assert sharp_stem_of("carpet_kernel_01", stems) is None  # a prefix must end at an underscore


def test_ambiguous_stems_pair_with_the_longest_and_read_lai_kernels(tmp_path):
    for stem in ("car", "car_2"):
        save(torch.full((1, 3, 24, 24), 0.2 if stem == "car" else 0.8), tmp_path / "sharp" / f"{stem}.png")
    kernel = degrade.shake_kernel(6, torch.Generator().manual_seed(0))
    (tmp_path / "kernels").mkdir()
    Image.fromarray((kernel / kernel.max() * 255).round().byte().numpy()).save(tmp_path / "kernels" / "kernel_01.png")
    for stem in ("car", "car_2"):
        save(torch.rand(1, 3, 24, 24), tmp_path / "blurred" / f"{stem}_kernel_01.png")
    pairs = {b.stem: s.stem for b, s in blur_pairs(tmp_path)}
    assert pairs == {"car_kernel_01": "car", "car_2_kernel_01": "car_2"}
    cases = deblur_cases(tmp_path)
    assert [c[0] for c in cases] == ["blurred/car_2_kernel_01", "blurred/car_kernel_01"]
    assert all(c[3] is not None and c[3].shape == kernel.shape for c in cases)  # the true kernel, read from kernels/
    save(torch.rand(1, 3, 24, 24), tmp_path / "blurred" / "car_kernel_07.png")
    with pytest.raises(ValueError, match="names kernel 7"):
        deblur_cases(tmp_path)


def per_crop_reference(bank: ImageBank, batch_size: int, size: int, rng: torch.Generator) -> torch.Tensor:
    """`random_crops` as it was before issue 29: one slice, rotation and flip per crop."""
    choice = torch.randint(len(bank.images), (batch_size,), generator=rng).tolist()
    fractions = torch.rand(batch_size, 2, generator=rng).tolist()
    flips = torch.randint(0, 8, (batch_size,), generator=rng).tolist()
    crops = []
    for index, (fy, fx), flip in zip(choice, fractions, flips):
        image = bank.images[index]
        top, left = int(fy * (image.shape[1] - size + 1)), int(fx * (image.shape[2] - size + 1))
        crop = torch.rot90(image[:, top:top + size, left:left + size], flip % 4, dims=(1, 2))
        crops.append(crop.flip(2) if flip >= 4 else crop)
    return torch.stack(crops).float().div_(255)


@pytest.mark.parametrize("size", [1, 7, 36])
def test_random_crops_are_one_gather_with_the_per_crop_results(image_folder, size):
    bank = ImageBank([image_folder], min_size=36)
    assert len({tuple(image.shape) for image in bank.images}) == 3  # three different sizes
    for seed in range(4):
        crops = bank.random_crops(40, size, torch.Generator().manual_seed(seed))
        assert torch.equal(crops, per_crop_reference(bank, 40, size, torch.Generator().manual_seed(seed)))


def test_random_crops_follow_images_replaced_in_place(image_folder):
    bank = ImageBank([image_folder], min_size=32)
    bank.random_crops(2, 32, torch.Generator().manual_seed(0))
    bank.images[0] = torch.zeros(3, 33, 40, dtype=torch.uint8)  # as train_adain's resizing or a streamed swap
    bank.images[1] = torch.full((3, 40, 32), 255, dtype=torch.uint8)
    crops = bank.random_crops(16, 32, torch.Generator().manual_seed(1))
    assert torch.equal(crops, per_crop_reference(bank, 16, 32, torch.Generator().manual_seed(1)))
    assert {0.0, 1.0} <= {float(c.mean()) for c in crops}
    with pytest.raises(ValueError, match="smallest image side is 32"):
        bank.random_crops(2, 33, torch.Generator().manual_seed(0))


def test_paired_crops_keep_the_pairs_aligned_in_one_gather(tmp_path):
    sharp = torch.rand(1, 3, 30, 41)
    save(sharp, tmp_path / "s" / "sharp" / "x.png")
    save(1 - sharp, tmp_path / "s" / "blur" / "x.png")
    bank = PairedImageBank([tmp_path], min_size=16)
    crops = bank.random_crops(12, 16, torch.Generator().manual_seed(2))
    assert crops.shape == (12, 6, 16, 16)
    assert torch.equal(crops, per_crop_reference(bank, 12, 16, torch.Generator().manual_seed(2)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_random_crops_with_a_cuda_bank_and_generator(image_folder):
    bank = ImageBank([image_folder], min_size=32, device="cuda")
    crops = bank.random_crops(8, 32, torch.Generator(device="cuda").manual_seed(0))
    assert crops.device.type == "cuda" and crops.shape == (8, 3, 32, 32)
    cpu_rng = bank.random_crops(8, 32, torch.Generator().manual_seed(0))
    cpu_bank = ImageBank([image_folder], min_size=32)
    assert torch.equal(cpu_rng.cpu(), cpu_bank.random_crops(8, 32, torch.Generator().manual_seed(0)))
