"""Blind kernel estimation (ganzoo.kernel_estimation): recovery of a known kernel, the kernel clean-up, bad input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from ganzoo import kernel_estimation as ke
from ganzoo.degrade import add_noise, blur, sized_shake_kernel


from ganzoo.metrics import kernel_similarity


def shapes_image(size: int = 160, seed: int = 0) -> torch.Tensor:
    """A textured test scene [1,3,size,size]: overlapping flat discs and bars of random grey levels."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size), 0.5)
    yy, xx = np.mgrid[:size, :size]
    for _ in range(40):
        cy, cx, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(2, max(size / 6, 3))]
        value = rng.uniform(0.05, 0.95)
        if rng.random() < 0.5:
            image[(yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2] = value
        else:
            image[(np.abs(yy - cy) < r) & (np.abs(xx - cx) < r / 3)] = value
    return torch.from_numpy(image).float().expand(1, 3, size, size).clone()


def blurred_case(kernel_size: int = 13, seed: int = 0, size: int = 160) -> tuple[torch.Tensor, np.ndarray]:
    rng = torch.Generator().manual_seed(seed)
    kernel = sized_shake_kernel(kernel_size, rng)
    blurred = add_noise(blur(shapes_image(size, seed), kernel), 0.005, rng)
    return blurred, kernel.double().numpy()


@pytest.fixture(scope="module")
def case() -> tuple[torch.Tensor, np.ndarray]:
    return blurred_case()


@pytest.fixture(scope="module")
def automatic(case: tuple[torch.Tensor, np.ndarray]) -> ke.KernelEstimate:
    return ke.estimate_kernel(case[0])


def test_recovers_a_known_kernel_with_the_size_given(case: tuple[torch.Tensor, np.ndarray]) -> None:
    blurred, true = case
    estimate = ke.estimate_kernel(blurred, kernel_size=17)
    assert estimate.kernel.shape == (17, 17) and not estimate.note
    assert kernel_similarity(estimate.kernel, true) >= 0.9


def test_recovers_a_known_kernel_with_the_size_chosen(case: tuple[torch.Tensor, np.ndarray],
                                                      automatic: ke.KernelEstimate) -> None:
    assert automatic.automatic and not automatic.note
    assert kernel_similarity(automatic.kernel, case[1]) >= 0.9
    assert 13 <= automatic.size <= 35  # close to the true 13 px, far from the 53 px allowed for 160 px


def test_the_estimate_is_a_centred_kernel(automatic: ke.KernelEstimate) -> None:
    k = automatic.kernel
    assert (k >= 0).all() and k.sum() == pytest.approx(1.0) and k.shape[0] % 2 == 1
    cy, cx = _centre(k)
    assert abs(cy - k.shape[0] // 2) <= 0.5 and abs(cx - k.shape[1] // 2) <= 0.5


def _centre(k: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(k.shape)
    return float((ys * k).sum()), float((xs * k).sum())


def test_deterministic_and_progress_reported(case: tuple[torch.Tensor, np.ndarray],
                                             automatic: ke.KernelEstimate) -> None:
    seen: list[tuple[float, str]] = []
    again = ke.estimate_kernel(case[0], progress=lambda fraction, message: seen.append((fraction, message)))
    np.testing.assert_array_equal(again.kernel, automatic.kernel)
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0) and len(seen) > 3
    count = len(ke.Options().lambda_starts)
    assert count == 2 and "1 of 2: level" in seen[0][1] and seen[-1][1] == "kernel estimated"
    messages = [message for _, message in seen]
    first_refining = next(i for i, m in enumerate(messages) if "2 of 2: refining" in m)
    assert seen[first_refining - 1][0] == pytest.approx((1 - ke.FAINT_SHARE) * (count - 1 + ke.REFINE_SHARE) / count)
    assert any("1 of 2: refining" in m for m in messages) and any("faint strokes" in m for m in messages)


def test_of_several_trusted_estimates_the_one_that_explains_the_blur_best_is_kept(
        case: tuple[torch.Tensor, np.ndarray], automatic: ke.KernelEstimate) -> None:
    grey = ke.to_grey(case[0])
    no_faint = ke.Options(faint_prune=ke.Options().final_prune)  # the choice among L0 weights alone
    ratios = {}
    for weight in no_faint.lambda_starts:
        alone = ke.estimate_kernel(case[0], options=dataclasses.replace(no_faint, lambda_starts=(weight,)))
        assert not alone.note and alone.reblur == pytest.approx(ke.reblur_ratio(grey, alone.kernel))
        ratios[weight] = alone
    first, second = ratios.values()
    assert first.reblur != second.reblur and not np.array_equal(first.kernel, second.kernel)  # a real choice
    kept = min(ratios.values(), key=lambda estimate: estimate.reblur)
    chosen = ke.estimate_kernel(case[0], options=no_faint)
    np.testing.assert_array_equal(chosen.kernel, kept.kernel)
    assert chosen.reblur == kept.reblur and not chosen.faint
    assert automatic.reblur == pytest.approx(ke.reblur_ratio(grey, automatic.kernel))  # the kept kernel's own


# -- faint strokes ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def faint_case() -> tuple[torch.Tensor, np.ndarray]:
    """Blur by a camera that changed speed along its path: bright knots and strokes at 10-20 % of the peak."""
    rng = torch.Generator().manual_seed(2)
    kernel = sized_shake_kernel(17, rng, speed_variation=1.0)
    return add_noise(blur(shapes_image(160, 2), kernel), 0.002, rng), kernel.double().numpy()


def test_gcv_score_prefers_the_kernel_that_explains_the_blur(faint_case: tuple[torch.Tensor, np.ndarray]) -> None:
    grey = ke.to_grey(faint_case[0])
    true = faint_case[1]
    assert ((true > 0) & (true < 0.2 * true.max())).any()  # the kernel has faint strokes
    strong = ke.clean_kernel(true, prune_peak=ke.Options().final_prune)  # the strokes cut
    faint = ke.clean_kernel(true, prune_peak=ke.Options().faint_prune)
    scores = {name: ke.gcv_score(grey, k) for name, k in
              [("true", true), ("faint", faint), ("strong", strong), ("turned", np.rot90(true)),
               ("none", np.ones((1, 1)))]}
    assert scores["true"] < scores["faint"] < scores["strong"]  # ~0.86, 0.97, 1: the more of the strokes, the lower
    assert scores["true"] < scores["strong"] / ke.Options().faint_gcv_margin
    assert scores["strong"] < scores["turned"] / 2 and scores["strong"] < scores["none"] / 2


def test_faint_strokes_are_kept_where_they_explain_the_blur_better(
        faint_case: tuple[torch.Tensor, np.ndarray]) -> None:
    blurred, true = faint_case
    kept = ke.estimate_kernel(blurred)
    without = ke.estimate_kernel(blurred, options=ke.Options(faint_prune=ke.Options().final_prune))
    assert kept.faint and not without.faint and not kept.note
    assert kernel_similarity(kept.kernel, true) > kernel_similarity(without.kernel, true) + 0.02  # ~0.98, ~0.95
    faint_weights = (kept.kernel > 0) & (kept.kernel < ke.Options().final_prune * kept.kernel.max())
    assert faint_weights.any() and not ((without.kernel > 0) & (without.kernel < 0.2 * without.kernel.max())).any()
    grey = ke.to_grey(blurred)
    assert kept.reblur == pytest.approx(ke.reblur_ratio(grey, kept.kernel))
    # not where the gain in GCV is below the margin: then the estimate is the one without the alternative
    strict = ke.estimate_kernel(blurred, options=ke.Options(faint_gcv_margin=10.0))
    assert not strict.faint
    np.testing.assert_array_equal(strict.kernel, without.kernel)


def test_estimator_options_are_checked() -> None:
    for bad in [(), (0.0,), (4e-3, -1.0)]:
        with pytest.raises(ValueError, match="lambda_starts"):
            ke.Options(lambda_starts=bad)
    for bad in [{"kernel_weight": 0.0}, {"large_kernel_weight": -1.0}]:
        with pytest.raises(ValueError, match="ridge"):
            ke.Options(**bad)
    for bad in [{"faint_prune": 1.0}, {"final_prune": -0.1}]:
        with pytest.raises(ValueError, match="clean-ups"):
            ke.Options(**bad)
    with pytest.raises(ValueError, match="faint_gcv_margin"):
        ke.Options(faint_gcv_margin=0.0)


def test_small_windows_get_the_weaker_kernel_ridge(case: tuple[torch.Tensor, np.ndarray], monkeypatch) -> None:
    options = ke.Options(lambda_starts=(4e-3,))
    assert options.kernel_weight < options.large_kernel_weight
    seen = []
    kernel_step = ke.kernel_step

    def recording(latent, blurred, mask, start, weight, iterations=20):  # noqa: ANN001, ANN202
        seen.append((start.shape[0], weight))
        return kernel_step(latent, blurred, mask, start, weight, iterations)

    monkeypatch.setattr(ke, "kernel_step", recording)
    ke.estimate_kernel(case[0], kernel_size=37, options=options)
    windows = {window for window, _ in seen}
    assert min(windows) <= options.small_window < max(windows)  # the pyramid spans both kinds of window
    for window, weight in seen:
        assert weight == (options.kernel_weight if window <= options.small_window else options.large_kernel_weight)


def test_clipped_highlights_are_left_out_of_the_kernel_step() -> None:
    blurred = np.full((60, 60), 0.3)
    blurred[30, 30] = 1.0
    mask = ke._kernel_mask(blurred, 9)
    assert mask[30, 30] == 0 and mask[30, 25] == 0 and mask[30, 36] == 1  # the saturated pixel, dilated by 9 px
    assert mask[:5].sum() == 0 and mask[10, 10] == 1  # the border, where the blur reaches outside, is out too


def test_estimate_reports_saturated_pixels(case: tuple[torch.Tensor, np.ndarray]) -> None:
    blurred = case[0].clone()
    blurred[..., 20:30, 20:30] = 1.0
    estimate = ke.estimate_kernel(blurred, kernel_size=15)
    assert 0 < estimate.saturated_fraction < 0.5
    assert kernel_similarity(estimate.kernel, case[1]) >= 0.8


def test_refinement_sharpens_a_rough_kernel_towards_the_true_one(case: tuple[torch.Tensor, np.ndarray]) -> None:
    blurred, true = case
    padded = np.zeros((17, 17))
    padded[2:15, 2:15] = true
    rough = ke.clean_kernel(ndimage.gaussian_filter(padded, 1.5))  # the true path, smeared: similarity ~0.73
    assert kernel_similarity(rough, true) < 0.8
    grey = ke.to_grey(blurred)
    refined = ke.refine_kernel(grey, rough, ke.Options(refinements=1))
    assert refined.shape == rough.shape and refined.sum() == pytest.approx(1.0)
    assert kernel_similarity(refined, true) >= 0.9  # ~0.91; ~0.95 after two
    assert ke.thickness(refined) < ke.thickness(rough)
    np.testing.assert_array_equal(ke.refine_kernel(grey, rough, ke.Options(refinements=0)), rough)


def test_clean_kernel_removes_small_pieces_and_normalises() -> None:
    raw = np.zeros((15, 15))
    raw[7, 4:11] = 1.0  # the kernel: a 7 px line
    raw[1, 1] = 0.3  # an isolated speck, 4 % of the mass
    raw[13, 2] = -0.5  # negative values are not blur
    cleaned = ke.clean_kernel(raw)
    assert cleaned[1, 1] == 0 and (cleaned >= 0).all() and cleaned.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(cleaned[7, 4:11], 1 / 7)
    assert ke.clean_kernel(-raw.clip(0)) is None


def test_final_clean_up_removes_stray_mass() -> None:
    raw = np.zeros((15, 15))
    raw[7, 4:11] = 1.0
    raw[5:10, 2:13] += 0.1  # a faint haze around the path, 40 % of the mass: moves nothing, but rings
    cleaned = ke.clean_kernel(raw, prune_peak=ke.Options().final_prune)
    assert cleaned[5, 2] == 0 and cleaned[7, 7] > 0 and cleaned.sum() == pytest.approx(1.0)



def test_the_next_window_follows_the_kernels_core_not_its_faint_halo() -> None:
    path = np.zeros((15, 15))
    path[7, 4:11] = 1.0
    hazy = path + 0.1  # a halo at a tenth of the peak out to the window's edge: above the per-level pruning
    assert ke._support_window(hazy / hazy.sum()) == 15
    # the 7 px path, magnified by 1, plus the 4 px margin; the halo would have asked for 15 * 1.25 + 4
    assert ke._next_window(hazy / hazy.sum(), 1.0) == ke._next_window(path / path.sum(), 1.0) == 11
    assert ke._next_window(path / path.sum(), 2.0) == 19

# -- the trust check (no reference) ---------------------------------------------------------------------

def test_reblur_ratio_tells_a_right_kernel_from_a_wrong_one(case: tuple[torch.Tensor, np.ndarray]) -> None:
    grey = ke.to_grey(case[0])
    line = np.zeros((21, 21))
    line[10] = 1 / 21
    right = ke.reblur_ratio(grey, case[1])
    assert right < 0.5 < ke.Options().max_reblur  # ~0.23
    assert ke.reblur_ratio(grey, np.rot90(case[1])) > 2 * ke.Options().max_reblur  # ~4.3
    assert ke.reblur_ratio(grey, line) > 5 * ke.Options().max_reblur  # ~12


def test_an_estimate_that_fails_the_reblur_check_falls_back_and_says_so(case: tuple[torch.Tensor, np.ndarray],
                                                                        automatic: ke.KernelEstimate) -> None:
    distrusted = ke.estimate_kernel(case[0], options=ke.Options(max_reblur=0.05))
    assert distrusted.kernel.shape == (1, 1) and "re-blur ratio" in distrusted.note
    assert not automatic.note  # the default threshold trusts the good estimate


def test_clipped_highlights_are_left_out_of_the_reblur_check(case: tuple[torch.Tensor, np.ndarray]) -> None:
    grey = ke.to_grey(case[0]).copy()
    clean = ke.reblur_ratio(grey, case[1])
    grey[60:80, 60:80] = 1.0  # a clipped highlight: no blur model explains it
    assert clean < ke.reblur_ratio(grey, case[1]) < ke.Options().max_reblur  # ~0.23, ~0.72: still trusted


# -- sub-pixel centring ------------------------------------------------------------------------------

def test_kernel_offset_is_the_centre_of_mass_minus_the_centre() -> None:
    k = np.zeros((5, 5))
    k[2, 2], k[2, 3], k[3, 2] = 0.5, 0.3, 0.2
    assert ke.kernel_offset(k) == pytest.approx((0.2, 0.3))
    assert ke.kernel_offset(np.ones((1, 1))) == (0.0, 0.0)


def test_shift_image_moves_by_whole_and_fractional_pixels() -> None:
    image = shapes_image(48)[:, :1]
    moved = ke.shift_image(image, (2.0, -3.0))
    torch.testing.assert_close(moved[..., 4:-4, 4:-4], image[..., 2:-6, 7:-1], atol=1e-5, rtol=0)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    blob = lambda cy, cx: torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18)[None, None]  # noqa: E731
    torch.testing.assert_close(ke.shift_image(blob(30.0, 31.0), (0.4, -0.3)), blob(30.4, 30.7), atol=2e-3, rtol=0)
    assert ke.shift_image(image, (0.0, 0.0)) is image


def test_deconvolution_by_an_estimate_lands_where_a_centred_kernel_would() -> None:
    """A kernel whose centre of mass is off its centre pixel by a fraction of a pixel (every estimate is, as
    `clean_kernel` centres by whole pixels): the result is moved by that fraction, so that it lines up with the
    scene as an exactly centred blur sees it (the convention of `ganzoo make-blur-set`'s kernels)."""
    from ganzoo import deconvolution, pipelines
    from ganzoo.metrics import psnr

    sharp = shapes_image(96, 3)
    kernel = np.zeros((9, 9))
    kernel[4, 2:7] = [0.1, 0.15, 0.2, 0.25, 0.3]  # a ramp: centre of mass 0.5 px right of the centre pixel
    kernel[5, 4] = 0.1
    offset = ke.kernel_offset(kernel)
    assert abs(offset[1]) > 0.3
    # the scene as the centred kernel sees it is `sharp`; blurring by the off-centre kernel sees it moved back
    blurred = blur(ke.shift_image(sharp, (-offset[0], -offset[1])), torch.from_numpy(kernel).float())
    restored = pipelines.deconvolve_estimated(blurred, kernel, noise_sigma=0.0)
    unmoved = deconvolution.deconvolve_batch(blurred, torch.from_numpy(kernel).float(), pipelines.KERNEL_ERROR_SIGMA)
    assert psnr(restored.clamp(0, 1), sharp).item() > psnr(unmoved.clamp(0, 1), sharp).item() + 1  # 24.7 vs 23.3 dB


# -- bad input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, -5, 77, 10_000, 2.5, "31", True])
def test_absurd_kernel_sizes_are_refused(size: object) -> None:
    with pytest.raises(ValueError, match="kernel size"):
        ke.estimate_kernel(np.zeros((64, 64)), kernel_size=size)


def test_even_kernel_size_is_rounded_up() -> None:
    assert ke.check_kernel_size(20) == 21


def test_image_smaller_than_the_kernel() -> None:
    tiny = shapes_image(24)
    with pytest.raises(ValueError, match="at least 63 px"):
        ke.estimate_kernel(tiny, kernel_size=31)
    fallback = ke.estimate_kernel(shapes_image(6))
    assert fallback.kernel.shape == (1, 1) and "too small" in fallback.note


def test_flat_image_falls_back_to_the_identity_and_says_so() -> None:
    estimate = ke.estimate_kernel(np.full((100, 120), 0.4))
    assert estimate.kernel.shape == (1, 1) and "flat" in estimate.note


@pytest.mark.parametrize("layout", ["hw", "hwc", "hw4", "chw", "nchw"])
def test_grey_colour_and_alpha_layouts_give_the_same_luma(layout: str) -> None:
    rgb = shapes_image(32)[0].numpy()
    arrays = {"hw": rgb[0], "hwc": rgb.transpose(1, 2, 0), "chw": rgb, "nchw": torch.from_numpy(rgb)[None],
              "hw4": np.concatenate([rgb, np.ones_like(rgb[:1])]).transpose(1, 2, 0)}
    np.testing.assert_allclose(ke.to_grey(arrays[layout]), rgb[0], atol=1e-6)


def test_the_same_photo_gives_the_same_plane_in_single_and_double_precision() -> None:
    levels = np.round(shapes_image(32)[0].numpy() * 255)  # an 8-bit photo: x / 255 rounds differently in each
    as_tensor = torch.from_numpy(levels).float()[None] / 255
    as_array = levels.transpose(1, 2, 0).astype(np.float64) / 255
    assert not np.array_equal(as_tensor[0].double().numpy(), as_array.transpose(2, 0, 1))
    np.testing.assert_array_equal(ke.to_grey(as_array), ke.to_grey(as_tensor))


def test_non_finite_and_wrong_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="not finite"):
        ke.to_grey(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="shape"):
        ke.to_grey(np.zeros((2, 8, 8, 3)))


# -- where users meet it: ganzoo.pipelines and `ganzoo deblur --method` --------------------------------

def _saved(tmp_path: Path, blurred: torch.Tensor) -> dict[str, Path]:
    from PIL import Image

    from ganzoo import imaging

    rgb = imaging.tensor_to_image(blurred)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 200))
    grey16 = Image.fromarray((blurred[0].mean(0).numpy() * 65535).round().astype(np.uint16))
    files = {"colour": rgb, "grey": rgb.convert("L"), "alpha": rgba, "grey16": grey16}
    for name, image in files.items():
        image.save(tmp_path / f"{name}.png")
    return {name: tmp_path / f"{name}.png" for name in files}


def test_deblur_blind_keeps_the_image_kind_and_restores(case: tuple[torch.Tensor, np.ndarray], tmp_path) -> None:
    from PIL import Image

    from ganzoo import imaging, pipelines
    from ganzoo.metrics import psnr

    blurred, _ = case
    sharp = shapes_image(160, 0)
    files = _saved(tmp_path, imaging.quantize(blurred))
    expected_modes = {"colour": "RGB", "grey": "L", "alpha": "RGBA", "grey16": "I;16"}
    for name, path in files.items():
        restored, estimate = pipelines.deblur_blind(path, kernel_size=17)
        assert restored.mode == expected_modes[name] and restored.size == (160, 160), name
        assert estimate.kernel.shape == (17, 17) and not estimate.note
    before = imaging.image_to_tensor(Image.open(files["colour"]).convert("RGB"))[0]
    out = imaging.image_to_tensor(pipelines.deblur_blind(files["colour"], kernel_size=17)[0])[0]
    assert psnr(out, sharp).item() > psnr(before, sharp).item() + 3  # well above the blurred input


def test_flat_image_passes_unchanged_or_to_the_fallback_network(tmp_path) -> None:
    from torch import nn

    from ganzoo import pipelines

    flat = torch.full((1, 3, 64, 64), 0.4)
    notes: list[str] = []
    out = pipelines.blind_deblurrer(on_estimate=lambda e: notes.append(e.note))(flat)
    assert torch.equal(out, flat) and "flat" in notes[0]

    class Brighter(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 0.1

    out = pipelines.blind_deblurrer(fallback=Brighter(), precision="fp32")(flat)
    torch.testing.assert_close(out, flat + 0.1)


def test_cli_deblur_estimate_writes_the_kernel(case: tuple[torch.Tensor, np.ndarray], tmp_path, capsys) -> None:
    from PIL import Image

    from ganzoo import cli, imaging

    folder = tmp_path / "in"
    folder.mkdir()
    imaging.tensor_to_image(case[0]).save(folder / "shaken.png")
    Image.new("RGB", (64, 64), (90, 90, 90)).save(folder / "flat.png")
    out = tmp_path / "out"
    assert cli.main(["deblur", str(folder), "-o", str(out), "--method", "estimate", "--kernel-size", "17",
                     "--save-kernel"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["flat.png", "flat_kernel.png", "shaken.png",
                                                      "shaken_kernel.png"]
    kernel = np.asarray(Image.open(out / "shaken_kernel.png"), dtype=float)
    assert kernel.shape == (17, 17) and kernel.max() == 255
    assert kernel_similarity(kernel / kernel.sum(), case[1]) >= 0.9
    assert "flat" in capsys.readouterr().err  # the fallback is said


@pytest.mark.parametrize("flags, message", [(["--kernel-size", "0"], "kernel size"),
                                            (["--kernel-size", "101"], "kernel size"),
                                            (["--method", "network", "--kernel-size", "9"], "apply to")])
def test_cli_deblur_refuses_bad_kernel_sizes(flags: list[str], message: str, tmp_path, capsys) -> None:
    from PIL import Image

    from ganzoo import cli

    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    assert cli.main(["deblur", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--method", "estimate",
                     *flags]) != 0
    assert message in capsys.readouterr().err


def test_the_refiner_cleans_up_deconvolutions_only(case: tuple[torch.Tensor, np.ndarray]) -> None:
    """auto's pipeline: the refiner runs on the deconvolved image (one the network's output does not reject); a
    fallback network's output is final."""
    from torch import nn

    from ganzoo import pipelines

    seen: dict[float, list[torch.Tensor]] = {0.1: [], 0.2: []}  # outside the modules: the pipeline may copy them

    class Brighter(nn.Module):
        def __init__(self, amount: float) -> None:
            super().__init__()
            self.amount = amount

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen[self.amount].append(x.clone())
            return x + self.amount

    blurred = case[0]
    flat = torch.full((1, 3, 64, 64), 0.4)
    deblur = pipelines.blind_deblurrer(Brighter(0.1), kernel_size=17, fallback=Brighter(0.2), precision="fp32")
    out = deblur(flat)
    torch.testing.assert_close(out, flat + 0.2)  # the network alone, not refined
    assert not seen[0.1] and len(seen[0.2]) == 1
    out = deblur(blurred)
    deconvolved = pipelines.deconvolve_estimated(blurred, ke.estimate_kernel(blurred[0], 17).kernel).clamp(0, 1)
    assert len(seen[0.1]) == 1 and len(seen[0.2]) == 2  # the network also ran, to check the deconvolution
    torch.testing.assert_close(seen[0.1][0], deconvolved)  # the refiner sees the deconvolution, in [0, 1]
    torch.testing.assert_close(out, (deconvolved + 0.1).clamp(0, 1))  # a network's output is clamped


def _line_kernel(size: int) -> np.ndarray:
    kernel = np.zeros((size, size))
    kernel[size // 2, :] = 1.0
    return kernel / kernel.sum()


def test_a_deconvolution_that_strays_from_the_network_is_rejected(case: tuple[torch.Tensor, np.ndarray]) -> None:
    """`strays_from_network`: a deconvolution by a wrong kernel (a long line across a short shake) rings and
    doubles edges, away from what a network that sharpens right returns (here: the true kernel's deconvolution);
    the estimate's own deconvolution moves towards it."""
    from ganzoo import pipelines

    blurred, true = case
    sharpened = pipelines.deconvolve_estimated(blurred, true).clamp(0, 1)
    estimated = pipelines.deconvolve_estimated(blurred, ke.estimate_kernel(blurred[0]).kernel)
    assert not pipelines.strays_from_network(blurred, estimated, sharpened)
    for size in (15, 41):
        wrong = pipelines.deconvolve_estimated(blurred, _line_kernel(size))
        assert pipelines.strays_from_network(blurred, wrong, sharpened)
    assert not pipelines.strays_from_network(blurred, blurred, sharpened)  # no change is not straying


def test_auto_gives_a_straying_deconvolution_to_the_network(case: tuple[torch.Tensor, np.ndarray],
                                                             monkeypatch) -> None:
    """auto (`blind_deblurrer` with a fallback) returns the network's output, not the deconvolution, where the
    deconvolution strays from it; the estimate handed on is then the identity, with a note that says why."""
    from torch import nn

    from ganzoo import pipelines

    blurred, true = case
    sharpened = pipelines.deconvolve_estimated(blurred, true).clamp(0, 1)

    class Sharpener(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return sharpened.to(x)

    wrong = ke.KernelEstimate(_line_kernel(31), 31, True, 0.0, 0.1)
    monkeypatch.setattr(ke, "estimate_kernel", lambda *args, **kwargs: wrong)
    estimates: list[ke.KernelEstimate] = []
    out = pipelines.blind_deblurrer(fallback=Sharpener(), precision="fp32", on_estimate=estimates.append)(blurred)
    torch.testing.assert_close(out, sharpened)
    assert estimates[0].kernel.shape == (1, 1) and "strays" in estimates[0].note
    without_fallback = pipelines.blind_deblurrer(precision="fp32")(blurred)  # --method estimate: no check
    torch.testing.assert_close(without_fallback, pipelines.deconvolve_estimated(blurred, wrong.kernel))


def test_cli_estimate_and_refine(case: tuple[torch.Tensor, np.ndarray], tmp_path, capsys) -> None:
    """--method estimate and auto take a --refiner (any DeblurUNet folder) run on each deconvolution; other methods
    refuse it."""
    import json

    from ganzoo import cli, imaging
    from ganzoo.models import DeblurUNet

    torch.manual_seed(0)
    refiner = tmp_path / "refiner"
    DeblurUNet(channels=4, encoder_blocks=[1, 1], middle_blocks=1, decoder_blocks=[1, 1]).save_pretrained(refiner)
    folder = tmp_path / "in"
    folder.mkdir()
    imaging.tensor_to_image(case[0]).save(folder / "shaken.png")
    from PIL import Image

    outputs = {}
    for method, flags in (("estimate", []), ("estimate", ["--refiner", str(refiner)]),
                          ("auto", ["--refiner", str(refiner)])):
        out = tmp_path / f"{method}{len(flags)}"
        assert cli.main(["deblur", str(folder), "-o", str(out), "--method", method, *flags,
                         "--kernel-size", "17"]) == 0, capsys.readouterr().err
        outputs[out.name] = np.asarray(Image.open(out / "shaken.png"), dtype=int)
    assert np.abs(outputs["estimate0"] - outputs["estimate2"]).max() > 0  # the refiner ran
    assert np.array_equal(outputs["estimate2"], outputs["auto2"])  # auto = estimate where the kernel is trusted
    assert cli.main(["deblur", str(folder), "-o", str(tmp_path / "x"), "--method", "network",
                     "--refiner", str(refiner)]) != 0
    assert "--refiner applies to" in capsys.readouterr().err
    sharp = tmp_path / "set"
    (sharp / "sharp").mkdir(parents=True)
    (sharp / "blurred").mkdir()
    imaging.tensor_to_image(shapes_image(160, 0)).save(sharp / "sharp" / "scene.png")
    imaging.tensor_to_image(case[0]).save(sharp / "blurred" / "scene_kernel_01.png")
    scores = {}
    for flags in ([], ["--refiner", str(refiner)]):
        assert cli.main(["evaluate", "deblur", "--method", "estimate", *flags, "--data", str(sharp),
                         "--no-reference", "--no-aligned", "--kernel-size", "17", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["method"] == "estimate" and result.get("refiner") == (flags[1] if flags else None)
        scores[len(flags)] = result["psnr"]
    assert scores[0] != scores[2]  # scored with the refiner's output
    assert cli.main(["evaluate", "deblur", "--method", "network", "--refiner", str(refiner), "--data",
                     str(sharp)]) != 0
    assert "--refiner applies to" in capsys.readouterr().err
