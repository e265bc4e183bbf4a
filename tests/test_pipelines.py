import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ganzoo import pipelines
from ganzoo.imaging import image_to_tensor, imresize
from ganzoo.models.digits import DigitGenerator


@pytest.fixture(scope="module")
def generator() -> DigitGenerator:
    torch.manual_seed(0)
    return DigitGenerator(channels=4).eval()


class TinySR(nn.Module):
    """A conv + pixel-shuffle x2 upscaler: receptive field of one pixel, well inside the tile overlap."""

    scale = 2

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.PixelShuffle(2), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _rgb(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)


# -- digits -------------------------------------------------------------------------------------------

def test_digit_labels_repeat_a_digit_or_cycle_through_the_classes():
    assert pipelines.digit_labels(7, 5, seed=0).tolist() == [7] * 5
    assert pipelines.digit_labels(None, 12, seed=3).tolist() == [*range(10), 0, 1]


@pytest.mark.parametrize(("digit", "n"), [(10, 4), (-1, 4), (3, 0), (3, 1025), (None, 0)])
def test_digit_labels_reject_bad_values(digit, n):
    with pytest.raises(ValueError):
        pipelines.digit_labels(digit, n, seed=0)


def test_sample_digits_is_deterministic_per_seed(generator):
    first = pipelines.sample_digits(generator, n=6, seed=5, digit=3)
    assert first.shape == (6, 1, 28, 28) and 0 <= first.min() and first.max() <= 1
    assert torch.equal(first, pipelines.sample_digits(generator, n=6, seed=5, digit=3))
    assert not torch.equal(first, pipelines.sample_digits(generator, n=6, seed=6, digit=3))
    assert not torch.equal(first, pipelines.sample_digits(generator, n=6, seed=5, digit=4))


def test_sample_digits_grid_size(generator):
    grid = pipelines.sample_digits_grid(generator, n=10, seed=0, nrow=5)
    assert grid.size == (5 * 30 + 2, 2 * 30 + 2)  # make_grid pads 2 pixels around each digit


def test_interpolation_strip_runs_from_seed_a_to_seed_b(generator):
    strip = np.asarray(pipelines.interpolate_digits(generator, seed_a=1, seed_b=2, digit=8, steps=5), dtype=int)
    assert strip.shape[:2] == (32, 5 * 30 + 2)
    for seed, left in ((1, 2), (2, 4 * 30 + 2)):
        end = np.asarray(pipelines.sample_digits_grid(generator, n=1, seed=seed, digit=8, nrow=1), dtype=int)
        assert end.shape[:2] == (28, 28)  # make_grid leaves a single image unpadded
        assert np.abs(strip[2:30, left:left + 28] - end).max() <= 1


def test_slerp_keeps_the_norm_between_orthogonal_vectors():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    path = pipelines.slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], a[0]) and torch.allclose(path[-1], b[0], atol=1e-6)
    assert torch.allclose(path.norm(dim=1), torch.full((5,), 3.0))


# -- image to image -----------------------------------------------------------------------------------

def test_alpha_is_kept_and_upscaled():
    rgba = _rgb(6, 8, channels=4)
    out = pipelines.run_image_to_image(Image.fromarray(rgba, "RGBA"), lambda x: imresize(x, scale=2), scale=2,
                                       device=torch.device("cpu"))
    assert out.mode == "RGBA" and out.size == (16, 12)
    alpha = torch.from_numpy(rgba[..., 3]).float()[None, None] / 255
    expected = (imresize(alpha, scale=2).clamp(0, 1) * 255).round()[0, 0].numpy()
    assert np.array_equal(np.asarray(out)[..., 3], expected.astype(np.uint8))


def test_sixteen_bit_grey_stays_sixteen_bit():
    grey = np.random.default_rng(0).integers(0, 65536, (9, 7), dtype=np.uint16)
    out = pipelines.run_image_to_image(grey, lambda x: x, device=torch.device("cpu"))
    assert out.mode == "I;16" and np.array_equal(np.asarray(out), grey)
    assert pipelines.upscale(grey, scale=2, device=torch.device("cpu")).mode == "I;16"


def test_tiled_equals_untiled():
    model, image = TinySR(), Image.fromarray(_rgb(70, 100))
    whole = pipelines.upscale(image, model, device=torch.device("cpu"))
    tiled = pipelines.upscale(image, model, tile=40, device=torch.device("cpu"))
    assert whole.size == (200, 140)
    assert np.abs(np.asarray(whole, dtype=int) - np.asarray(tiled, dtype=int)).max() <= 1


def test_sr_upscaler_tiled_equals_untiled_on_tensors():
    model, lr = TinySR(), torch.rand(1, 3, 50, 45, generator=torch.Generator().manual_seed(0))
    whole = pipelines.sr_upscaler(model, device=torch.device("cpu"))(lr)
    tiled = pipelines.sr_upscaler(model, tile=36, device=torch.device("cpu"))(lr)
    assert whole.shape == (1, 3, 100, 90) and torch.allclose(whole, tiled, atol=1e-6)


def test_upscale_bicubic_is_matlab_imresize():
    image = _rgb(7, 10)
    out = pipelines.upscale(image, scale=4, device=torch.device("cpu"))
    assert out.mode == "RGB" and out.size == (40, 28)
    rgb, _, _ = image_to_tensor(Image.fromarray(image))
    expected = (imresize(rgb, scale=4).clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy().astype(np.uint8)
    assert np.array_equal(np.asarray(out), expected)


def test_upscale_uses_the_models_own_scale_and_refuses_other_models():
    assert pipelines.upscale(_rgb(5, 6), TinySR(), scale=4, device=torch.device("cpu")).size == (12, 10)
    with pytest.raises(ValueError, match="not a super-resolution model"):
        pipelines.upscale(_rgb(5, 6), nn.Identity(), device=torch.device("cpu"))


def test_a_model_that_returns_the_wrong_size_is_a_clear_error():
    with pytest.raises(ValueError, match="expected 1 images of 10x12"):
        pipelines.run_image_to_image(_rgb(5, 6), lambda x: x, scale=2, device=torch.device("cpu"))


def test_pick_device():
    assert pipelines.pick_device("cpu") == torch.device("cpu")
    assert pipelines.pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        pipelines.pick_device("nonsense")


def test_expand_inputs_lists_folder_images_sorted_and_keeps_missing_files(tmp_path):
    for name in ("b.png", "a.JPG", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    missing = tmp_path / "missing.png"
    assert pipelines.expand_inputs([str(tmp_path), str(missing)]) == [tmp_path / "a.JPG", tmp_path / "b.png",
                                                                      missing]
