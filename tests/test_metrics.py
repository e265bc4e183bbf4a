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
