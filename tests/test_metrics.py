import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ganzoo.metrics import frechet_distance, grid_artifact_score, psnr, rgb_to_y, ssim, structure_ssim

CROP = 4


def _y_numpy(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an HxWx3 float image in [0,1], written independently of ganzoo."""
    return (16.0 + rgb[..., 0] * 65.481 + rgb[..., 1] * 128.553 + rgb[..., 2] * 24.966) / 255.0


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0)


def _pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    pairs = []
    for name in ("astronaut", "chelsea", "coffee"):
        clean = getattr(data, name)().astype(np.float64) / 255.0
        noisy = np.clip(clean + rng.normal(0.0, 0.05, clean.shape), 0.0, 1.0)
        blurred = ndimage.gaussian_filter(clean, sigma=(1.2, 1.2, 0))
        pairs += [(f"{name}-noisy", noisy, clean), (f"{name}-blurred", blurred, clean)]
    return pairs


PAIRS = _pairs()


@pytest.mark.parametrize("name,pred,target", PAIRS, ids=[p[0] for p in PAIRS])
@pytest.mark.parametrize("y_channel", [False, True], ids=["rgb", "y"])
def test_psnr_and_ssim_match_skimage(name, pred, target, y_channel):
    ref_pred, ref_target = pred[CROP:-CROP, CROP:-CROP], target[CROP:-CROP, CROP:-CROP]
    channel_axis = 2
    if y_channel:
        ref_pred, ref_target, channel_axis = _y_numpy(ref_pred), _y_numpy(ref_target), None
    ref_psnr = peak_signal_noise_ratio(ref_target, ref_pred, data_range=1.0)
    ref_ssim = structural_similarity(
        ref_pred,
        ref_target,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=channel_axis,
    )
    kwargs = dict(crop_border=CROP, y_channel=y_channel)
    assert psnr(_to_tensor(pred), _to_tensor(target), **kwargs).item() == pytest.approx(
        ref_psnr, abs=1e-3
    )
    assert ssim(_to_tensor(pred), _to_tensor(target), **kwargs).item() == pytest.approx(
        ref_ssim, abs=1e-4
    )


def test_metrics_are_per_image_and_respect_data_range():
    _, pred, target = PAIRS[0]
    batch_pred = torch.cat([_to_tensor(pred), _to_tensor(target)]).float()
    batch_target = torch.cat([_to_tensor(target), _to_tensor(target)]).float()
    values = psnr(batch_pred, batch_target)
    assert values.shape == (2,) and values.dtype == torch.float64
    assert torch.isfinite(values[0]) and values[1] == float("inf")
    ssims = ssim(batch_pred, batch_target)
    assert ssims[0] < 1 and ssims[1].item() == pytest.approx(1.0)
    scaled = ssim(batch_pred * 255, batch_target * 255, y_channel=True, data_range=255.0)
    assert torch.allclose(scaled, ssim(batch_pred, batch_target, y_channel=True), atol=1e-6)
    assert psnr(batch_pred * 255, batch_target * 255, data_range=255.0)[0].item() == pytest.approx(
        values[0].item()
    )


def test_rgb_to_y_endpoints():
    black_white = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    assert torch.allclose(rgb_to_y(black_white).flatten(), torch.tensor([16 / 255, 235 / 255]))


@pytest.mark.parametrize(
    "pred_shape,target_shape,kwargs,message",
    [
        ((1, 3, 16, 16), (1, 3, 16, 17), {}, "shapes differ"),
        ((3, 16, 16), (3, 16, 16), {}, r"\[N,C,H,W\]"),
        ((1, 3, 16, 16), (1, 3, 16, 16), {"crop_border": 8}, "crop_border"),
        ((1, 1, 16, 16), (1, 1, 16, 16), {"y_channel": True}, "3 RGB channels"),
    ],
)
def test_metric_inputs_are_validated(pred_shape, target_shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        psnr(torch.rand(pred_shape), torch.rand(target_shape), **kwargs)


def test_ssim_needs_a_full_window():
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 20, 20), torch.rand(1, 3, 20, 20), crop_border=5)


def test_frechet_distance_matches_eigenvalue_formula():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(0.5, 2.0, size=(300, 6))
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr sqrt(A B) = sum of square roots of the (real, non-negative) eigenvalues of A B
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvals(cov_a @ cov_b).real, 0, None)).sum()
    mean_diff = a.mean(0) - b.mean(0)
    expected = mean_diff @ mean_diff + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(torch.from_numpy(a).float(), torch.from_numpy(b)) == pytest.approx(
        expected, rel=1e-4
    )
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_with_singular_covariance_is_finite():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(5, 32)), rng.normal(size=(5, 32))
    assert np.isfinite(frechet_distance(a, b))


def test_frechet_distance_validates_shapes():
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"\[N,D\]"):
        frechet_distance(np.zeros((1, 3)), np.zeros((4, 3)))


# -- grid-artefact score and structure SSIM ---------------------------------------------------------

def _lattice(height: int, width: int, period: int) -> np.ndarray:
    """A zero-mean random period x period tile repeated over the image, in [-1, 1]: the lattice an
    upsampling layer paints (for period 4 it has energy at all 15 lattice frequencies, for 2 at 3)."""
    tile = np.random.default_rng(period).uniform(-1, 1, (period, period))
    tile -= tile.mean()
    return np.tile(tile, (height // period + 1, width // period + 1))[:height, :width]


def _smooth(height: int = 128, width: int = 160) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width] / 50.0
    return 0.5 + 0.3 * np.sin(xx) * np.cos(0.7 * yy)


@pytest.mark.parametrize("period,high", [(2, 0.6), (4, 2.0)])
def test_grid_score_is_high_for_a_lattice_and_low_for_smooth_and_natural_images(period, high):
    astronaut = data.astronaut().astype(np.float64) / 255.0
    lattice_on_photo = np.clip(astronaut + 0.03 * _lattice(*astronaut.shape[:2], period)[..., None], 0, 1)
    assert grid_artifact_score(_smooth()) < 0.3
    assert grid_artifact_score(data.astronaut()) < 0.3 and grid_artifact_score(data.camera()) < 0.3
    assert grid_artifact_score(_smooth() + 0.03 * _lattice(128, 160, period)) > high
    assert grid_artifact_score(lattice_on_photo) > high
    # a weaker lattice scores lower: the score measures its strength, it is not a detector
    weak = np.clip(astronaut + 0.005 * _lattice(*astronaut.shape[:2], period)[..., None], 0, 1)
    assert grid_artifact_score(data.astronaut()) < grid_artifact_score(weak) < grid_artifact_score(lattice_on_photo)


def test_grid_score_accepts_arrays_and_tensors_alike():
    rgb = data.chelsea()[:100, :130]
    tensor = torch.from_numpy(rgb).permute(2, 0, 1).double() / 255
    expected = grid_artifact_score(rgb)
    assert grid_artifact_score(tensor) == pytest.approx(expected)
    assert grid_artifact_score(tensor[None]) == pytest.approx(expected)
    luma = rgb_to_y(tensor[None])[0]
    assert grid_artifact_score(luma) == pytest.approx(expected) == grid_artifact_score(luma[0].numpy())
    with pytest.raises(ValueError, match="16x16"):
        grid_artifact_score(np.zeros((15, 40)))
    with pytest.raises(ValueError, match="batch"):
        grid_artifact_score(torch.zeros(2, 3, 32, 32))


def test_structure_ssim_ignores_fine_texture_but_not_a_different_layout():
    photo = torch.from_numpy(data.astronaut()[::2, ::2].copy()).permute(2, 0, 1)[None].double() / 255
    textured = (photo + 0.1 * torch.from_numpy(_lattice(*photo.shape[-2:], 2))).clamp(0, 1)
    other = torch.from_numpy(data.coffee()[:256, :256].copy()).permute(2, 0, 1)[None].double() / 255
    assert structure_ssim(photo, photo).item() == pytest.approx(1.0)
    assert structure_ssim(textured, photo).item() > 0.95 > ssim(textured, photo).item()
    assert structure_ssim(other, photo).item() < 0.5
    with pytest.raises(ValueError, match="RGB"):
        structure_ssim(photo[:, :1], photo[:, :1])


# -- detail ratio -----------------------------------------------------------------------------------

def test_detail_ratio_is_one_for_the_reference_below_for_blur_above_for_noise():
    from ganzoo.imaging import degrade_bicubic, imresize
    from ganzoo.metrics import detail_ratio

    photo = torch.from_numpy(data.astronaut()[:256, :256].copy()).permute(2, 0, 1)[None].double() / 255
    assert detail_ratio(photo, photo, crop_border=4).item() == pytest.approx(1.0)
    bicubic = imresize(degrade_bicubic(photo, 4), 4).clamp(0, 1)
    noisy = (photo + 0.05 * torch.randn(photo.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert 0.3 < detail_ratio(bicubic, photo, crop_border=4).item() < 0.8
    assert detail_ratio(noisy, photo).item() > 1.2
    grey = photo.mean(1, keepdim=True)  # one channel: used as luma
    assert detail_ratio(grey, grey).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        detail_ratio(photo, grey)


# -- deblurring: alignment, kernel similarity, error ratio (cases worked out by hand) -----------------

from ganzoo.metrics import (  # noqa: E402
    align_to_reference,
    aligned_scores,
    error_ratio,
    evaluation_planes,
    kernel_similarity,
)


def _bilinear_surface(h: int, w: int, dy: float = 0.0, dx: float = 0.0) -> torch.Tensor:
    """f(i, j) = (i - dy + 3)(j - dx + 7) / 10^4: bilinear, so bilinear interpolation reproduces it exactly,
    and f(i + u, j + v) = f(i, j) everywhere only for u = v = 0 (the best shift is unique)."""
    i = torch.arange(h, dtype=torch.float64)[:, None]
    j = torch.arange(w, dtype=torch.float64)[None, :]
    return (i - dy + 3) * (j - dx + 7) / 1e4


@pytest.mark.parametrize("dy,dx", [(1.25, -2.5), (-5.0, 0.75), (0.0, 0.0), (3.0, 4.0)])
def test_alignment_finds_a_known_subpixel_shift(dy, dx):
    target = _bilinear_surface(60, 70)
    pred = _bilinear_surface(60, 70, dy, dx)  # the target moved by (dy, dx)
    aligned, reference, shift = align_to_reference(pred, target)
    assert shift == (dy, dx)
    assert reference.shape == (1, 1, 30, 40)  # 15 px cut from every side
    assert torch.allclose(aligned, reference, atol=1e-12)
    assert psnr(aligned, reference).item() > 200  # exact up to rounding; unaligned it is far from that
    if (dy, dx) != (0.0, 0.0):
        assert psnr(pred[None, None], target[None, None]).item() < 60


def test_alignment_of_an_integer_roll_of_a_random_image():
    target = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    pred = torch.roll(target, (2, -3), dims=(2, 3))
    scores = aligned_scores(pred, target)
    assert (scores["shift_y"], scores["shift_x"]) == (2.0, -3.0)  # pred[i, j] = target[i - 2, j + 3]
    assert scores["ssd"] == 0 and scores["ssim"] == pytest.approx(1.0)


def test_aligned_psnr_by_hand_grey_and_colour():
    target = torch.full((1, 3, 50, 50), 0.5, dtype=torch.float64)
    # grey: scored on the grey plane itself, MSE 0.1^2 -> 20 dB whatever the shift
    assert aligned_scores(torch.full_like(target, 0.6), target)["psnr"] == pytest.approx(20.0)
    # colour: on BT.601 luma; red up by 0.1 moves Y by 0.1 * 65.481 / 255
    red = target.clone()
    red[:, 0] = 0.6
    expected = -20 * np.log10(0.1 * 65.481 / 255)
    assert aligned_scores(red, target)["psnr"] == pytest.approx(expected, abs=1e-9)
    assert [p.shape for p in evaluation_planes(red, target)] == [(1, 1, 50, 50)] * 2
    with pytest.raises(ValueError, match="at least the largest shift"):
        align_to_reference(red, target, crop=3)
    with pytest.raises(ValueError, match="shapes differ"):
        align_to_reference(red, target[..., :40])


def test_kernel_similarity_by_hand():
    horizontal = torch.tensor([[0.5, 0.5]])
    diagonal = torch.tensor([[0.5, 0.0], [0.0, 0.5]])
    # best overlap: one tap of each, 0.25, over norms sqrt(0.5) * sqrt(0.5)
    assert kernel_similarity(horizontal, diagonal) == pytest.approx(0.5)
    # [1,1,1]/3 against [1,1]/2: 2 * 1/6 over (1/sqrt 3)(1/sqrt 2) = sqrt(2/3)
    assert kernel_similarity(torch.ones(1, 3) / 3, horizontal) == pytest.approx(np.sqrt(2 / 3))
    # a kernel moved anywhere inside a larger grid is the same kernel
    kernel = torch.rand(5, 5, generator=torch.Generator().manual_seed(1))
    grid = torch.zeros(15, 15)
    grid[1:6, 8:13] = kernel
    assert kernel_similarity(grid, kernel) == pytest.approx(1.0)
    assert kernel_similarity(kernel, kernel.T.flip(0)) < 0.99
    with pytest.raises(ValueError, match="non-zero"):
        kernel_similarity(torch.zeros(3, 3), kernel)


def test_error_ratio_by_hand():
    sharp = torch.full((1, 3, 60, 60), 0.5)
    with_true, with_estimate = torch.full_like(sharp, 0.51), torch.full_like(sharp, 0.53)
    # SSD ratio (0.03 / 0.01)^2 = 9, aligned (30x30 crop) or not (the whole image)
    assert error_ratio(with_estimate, with_true, sharp) == pytest.approx(9.0)
    assert error_ratio(with_estimate, with_true, sharp, aligned=False) == pytest.approx(9.0)
    assert error_ratio(sharp, sharp, sharp) == 1.0
    # a shifted restoration costs nothing once aligned
    moved = torch.roll(torch.rand(1, 1, 60, 60, generator=torch.Generator().manual_seed(2)), 1, dims=3)
    reference = torch.roll(moved, -1, dims=3)
    assert error_ratio(moved, reference + 0.01, reference) == pytest.approx(0.0, abs=1e-20)
