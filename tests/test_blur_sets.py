"""ganzoo.blur_sets: held-out deblur sets and their kernels."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from ganzoo import degrade
from ganzoo.blur_sets import HeldOut, set_kernels

from conftest import save


def test_set_kernels_have_the_asked_sizes_and_lengths():
    sized = set_kernels(6, seed=3, sizes=(31, 75))
    assert all(31 <= k.shape[0] <= 75 and k.shape[0] % 2 == 1 for k in sized)
    # the path reaches the grid's edge: the kernel is as large as its grid says
    support = [torch.nonzero(k > 0) for k in sized]
    assert all(s.min() <= 2 or s.max() >= k.shape[0] - 3 for s, k in zip(support, sized))
    short = set_kernels(6, seed=3, lengths=(5, 30))
    assert all(k.shape[0] <= 33 and torch.isclose(k.sum(), torch.tensor(1.0)) for k in short)
    with pytest.raises(ValueError, match="one of the two"):
        set_kernels(2, seed=0)


def test_held_out_images_are_dropped_and_kernels_refused(lai_set, photos, tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    # a re-encoded copy (JPEG source -> PNG) is caught by its pixels, whatever its name
    Image.open(lai_set / "sharp" / "coffee.png").save(train / "renamed.png")
    save(torch.rand(1, 3, 40, 40), train / "fresh.png")
    guard = HeldOut([lai_set])
    kept, dropped = guard.split_images([train])
    assert [p.name for p in kept] == ["fresh.png"] and [p.name for p in dropped] == ["renamed.png"]
    set_kernel = degrade.load_kernels(lai_set / "kernels" / "kernel_02.png")[0]
    with pytest.raises(ValueError, match="held-out evaluation set"):
        guard.check_kernels([degrade.center_kernel(set_kernel, 31)], "recorded")  # zero-padded copy
    guard.check_kernels([degrade.shake_kernel(20, torch.Generator().manual_seed(9))], "recorded")  # others pass
    with pytest.raises(FileNotFoundError):
        HeldOut([tmp_path / "missing"])
