"""ganzoo.evaluate: deblur cases, the deblur evaluation and the Richardson-Lucy baseline."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from skimage import data as skdata

from ganzoo import degrade, imaging
from ganzoo.evaluate import deblur_cases, evaluate_deblur, richardson_lucy
from ganzoo.metrics import psnr

from conftest import save, shake


def test_deblur_cases_pairs_and_sharp_plus_kernels(levin_like, kernels, tmp_path):
    cases = deblur_cases(levin_like, kernels)
    assert len(cases) == 4 and cases[1][0] == "blurred_noisefree/im_1_ker_2"
    assert torch.equal(cases[1][3], kernels[1])
    assert deblur_cases(levin_like)[0][3] is None  # no kernels given: no reference possible
    with pytest.raises(ValueError, match="names kernel 2, but 1 kernels"):
        deblur_cases(levin_like, kernels[:1])
    sharp_only = tmp_path / "sharp_only"
    save(torch.rand(1, 3, 40, 40), sharp_only / "a.png")
    first = deblur_cases(sharp_only, kernels)
    assert [c[0] for c in first] == ["a_ker_1", "a_ker_2"]
    assert torch.equal(first[0][1], deblur_cases(sharp_only, kernels)[0][1])  # deterministic
    with pytest.raises(ValueError, match="give the kernels"):
        deblur_cases(sharp_only)
    # Levin's own sharp/ folder with kernels: re-blurred (reflect borders), not read as the pairs beside it
    reblurred = deblur_cases(levin_like / "sharp", kernels)
    assert [c[0] for c in reblurred] == ["im_1_ker_1", "im_1_ker_2", "im_2_ker_1", "im_2_ker_2"]
    assert torch.equal(reblurred[1][1], imaging.quantize(degrade.blur(reblurred[1][2], kernels[1])))
    with pytest.raises(ValueError, match="give the kernels"):
        deblur_cases(levin_like / "sharp")


def test_evaluate_scores_identity_as_the_input_and_reference_helps(levin_like, kernels):
    result = evaluate_deblur(lambda x: x, levin_like, kernels, progress=False)
    assert result["n"] == 4
    assert result["psnr"] == pytest.approx(result["psnr_input"]) and result["ssim"] == pytest.approx(result["ssim_input"])
    assert result["psnr_richardson_lucy"] > result["psnr_input"] + 1  # the true kernel undoes most of the blur
    assert set(result["images"][0]) == {"image", "psnr", "ssim", "psnr_input", "ssim_input",
                                        "psnr_richardson_lucy", "ssim_richardson_lucy"}


def test_richardson_lucy_inverts_a_known_blur():
    sharp = imaging.image_to_tensor(Image.fromarray(skdata.astronaut()[100:164, 200:264]))[0]
    kernel = shake(3)
    blurred = degrade.blur(sharp, kernel)
    restored = richardson_lucy(blurred, kernel, iterations=50)
    assert restored.shape == sharp.shape
    assert psnr(restored.clamp(0, 1), sharp) > psnr(blurred, sharp) + 1


def test_evaluate_with_a_kernel_estimator_scores_the_kernel(levin_like, kernels):
    """A blind method = kernel estimate + the non-blind step: similarity 1 and error ratio ~1 for the truth moved
    by a pixel (a kernel is only defined up to a shift), worse for a wrong kernel."""
    cases = {name: kernel for name, _, _, kernel in deblur_cases(levin_like, kernels)}

    def moved_truth(blurred: torch.Tensor) -> torch.Tensor:  # finds the case by its pixels
        name = next(n for n, b, _, _ in deblur_cases(levin_like, kernels) if torch.equal(b, blurred))
        return torch.nn.functional.pad(cases[name], (1, 0, 0, 1))  # grid 10x10, the kernel moved by one pixel

    good = evaluate_deblur(None, levin_like, kernels, reference=False, progress=False, estimate_kernel=moved_truth,
                           aligned=True)
    assert good["kernel_similarity"] == pytest.approx(1.0, abs=1e-6)
    assert good["error_ratio"] == pytest.approx(1.0, abs=0.05)
    assert good["psnr_aligned"] > good["psnr_input_aligned"] + 3
    wrong = evaluate_deblur(None, levin_like, kernels, reference=False, progress=False,
                            estimate_kernel=lambda blurred: torch.eye(9), aligned=True)
    assert wrong["kernel_similarity"] < 0.8 and wrong["error_ratio"] > 1.5
    with pytest.raises(ValueError, match="one deblurring method"):
        evaluate_deblur(lambda x: x, levin_like, kernels, estimate_kernel=moved_truth)


def test_the_error_ratio_scores_the_kernel_even_where_the_method_falls_back(levin_like, kernels):
    """`--method auto` may put a network's output in place of a deconvolution, for the estimated kernel or for
    the true one. The error ratio then still compares the two deconvolutions: a wrong kernel scores badly even
    where the method's own output (here: the input back, as a network that changes nothing) hides it."""
    from ganzoo.deconvolution import deconvolve_batch

    def falls_back(blurred: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        return blurred

    wrong = lambda blurred: torch.eye(9)  # noqa: E731
    hidden = evaluate_deblur(None, levin_like, kernels, reference=False, progress=False, estimate_kernel=wrong,
                             with_kernel=falls_back)
    assert hidden["error_ratio"] == pytest.approx(1.0)  # both images are the input: the ratio says nothing
    scored = evaluate_deblur(None, levin_like, kernels, reference=False, progress=False, estimate_kernel=wrong,
                             with_kernel=falls_back, kernel_deconvolution=deconvolve_batch)
    assert scored["error_ratio"] > 1.5
    assert scored["psnr"] == pytest.approx(hidden["psnr"])  # the method's own output is scored as before
