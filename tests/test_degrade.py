from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d
from skimage.data import camera

from ganzoo import degrade, imaging
from ganzoo.degrade import (
    BlurSynthesizer,
    add_noise,
    blur,
    center_kernel,
    load_kernels,
    random_trajectory_kernel,
)

KERNEL_DIR = Path(__file__).resolve().parents[2] / "shared/data/blur/kernels"


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def centre_of_mass(k: torch.Tensor) -> tuple[float, float]:
    y, x = torch.meshgrid(torch.arange(k.shape[0]).float(), torch.arange(k.shape[1]).float(), indexing="ij")
    return float((k * y).sum()), float((k * x).sum())


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("size", [31, 21])
def test_trajectory_kernel_is_a_centred_psf(seed, size):
    k = random_trajectory_kernel(size, gen(seed))
    assert k.shape == (size, size) and k.dtype == torch.float32
    assert (k >= 0).all()
    assert abs(float(k.sum()) - 1) < 1e-5
    cy, cx = centre_of_mass(k)
    assert abs(cy - (size - 1) / 2) < 1 and abs(cx - (size - 1) / 2) < 1


def test_trajectory_kernel_deterministic_and_seed_dependent():
    assert torch.equal(random_trajectory_kernel(31, gen(3)), random_trajectory_kernel(31, gen(3)))
    assert not torch.equal(random_trajectory_kernel(31, gen(3)), random_trajectory_kernel(31, gen(4)))


def test_blur_of_delta_reproduces_kernel():
    k = random_trajectory_kernel(15, gen(0))
    img = torch.zeros(1, 1, 41, 41)
    img[0, 0, 20, 20] = 1
    out = blur(img, k)[0, 0]
    # True convolution puts the kernel itself (not its mirror) around the impulse.
    torch.testing.assert_close(out[13:28, 13:28], k, atol=1e-6, rtol=0)


@pytest.mark.parametrize("ksize", [9, 8])
def test_blur_matches_scipy_in_interior(ksize):
    rng = np.random.default_rng(0)
    img = rng.random((37, 44))
    k = rng.random((ksize, ksize))
    k /= k.sum()
    ours = blur(torch.from_numpy(img)[None, None].float(), torch.from_numpy(k).float())[0, 0].numpy()
    ref = convolve2d(img, k, mode="same", boundary="symm")
    m = ksize
    np.testing.assert_allclose(ours[m:-m, m:-m], ref[m:-m, m:-m], atol=1e-5)


@pytest.mark.parametrize("padding", ["reflect", "replicate", "circular"])
def test_blur_batch_of_different_kernels_odd_sizes(padding):
    imgs = torch.rand(3, 2, 23, 17, generator=gen(1))
    ks = torch.stack([random_trajectory_kernel(11, gen(s)) for s in range(3)])
    out = blur(imgs, ks, padding=padding)
    assert out.shape == imgs.shape
    for i in range(3):
        torch.testing.assert_close(out[i:i + 1], blur(imgs[i:i + 1], ks[i], padding=padding))
    # Channels share the image's kernel; a constant image stays constant.
    flat = blur(torch.full((3, 2, 23, 17), 0.3), ks, padding=padding)
    torch.testing.assert_close(flat, torch.full_like(flat, 0.3))


def test_blur_rejects_bad_shapes():
    with pytest.raises(ValueError):
        blur(torch.rand(2, 1, 9, 9), torch.rand(3, 3, 3))
    with pytest.raises(ValueError):
        blur(torch.rand(1, 1, 9, 9), torch.rand(3, 3), padding="zeros")


def test_add_noise_clamps_and_is_deterministic():
    img = torch.rand(2, 3, 8, 8, generator=gen(0))
    a, b = add_noise(img, 0.5, gen(7)), add_noise(img, 0.5, gen(7))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(add_noise(img, torch.tensor([0.0, 0.0]), gen(7)), img)


def test_center_kernel_pads_and_crops_about_the_centre():
    k = torch.zeros(5, 5)
    k[2, 2] = 1
    assert center_kernel(k, 9)[4, 4] == 1
    assert center_kernel(center_kernel(k, 9), 3)[1, 1] == 1


def high_freq_energy(x: torch.Tensor) -> float:
    return float((x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean())


def test_synthesizer_deterministic_and_blurs():
    sharp = torch.from_numpy(camera()[100:196, 150:246].astype(np.float32) / 255)[None, None]
    sharp = sharp.expand(4, 3, -1, -1).contiguous()
    box = torch.ones(7, 7) / 49
    synth = BlurSynthesizer(kernels=[box, torch.ones(1, 9) / 9], recorded_fraction=0.5, kernel_size=21)
    blurred, kernels = synth(sharp, gen(5))
    again, kernels2 = synth(sharp, gen(5))
    assert torch.equal(blurred, again) and torch.equal(kernels, kernels2)
    assert not torch.equal(blurred, synth(sharp, gen(6))[0])
    assert blurred.shape == sharp.shape and kernels.shape == (4, 21, 21)
    torch.testing.assert_close(kernels.sum((1, 2)), torch.ones(4))
    for i in range(4):
        assert high_freq_energy(blurred[i]) < 0.7 * high_freq_energy(sharp[i])


def test_synthesizer_without_recorded_kernels():
    blurred, kernels = BlurSynthesizer(kernel_size=15, noise_sigma=(0.0, 0.0))(torch.rand(2, 1, 20, 20), gen(0))
    assert kernels.shape == (2, 15, 15) and blurred.shape == (2, 1, 20, 20)


def test_synthesizer_circular_borders():
    sharp = torch.rand(3, 1, 24, 24, generator=gen(1))
    for fraction, padding in [(0.0, "reflect"), (1.0, "circular")]:
        synth = BlurSynthesizer(kernel_size=9, noise_sigma=(0.0, 0.0), circular_fraction=fraction)
        blurred, kernels = synth(sharp, gen(2))
        torch.testing.assert_close(blurred, blur(sharp, kernels, padding=padding).clamp(0, 1))
    mixed, kernels = BlurSynthesizer(kernel_size=9, noise_sigma=(0.0, 0.0), circular_fraction=0.5)(sharp, gen(1))
    reflect, circular = blur(sharp, kernels), blur(sharp, kernels, padding="circular")
    kinds = [torch.allclose(m, r) for m, r, c in zip(mixed, reflect, circular)]
    assert all(torch.allclose(m, r) or torch.allclose(m, c) for m, r, c in zip(mixed, reflect, circular))
    assert len(set(kinds)) == 2  # seed 1 draws both kinds
    with pytest.raises(ValueError, match="circular_fraction"):
        BlurSynthesizer(circular_fraction=1.5)


def test_load_kernels_rejects_unreadable(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="bad.png"):
        load_kernels(tmp_path)


def test_load_kernels_reads_npz_and_png(tmp_path):
    np.savez(tmp_path / "ks.npz", a=np.ones((3, 3)), b=np.eye(5))
    from PIL import Image
    Image.fromarray((np.eye(7) * 255).astype(np.uint8)).save(tmp_path / "k.png")
    ks = load_kernels(tmp_path)
    assert [k.shape for k in ks] == [(3, 3), (5, 5), (7, 7)]
    assert all(abs(float(k.sum()) - 1) < 1e-6 for k in ks)


@pytest.mark.skipif(not KERNEL_DIR.is_dir(), reason="shared kernel data not present")
def test_load_recorded_kernels():
    ks = load_kernels(KERNEL_DIR)
    # 8 Levin (npz; their PNGs are 8-bit copies) + 12 from kernels_12.npz + 2 large PNGs.
    assert len(ks) == 22
    assert all(k.dtype == torch.float32 and (k >= 0).all() and abs(float(k.sum()) - 1) < 1e-5 for k in ks)
    assert sorted({tuple(k.shape) for k in ks[-2:]}) == [(67, 67), (70, 70)]
    assert len(load_kernels(KERNEL_DIR, skip_png_copies=False)) == 30


def test_blur_valid_is_same_blur_away_from_borders():
    image = torch.rand(2, 3, 40, 44, generator=gen(0))
    for kernel in (torch.rand(7, 9, generator=gen(1)), torch.rand(4, 6, generator=gen(2))):
        top, left = (40 - 20) // 2, (44 - 20) // 2
        expected = degrade.blur(image, kernel)[..., top:top + 20, left:left + 20]
        # Unnormalised kernels: outputs near 30, so float32 rounding is about 1e-5.
        torch.testing.assert_close(degrade.blur_valid(image, kernel, 20), expected, atol=1e-5, rtol=2e-6)
    with pytest.raises(ValueError, match="needs regions"):
        degrade.blur_valid(image, torch.rand(31, 31), 20)


def test_shake_blur_pairs_are_seeded_and_blurred_from_real_content():
    synth = degrade.ShakeBlur(16, lengths=(20, 30), max_kernel=15, max_noise=0.0, saturation=0.0)
    assert synth.region_size == 30
    regions = torch.rand(3, 3, 30, 30)
    blurred, sharp = synth(regions, torch.Generator().manual_seed(4))
    again, _ = synth(regions, torch.Generator().manual_seed(4))
    assert torch.equal(blurred, again) and blurred.shape == sharp.shape == (3, 3, 16, 16)
    torch.testing.assert_close(sharp, regions[:, :, 7:23, 7:23])
    assert torch.equal(blurred, imaging.quantize(blurred))  # 8-bit, as the evaluation inputs
    assert (blurred - sharp).abs().mean() > 0.05 and blurred.std() < sharp.std()  # blurred, so smoother


# -- the batched sampler (issue 29): same recurrence as the per-kernel one, other draw order ---------------

def reference_draws(length: float, seed: int, steps: int = 2000) -> tuple:
    """The random numbers `random_trajectory(length, steps, gen(seed))` draws, in its order."""
    g = gen(seed)
    params = [degrade._uniform(g) for _ in range(3)] + [degrade._uniform(g, 0.0, 2 * np.pi) / (2 * np.pi)]
    jitter = torch.randn(steps, 2, generator=g)
    coins, turns = torch.rand(steps, generator=g), torch.rand(steps, generator=g)
    return torch.tensor([params], dtype=torch.float64), jitter[None, :-1], coins[None, :-1], turns[None, :-1]


def test_batched_trajectories_step_the_reference_recurrence():
    impulses = 0
    for seed, length in enumerate([3.0, 17.0, 40.0, 100.0, 64.0, 9.0]):
        params, jitter, coins, turns = reference_draws(length, seed)
        impulses += int((coins < 0.2 * params[:, :1] * 0.005).sum())
        batched = degrade.trajectories_from_draws(torch.tensor([length]), params, jitter, coins, turns)
        torch.testing.assert_close(batched[0], degrade.random_trajectory(length, 2000, gen(seed)), atol=1e-9, rtol=0)
    assert impulses > 0, "no impulsive shake among these seeds: the test would not cover them"


def test_batched_rasterisation_matches_the_per_kernel_kernels():
    paths, stretch, expected = [], [], []
    for seed in range(4):
        paths.append(degrade.random_trajectory(12.0 + 25 * seed, rng=gen(seed)))
        stretch.append(0)
        expected.append(center_kernel(degrade.shake_kernel(12.0 + 25 * seed, gen(seed), max_size=41), 41))
    for seed, size in [(5, 9), (6, 41), (7, 23)]:
        g = gen(seed)
        length = size * degrade._uniform(g, 1.0, 2.0)
        paths.append(degrade.random_trajectory(length, rng=g))
        stretch.append(size)
        expected.append(center_kernel(degrade.sized_shake_kernel(size, gen(seed)), 41))
    kernels = degrade.rasterize_trajectories(torch.stack(paths), 41, torch.tensor(stretch))
    torch.testing.assert_close(kernels, torch.stack(expected), atol=1e-6, rtol=0)


def test_random_trajectories_keep_their_arc_length_and_are_seeded():
    lengths = torch.tensor([1.0, 30.0, 100.0])
    paths = degrade.random_trajectories(lengths, 500, gen(0))
    assert paths.shape == (3, 500, 2) and paths.dtype == torch.float64
    assert torch.equal(paths[:, 0], torch.zeros(3, 2))
    arcs = (paths[:, 1:] - paths[:, :-1]).norm(dim=-1).sum(1)
    torch.testing.assert_close(arcs, lengths.double(), atol=1e-9, rtol=1e-9)
    assert torch.equal(paths, degrade.random_trajectories(lengths, 500, gen(0)))
    assert not torch.equal(paths, degrade.random_trajectories(lengths, 500, gen(1)))


@pytest.mark.parametrize("sized_fraction", [0.0, 1.0])
def test_shake_blur_kernels_are_centred_psfs_within_their_grid(sized_fraction):
    synth = degrade.ShakeBlur(16, lengths=(2.0, 6.0), max_kernel=22, sized_fraction=sized_fraction)
    kernels = synth.kernels(24, gen(3))
    assert kernels.shape == (24, 21, 21) and synth.kernel_grid == 21 and kernels.dtype == torch.float32
    assert (kernels >= 0).all()
    torch.testing.assert_close(kernels.sum((1, 2)), torch.ones(24))
    for k in kernels:
        cy, cx = centre_of_mass(k)
        assert abs(cy - 10) < 1e-3 and abs(cx - 10) < 1e-3  # bilinear splats keep the path's mean
    rows, cols = kernels.sum(2) > 0, kernels.sum(1) > 0
    distance = (torch.arange(21) - 10).abs()
    reach = torch.maximum((rows * distance).amax(1), (cols * distance).amax(1))
    if sized_fraction == 0:
        assert reach.max() <= 6 + 1  # a path of at most 6 px, centred, plus the bilinear neighbour
        assert reach.min() >= 1  # at least 2 px: never a delta
    else:
        assert reach.max() == 9 and (reach >= 2).all()  # stretched to its grid's edge less one, grids 5..21
        assert len(set(reach.tolist())) > 3  # several sizes drawn
    assert torch.equal(kernels, synth.kernels(24, gen(3))) and not torch.equal(kernels, synth.kernels(24, gen(4)))


def kernel_spread(kernels: torch.Tensor) -> torch.Tensor:
    """Root mean square distance of each kernel's mass from its centre, px."""
    size = kernels.shape[-1]
    y, x = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    return ((kernels * ((y - size // 2) ** 2 + (x - size // 2) ** 2)).sum((-2, -1))).sqrt()


def test_batched_and_per_kernel_samplers_draw_alike_kernels():
    """Same law, other random streams: the spread of 40 kernels of 30 px paths agrees to within sampling error."""
    old = torch.stack([center_kernel(degrade.shake_kernel(30.0, gen(100 + i), 41), 41) for i in range(40)])
    synth = degrade.ShakeBlur(16, lengths=(30.0, 30.0), max_kernel=41)
    new = synth.kernels(40, gen(0))
    old_spread, new_spread = kernel_spread(old), kernel_spread(new)
    error = (old_spread.var() / 40 + new_spread.var() / 40).sqrt()
    assert abs(old_spread.mean() - new_spread.mean()) < 3 * error, (old_spread.mean(), new_spread.mean(), error)
    assert 1.5 < new_spread.mean() < 10  # a 30 px path curls: neither a dot nor a straight 15 px line


def test_batched_blur_valid_is_the_per_kernel_one():
    regions = torch.rand(5, 3, 40, 44, generator=gen(0))
    kernels = torch.rand(5, 7, 9, generator=gen(1))
    each = torch.cat([degrade.blur_valid(regions[i:i + 1], kernels[i], 20) for i in range(5)])
    torch.testing.assert_close(degrade.blur_valid(regions, kernels, 20), each, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="kernel"):
        degrade.blur_valid(regions, kernels[:3], 20)


def test_shake_blur_batch_is_seeded_on_the_regions_device():
    synth = degrade.ShakeBlur(16, lengths=(5, 30), max_kernel=15, max_noise=0.02, saturation=0.5)
    regions = torch.rand(6, 3, 30, 30, generator=gen(2))
    blurred, sharp = synth(regions, gen(8))
    assert torch.equal(blurred, synth(regions, gen(8))[0]) and not torch.equal(blurred, synth(regions, gen(9))[0])
    assert blurred.min() >= 0 and blurred.max() <= 1 and torch.equal(blurred, imaging.quantize(blurred))
    centre = regions[..., 7:23, 7:23]
    assert torch.equal(sharp[centre <= 0.9], centre[centre <= 0.9])
    highlights = sharp[centre > 0.9]  # unchanged, or a saturated highlight clipped to white
    assert ((highlights == centre[centre > 0.9]) | (highlights == 1)).all() and (highlights == 1).any()
    rng = gen(0)
    assert degrade.device_generator(rng, "cpu") is rng


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("rng_device", ["cpu", "cuda"])
def test_shake_blur_on_cuda(rng_device):
    synth = degrade.ShakeBlur(32, lengths=(5, 60), max_kernel=31, sized_fraction=0.3)
    regions = torch.rand(8, 3, synth.region_size, synth.region_size, device="cuda")
    rng = lambda: torch.Generator(device=rng_device).manual_seed(5)  # noqa: E731
    blurred, sharp = synth(regions, rng())
    assert blurred.device.type == sharp.device.type == "cuda" and blurred.shape == (8, 3, 32, 32)
    assert torch.equal(blurred, synth(regions, rng())[0])
    kernels = synth.kernels(8, torch.Generator(device="cuda").manual_seed(0))
    assert kernels.device.type == "cuda"
    torch.testing.assert_close(kernels.sum((1, 2)), torch.ones(8, device="cuda"))


@pytest.mark.parametrize("kernel_size", [15, 14])
def test_synthesizer_trajectory_kernels_are_the_per_kernel_ones_padded(kernel_size):
    """Batched, BlurSynthesizer draws `random_trajectory_kernel`s (fixed grid, paths scaled down to fit), padded."""
    paths = torch.stack([degrade.random_trajectory(length, rng=gen(i)) for i, length in enumerate([4.0, 12.0, 40.0])])
    kernels = degrade.rasterize_trajectories(paths, 21, size=kernel_size)
    expected = [center_kernel(degrade.rasterize_trajectory(p, kernel_size), 21) for p in paths]
    torch.testing.assert_close(kernels, torch.stack(expected), atol=1e-6, rtol=0)
    synth = BlurSynthesizer([torch.ones(3, 3) / 9], recorded_fraction=0.5, kernel_size=kernel_size)
    drawn = synth.sample_kernels(16, gen(0))
    assert drawn.shape == (16, 15, 15) and torch.equal(drawn, synth.sample_kernels(16, gen(0)))
    box = center_kernel(torch.ones(3, 3) / 9, 15)
    recorded = [bool(torch.equal(k, box)) for k in drawn]
    assert 0 < sum(recorded) < 16  # both kinds
    torch.testing.assert_close(drawn.sum((1, 2)), torch.ones(16))


# -- the CPU path in numpy (issue 29): the torch path's paths and kernels, to rounding ----------------------

def batch_draws(n: int, seed: int, steps: int = 2000) -> tuple[torch.Tensor, ...]:
    """The random numbers `random_trajectories` draws for `n` paths, in its order."""
    g = gen(seed)
    params = torch.rand(n, 4, generator=g)
    jitter = torch.randn(n, steps - 1, 2, generator=g)
    coins, turns = torch.rand(2, n, steps - 1, generator=g)
    return params, jitter, coins, turns


def test_numpy_and_torch_loops_step_the_same_paths():
    """The CPU's numpy loop and the torch one (a GPU's, `loop_device=None`) agree to rounding, impulses included."""
    lengths = torch.tensor([1.0, 8.0, 30.0, 60.0, 100.0, 45.0])
    draws = batch_draws(6, 0)
    strengths = {"impulse_prob": 20.0, "shake": 10.0, "drift": 0.7, "anxiety": 0.005}  # impulses 100x as common
    params, _, coins, _ = draws
    assert int((coins < 20.0 * 0.005 * params[:, :1]).sum()) > 100
    in_numpy = degrade.trajectories_from_draws(lengths, *draws, **strengths)
    in_torch = degrade._positions_torch(lengths.double() / 1999, *draws, *strengths.values(), torch.device("cpu"))
    assert in_numpy.shape == (6, 2000, 2) and in_numpy.dtype == torch.float64
    torch.testing.assert_close(in_numpy, torch.view_as_real(in_torch).transpose(0, 1), atol=1e-9, rtol=0)


def test_numpy_rasteriser_is_the_torch_one_in_any_chunks():
    paths = degrade.random_trajectories(torch.tensor([3.0, 20.0, 45.0, 90.0, 7.0]), 2000, gen(1))
    stretch = torch.tensor([0, 11, 0, 21, 0])
    kernels = degrade.rasterize_trajectories(paths, 31, stretch)
    fit = partial(degrade._fit, grid=31, stretch_to=stretch, size=None)
    assert torch.equal(torch.from_numpy(degrade._rasterize_numpy(paths.numpy(), 31, fit, chunk=2)), kernels)
    torch.testing.assert_close(kernels, degrade._rasterize_torch(paths, 31, fit), atol=1e-7, rtol=0)


def second_moments(kernels: torch.Tensor) -> torch.Tensor:
    """Each kernel's mass-weighted x^2, xy and y^2 about its centre [N, 3], px^2."""
    size = kernels.shape[-1]
    y, x = torch.meshgrid(*[torch.arange(size).double() - size // 2] * 2, indexing="ij")
    k = kernels.double()
    return torch.stack([(k * x * x).sum((1, 2)), (k * x * y).sum((1, 2)), (k * y * y).sum((1, 2))], 1)


def test_a_seed_draws_the_kernels_the_torch_loop_drew():
    """`ShakeBlur.kernels` for seed 0 as the all-torch batched path (commit 55fa6d7) drew them."""
    synth = degrade.ShakeBlur(16, lengths=(1.0, 100.0), max_kernel=41, sized_fraction=0.3)
    expected = [[33.182106130137754, -25.863743350983896, 67.93752246810794],
                [101.48025532814663, -88.22841802731855, 81.95851849412784],
                [12.730610357779597, -5.893349531312509, 48.472607245002834],
                [10.453213119721553, -5.1105018919298075, 40.9377100388715],
                [3.9029411691462883, 0.11404604088602355, 2.917438177675649],
                [1.9653649579167904, -0.048418357839182136, 1.412489872705919]]
    torch.testing.assert_close(second_moments(synth.kernels(6, gen(0))), torch.tensor(expected, dtype=torch.float64),
                               atol=1e-9, rtol=1e-9)


def _faint_share(kernel: torch.Tensor) -> float:
    """The share of a kernel's mass in weights below a fifth of its peak."""
    k = kernel.double() / kernel.sum()
    return float(k[k < 0.2 * k.max()].sum())


def test_varying_speed_keeps_the_path_and_moves_mass_into_knots_and_faint_strokes():
    rng = torch.Generator().manual_seed(5)
    path = degrade.random_trajectory(40.0, rng=rng)
    state = rng.get_state()
    assert degrade.vary_speed(path, 0.0, rng) is path
    assert torch.equal(rng.get_state(), state)  # constant speed draws nothing: existing sets keep their kernels
    varied = degrade.vary_speed(path, 1.0, rng)
    assert varied.shape == path.shape
    assert torch.allclose(varied[[0, -1]], path[[0, -1]])  # same start and end
    # every resampled point lies on the original polyline (within a step, the path being densely sampled)
    step = float((path[1:] - path[:-1]).norm(dim=1).max())
    assert float(torch.cdist(varied, path).min(dim=1).values.max()) <= step
    with pytest.raises(ValueError, match="at least 0"):
        degrade.vary_speed(path, -0.5)
    # Over many paths, speed variation puts more of the mass in faint strokes, as recorded camera shake has.
    constant = [_faint_share(degrade.sized_shake_kernel(21, torch.Generator().manual_seed(s))) for s in range(12)]
    varying = [_faint_share(degrade.sized_shake_kernel(21, torch.Generator().manual_seed(s), speed_variation=1.0))
               for s in range(12)]
    assert np.mean(varying) > np.mean(constant) + 0.08
