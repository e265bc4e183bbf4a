"""ganzoo.deconvolution: non-blind deconvolution with a hyper-Laplacian prior, its inputs and noise estimate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from ganzoo import degrade, imaging
from ganzoo.deconvolution import (
    _shrinkage_table,
    check_kernel,
    deconvolve,
    deconvolve_batch,
    estimate_noise,
    load_kernel,
)
from ganzoo.evaluate import richardson_lucy
from ganzoo.metrics import psnr


def _photo(size: int = 96, top: int = 80, left: int = 180) -> torch.Tensor:
    """A crop of skimage's astronaut, RGB [3,size,size] in [0, 1]."""
    return torch.from_numpy(skdata.astronaut()[top:top + size, left:left + size]).permute(2, 0, 1).float() / 255


def _kernel() -> torch.Tensor:
    return degrade.shake_kernel(18.0, torch.Generator().manual_seed(3))


def _blur_from_outside(sharp_region: torch.Tensor, kernel: torch.Tensor, size: int) -> torch.Tensor:
    """The central size x size of a region blurred with real content all around: what a photo's frame sees."""
    return degrade.blur_valid(sharp_region[None], kernel, size)[0]


def test_true_kernel_deconvolution_beats_richardson_lucy():
    sharp = _photo()
    kernel = _kernel()
    rng = torch.Generator().manual_seed(0)
    blurred = imaging.quantize(degrade.add_noise(degrade.blur(sharp[None], kernel), 0.01, rng))
    restored = deconvolve(blurred[0], kernel)
    reference = imaging.quantize(richardson_lucy(blurred, kernel))
    gain = psnr(restored[None], sharp[None]).item() - psnr(reference, sharp[None]).item()
    assert restored.shape == sharp.shape and restored.dtype == torch.float32
    assert gain > 1.5, gain
    assert psnr(restored[None], sharp[None]).item() > psnr(blurred, sharp[None]).item() + 4


def test_the_border_does_not_ring():
    """Blur that reaches in from outside the frame. The border band (within the kernel's reach of the edge) has
    lost information for good, but the unknown-boundary model still restores it above the blurred input, and the
    interior far above; a circular model (which assumes the frame wraps around) rings: worse than the input."""
    kernel = _kernel()
    margin = kernel.shape[0]
    region = _photo(96 + 2 * margin, 60, 160)
    sharp = region[:, margin:-margin, margin:-margin]
    blurred = _blur_from_outside(region, kernel, 96) + 0.002 * torch.randn(3, 96, 96,
                                                                            generator=torch.Generator().manual_seed(1))
    band = 8

    def border_and_interior(restored: torch.Tensor) -> tuple[float, float]:
        error = (restored - sharp).pow(2)
        inside = torch.zeros(96, 96, dtype=torch.bool)
        inside[band:-band, band:-band] = True
        return (10 * torch.log10(1 / error[:, ~inside].mean())).item(), (10 * torch.log10(1 / error[:, inside].mean())).item()

    input_border, input_interior = border_and_interior(blurred)
    border, interior = border_and_interior(deconvolve(blurred.clamp(0, 1), kernel))
    assert border > input_border + 1.0 and interior > input_interior + 6.0, (border, interior, input_border)
    wrapped_border, wrapped_interior = border_and_interior(deconvolve(blurred.clamp(0, 1), kernel, boundary="circular"))
    assert wrapped_border < input_border - 5.0 and wrapped_interior < interior - 5.0, (wrapped_border, border)


def test_noise_estimate_on_blurred_images():
    sharp = _photo(128)[None]
    blurred = degrade.blur(sharp, _kernel())
    for sigma in (0.005, 0.01, 0.03):
        noisy = blurred + sigma * torch.randn(blurred.shape, generator=torch.Generator().manual_seed(2))
        assert estimate_noise(noisy[0]) == pytest.approx(sigma, rel=0.15)
    assert estimate_noise(blurred[0, 0]) < 0.003  # [H,W] accepted; nearly noise-free
    with pytest.raises(ValueError, match="3x3"):
        estimate_noise(torch.zeros(1, 2, 5))


def test_shrinkage_table_is_the_exact_minimiser():
    """The w-step's table against brute force: argmin over a fine grid of |w|^a + b/2 (w - v)^2."""
    grid = np.linspace(-0.1, 2.1, 220001)
    for alpha, beta in ((2 / 3, 8.0), (0.5, 64.0), (1.0, 22.6)):
        table = _shrinkage_table(alpha, beta).numpy()
        for v in (0.01, 0.2, 0.5, 1.3):
            brute = grid[np.argmin(np.abs(grid) ** alpha + beta / 2 * (grid - v) ** 2)]
            assert table[round(v / 2.0 * (len(table) - 1))] == pytest.approx(brute, abs=2e-4), (alpha, beta, v)


def test_grey_batches_stay_grey_and_match_one_channel():
    sharp = _photo(64)[1:2]
    kernel = _kernel()
    blurred = degrade.blur(sharp[None].expand(1, 3, -1, -1), kernel)
    out = deconvolve_batch(blurred, kernel, noise_sigma=0.005)
    assert out.shape == (1, 3, 64, 64) and torch.equal(out[0, 0], out[0, 2])
    assert torch.allclose(out[0, :1], deconvolve(blurred[0, :1], kernel, noise_sigma=0.005), atol=1e-6)
    assert deconvolve(blurred[0, 0], kernel, noise_sigma=0.005).shape == (64, 64)


@pytest.mark.parametrize("kernel,message", [
    (torch.zeros(5, 5), "all zero"),
    (-torch.ones(3, 3), "negative"),
    (torch.tensor([[0.5, float("nan")]]), "NaN"),
    (torch.ones(3), "2-D"),
    (torch.ones(0, 4), "non-empty"),
    (torch.ones(400, 3), "at most"),
    (torch.ones(70, 70), "larger than the 64x64 image"),
])
def test_bad_kernels_are_clear_errors(kernel, message):
    with pytest.raises(ValueError, match=message):
        deconvolve(torch.rand(3, 64, 64), kernel)


def test_bad_options_are_clear_errors():
    image, kernel = torch.rand(3, 32, 32), torch.ones(3, 3)
    for options, message in ((dict(method="wiener"), "method"), (dict(boundary="zero"), "boundary"),
                             (dict(alpha=1.5), "alpha"), (dict(noise_sigma=-0.1), "noise_sigma"),
                             (dict(inner_iterations=0), "inner_iterations"), (dict(prior_scale=0.0), "prior_scale")):
        with pytest.raises(ValueError, match=message):
            deconvolve(image, kernel, **options)
    with pytest.raises(ValueError, match="NaN"):
        deconvolve(torch.full((3, 32, 32), float("nan")), kernel)
    with pytest.raises(ValueError, match=r"\[C,H,W\]"):
        deconvolve(torch.rand(1, 3, 32, 32), kernel)


def test_load_kernel_from_png_npy_npz(tmp_path):
    kernel = _kernel().double()
    kernel = kernel / kernel.sum()
    np.save(tmp_path / "k.npy", kernel.numpy())
    np.savez(tmp_path / "k.npz", kernel=kernel.numpy())
    Image.fromarray((kernel / kernel.max() * 255).round().byte().numpy()).save(tmp_path / "k.png")
    assert torch.allclose(load_kernel(tmp_path / "k.npy"), kernel)
    assert torch.allclose(load_kernel(tmp_path / "k.npz"), kernel)
    from_png = load_kernel(tmp_path / "k.png")
    assert from_png.shape == kernel.shape and from_png.sum().item() == pytest.approx(1.0)
    assert (from_png - kernel).abs().max() < 2e-3  # 8 bits of the peak

    np.savez(tmp_path / "two.npz", a=kernel.numpy(), b=kernel.numpy())
    np.save(tmp_path / "neg.npy", -kernel.numpy())
    (tmp_path / "k.txt").write_text("1 1 1")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    for name, message in (("two.npz", "exactly one array"), ("neg.npy", "negative"), ("k.txt", "unknown kernel file type"),
                          ("broken.png", "cannot read"), ("missing.npy", "no such kernel file"), ("text.npy", "real numbers")):
        with pytest.raises(ValueError, match=message):
            load_kernel(tmp_path / name)


def test_check_kernel_normalises():
    kernel = check_kernel(np.array([[1, 3]], dtype=np.uint8))
    assert kernel.dtype == torch.float64 and torch.allclose(kernel, torch.tensor([[0.25, 0.75]], dtype=torch.float64))


def test_plug_and_play_with_a_given_denoiser():
    """method="pnp" runs DPIR's scheme around any denoiser (image [1,3,H,W], sigma) -> image; here total
    variation (skimage's Chambolle), with a weight that grows with the level it is asked to remove."""
    from skimage.restoration import denoise_tv_chambolle

    calls = []

    def tv(image: torch.Tensor, sigma: float) -> torch.Tensor:
        calls.append(sigma)
        planes = denoise_tv_chambolle(image[0].double().numpy(), weight=2 * sigma, channel_axis=0)
        return torch.from_numpy(planes)[None].float()

    sharp = _photo()
    kernel = _kernel()
    rng = torch.Generator().manual_seed(0)
    blurred = imaging.quantize(degrade.add_noise(degrade.blur(sharp[None], kernel), 0.01, rng))[0]
    restored = deconvolve(blurred, kernel, method="pnp", denoiser=tv)
    assert psnr(restored[None], sharp[None]).item() > psnr(blurred[None], sharp[None]).item() + 3
    assert len(calls) == 8 and calls[0] == pytest.approx(49 / 255) and calls == sorted(calls, reverse=True)
    assert calls[-1] == pytest.approx(estimate_noise(blurred), rel=1e-6)
    with pytest.raises(ValueError, match="needs a denoiser"):
        deconvolve(blurred, kernel, method="pnp")


def test_auto_boundary_tells_a_wrapped_blur_from_a_photo():
    """A circularly blurred image is seamless across its wrap-around, a frame cut from a larger scene is not; "auto"
    deconvolves each with its own model (the circular one restores a wrapped blur far better at the borders)."""
    from ganzoo.deconvolution import SEAMLESS_RATIO, seam_ratio

    kernel = _kernel()
    margin = kernel.shape[0]
    region = _photo(96 + 2 * margin, 60, 160)
    sharp = region[:, margin:-margin, margin:-margin]
    wrapped = imaging.quantize(degrade.blur(sharp[None], kernel, padding="circular"))[0]
    cut = imaging.quantize(_blur_from_outside(region, kernel, 96)[None])[0]
    assert seam_ratio(wrapped) < SEAMLESS_RATIO < seam_ratio(cut)
    assert torch.equal(deconvolve(wrapped, kernel), deconvolve(wrapped, kernel, boundary="circular"))
    assert torch.equal(deconvolve(cut, kernel), deconvolve(cut, kernel, boundary="unknown"))
    as_circular = psnr(deconvolve(wrapped, kernel)[None], sharp[None]).item()
    as_unknown = psnr(deconvolve(wrapped, kernel, boundary="unknown")[None], sharp[None]).item()
    assert as_circular > as_unknown + 3, (as_circular, as_unknown)
