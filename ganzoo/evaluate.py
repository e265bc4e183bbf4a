"""Evaluation routines behind `ganzoo evaluate`, the train scripts' validation and the model cards."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ganzoo.imaging import (
    degrade_bicubic,
    image_to_tensor,
    list_images,
    load_image,
    mod_crop,
    quantize,
)
from ganzoo.metrics import (
    aligned_scores,
    detail_ratio,
    error_ratio,
    frechet_distance,
    grid_artifact_score,
    kernel_similarity,
    psnr,
    ssim,
)

# -- digits -----------------------------------------------------------------------------------------

@torch.no_grad()
def classifier_features(classifier: torch.nn.Module, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    device = next(classifier.parameters()).device
    return torch.cat([classifier.features(images[i:i + batch].to(device)).double().cpu()
                      for i in range(0, len(images), batch)])


@torch.no_grad()
def evaluate_digits(generator: torch.nn.Module, classifier: torch.nn.Module, data_dir: str | os.PathLike,
                    samples_per_class: int = 1000, seed: int = 0) -> dict[str, float | list[float]]:
    """Digit FID in the classifier's feature space against MNIST test, and per-class accuracy.

    `fid_real_floor` is the FID of as many real *training* digits against the
    test set: what a perfect generator would score with this sample size.
    """
    from ganzoo.data import load_mnist

    classifier.eval()
    generator.eval()
    test_images, test_labels = load_mnist(data_dir, "test")
    train_images, _ = load_mnist(data_dir, "train")
    n = samples_per_class * generator.num_classes
    labels = torch.arange(generator.num_classes).repeat_interleave(samples_per_class)
    fakes = torch.cat([generator.sample(labels[i:i + 1000], seed=seed + i).cpu()
                       for i in range(0, n, 1000)])
    test_feats = classifier_features(classifier, test_images)
    fake_feats = classifier_features(classifier, fakes)
    real_subset = train_images[torch.randperm(len(train_images), generator=torch.Generator().manual_seed(seed))[:n]]
    device = next(classifier.parameters()).device
    predicted = torch.cat([classifier(fakes[i:i + 1000].to(device)).argmax(1).cpu() for i in range(0, n, 1000)])
    correct = (predicted == labels).double()
    per_class = [correct[labels == c].mean().item() for c in range(generator.num_classes)]
    test_pred = torch.cat([classifier(test_images[i:i + 1000].to(device)).argmax(1).cpu()
                           for i in range(0, len(test_images), 1000)])
    return {
        "fid": frechet_distance(fake_feats, test_feats),
        "fid_real_floor": frechet_distance(classifier_features(classifier, real_subset), test_feats),
        "class_accuracy": correct.mean().item(),
        "class_accuracy_per_class": per_class,
        "classifier_test_accuracy": (test_pred == test_labels).double().mean().item(),
        "n": n,
    }


# -- super-resolution -------------------------------------------------------------------------------

@torch.no_grad()
def evaluate_sr(upscale: Callable[[torch.Tensor], torch.Tensor], data_dir: str | os.PathLike, scale: int,
                progress: bool = True) -> dict[str, float | int | list[dict[str, float]]]:
    """The SR benchmark protocol: mod-crop, MATLAB bicubic down, upscale, quantise to 8 bits,
    then PSNR/SSIM on Y (BT.601) and on RGB, each with a `scale`-pixel border crop, and the
    grid-artefact score of the whole output (`metrics.grid_artifact_score`) and its detail ratio to HR
    (`metrics.detail_ratio`, border cropped).

    `data_dir`: a folder of HR images or a 🤗 dataset (Hub id or `save_to_disk` folder)."""
    rows = []
    for name, image in tqdm(named_images(data_dir), desc="evaluate", disable=not progress):
        hr = mod_crop(image_to_tensor(load_image(image))[0], scale)
        lr = degrade_bicubic(hr, scale)
        sr = quantize(upscale(lr).to(hr.device, hr.dtype))
        if sr.shape != hr.shape:
            raise ValueError(f"{name}: upscaled to {tuple(sr.shape)}, expected {tuple(hr.shape)}")
        rows.append({
            "image": name,
            "psnr_y": psnr(sr, hr, crop_border=scale, y_channel=True).item(),
            "ssim_y": ssim(sr, hr, crop_border=scale, y_channel=True).item(),
            "psnr_rgb": psnr(sr, hr, crop_border=scale).item(),
            "ssim_rgb": ssim(sr, hr, crop_border=scale).item(),
            "grid": grid_artifact_score(sr),
            "detail": detail_ratio(sr, hr, crop_border=scale).item(),
        })
    means = {key: sum(r[key] for r in rows) / len(rows)
             for key in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "grid", "detail")}
    return {"n": len(rows), **means, "images": rows}


def named_images(source: str | os.PathLike) -> list[tuple[str, object]]:
    """(name, path or PIL image) of a folder's images (named by file stem) or of a 🤗 dataset's rows."""
    from ganzoo.data import dataset_images, is_dataset_source

    if is_dataset_source(source):
        return [(name, image) for name, image, _ in dataset_images(source)]
    return [(path.stem, path) for path in list_images(source)]


# -- deblurring -------------------------------------------------------------------------------------

KERNEL_NUMBER = re.compile(r"_ker(?:nel)?_?(\d+)$")  # Levin `_ker3`/`_ker_3`, Lai et al. `_kernel_03`
DEBLUR_KEYS = ("psnr", "ssim", "psnr_input", "ssim_input")


def deblur_cases(data_dir: str | os.PathLike, kernels: list[torch.Tensor] | None = None,
                 ) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """(name, blurred [1,3,H,W], sharp, true kernel or None) for every benchmark case in `data_dir`.

    A folder of blurred/sharp pairs (GoPro, Levin or Lai et al. 2016 layout, see `data.blur_pairs`)
    is read as is; a `_ker_N` or `_kernel_NN` suffix picks the true kernel N (1-based) from
    `kernels` when given, else from `kernels/kernel_NN.png` beside `sharp/` (the Lai layout).
    A folder of sharp images (one named `sharp` included) needs `kernels`: every
    image is blurred with every kernel (reflect padding) and quantised to 8 bits,
    so the benchmark is the same on every run. A 🤗 dataset (Hub id or `save_to_disk` folder) with a `blur*`
    image column gives pairs; one without gives sharp images.
    """
    from ganzoo.data import blur_pairs, dataset_images, is_dataset_source, sharp_folders
    from ganzoo.degrade import blur

    folder = Path(data_dir)
    cases = []
    rows = dataset_images(data_dir) if is_dataset_source(data_dir) else []
    if rows and all(blurred is not None for *_, blurred in rows):
        return [(name, _read_rgb(blurred), _read_rgb(sharp), None) for name, sharp, blurred in rows]
    # A folder that is itself named `sharp` holds sharp images: blurring them with `kernels` is the
    # request, even where blurred siblings exist (e.g. re-blurring Levin's images with other borders).
    if not rows and folder.is_dir() and [f for f in sharp_folders(folder) if f != folder]:
        beside: dict[Path, dict[int, torch.Tensor]] = {}
        for blurred_path, sharp_path in blur_pairs(folder):
            number = KERNEL_NUMBER.search(blurred_path.stem)
            kernel = None
            table = ({i: k for i, k in enumerate(kernels, 1)} if kernels is not None
                     else beside.setdefault(sharp_path.parent, _kernels_beside(sharp_path.parent)))
            if table and number is not None:
                index = int(number.group(1))
                if index not in table:
                    raise ValueError(f"{blurred_path.name} names kernel {index}, but {len(table)} kernels were given "
                                     f"(numbered {', '.join(map(str, sorted(table)))})")
                kernel = table[index]
            name = f"{blurred_path.parent.name}/{blurred_path.stem}"
            cases.append((name, _read_rgb(blurred_path), _read_rgb(sharp_path), kernel))
        return cases
    if kernels is None:
        raise ValueError(f"{folder}: no blurred/sharp pairs; for a folder of sharp images give the kernels to blur "
                         "them with")
    for name, image in [(name, sharp) for name, sharp, _ in rows] or named_images(folder):
        sharp = _read_rgb(image)
        for index, kernel in enumerate(kernels, 1):
            cases.append((f"{name}_ker_{index}", quantize(blur(sharp, kernel)), sharp, kernel))
    return cases


def _kernels_beside(sharp_dir: Path) -> dict[int, torch.Tensor]:
    """The Lai layout's true kernels, `kernels/kernel_NN.png` beside `sharp/`, by number (none: {})."""
    from ganzoo.degrade import load_kernels

    folder = sharp_dir.parent / "kernels"
    if not folder.is_dir():
        return {}
    numbered = {int(m.group(1)): p for p in folder.glob("*.png") if (m := re.fullmatch(r"kernel_?(\d+)", p.stem))}
    return {number: load_kernels(path)[0] for number, path in sorted(numbered.items())}


def _read_rgb(image: Path | object) -> torch.Tensor:
    return image_to_tensor(load_image(image))[0]


def richardson_lucy(blurred: torch.Tensor, kernel: torch.Tensor, iterations: int = 30) -> torch.Tensor:
    """The classical non-blind reference: Richardson–Lucy deconvolution with the true kernel.

    `skimage.restoration.richardson_lucy` (start at 0.5, zero boundaries, clip to [-1, 1]) on the image
    padded by symmetric reflection, computed with float32 FFTs and the kernel's transform computed once:
    the same result to ~1e-3 and several times faster for 75 px kernels.
    """
    from scipy.fft import next_fast_len

    kh, kw = kernel.shape
    pad = max(kernel.shape)
    grey = bool((blurred[0] == blurred[0, :1]).all())
    # Zero boundaries would ring from every edge; padding by reflection first is the usual remedy.
    image = torch.from_numpy(np.pad(blurred[0, :1 if grey else 3].float().numpy(), ((0, 0), (pad, pad), (pad, pad)),
                                    mode="symmetric"))
    h, w = image.shape[-2:]
    # Room for zeros so the FFT's circular convolution is scipy's zero-padded one, rounded up to fast FFT sizes.
    size = (next_fast_len(h + kh, real=True), next_fast_len(w + kw, real=True))
    inside = torch.zeros(size)
    inside[:h, :w] = 1
    image = torch.nn.functional.pad(image, (0, size[1] - w, 0, size[0] - h))
    psf = torch.zeros(size)
    psf[:kh, :kw] = kernel.float()
    psf = torch.roll(psf, (-(kh // 2), -(kw // 2)), dims=(0, 1))  # scipy's "same": the centre at k // 2
    forward = torch.fft.rfft2(psf)
    estimate = torch.full_like(image, 0.5) * inside
    for _ in range(iterations):
        conv = torch.fft.irfft2(torch.fft.rfft2(estimate) * forward, s=size)
        ratio = image / (conv + 1e-12) * inside
        # Convolving with the mirrored kernel is multiplying by the conjugate transform.
        estimate = estimate * torch.fft.irfft2(torch.fft.rfft2(ratio) * forward.conj(), s=size) * inside
    planes = estimate.clamp(-1, 1)[:, pad:h - pad, pad:w - pad]
    return (planes.expand(3, -1, -1) if grey else planes)[None].contiguous()


#: what `ganzoo evaluate deblur --method` scores: a deblurring network, or non-blind deconvolution given the true kernel
DEBLUR_METHODS = ("network", "true-kernel")
#: how the two kinds of figure are computed (printed with the results)
DEBLUR_PROTOCOL = {
    "unaligned": "RGB PSNR/SSIM of the whole image, no shift, no crop (keys psnr, ssim, psnr_input, ...)",
    "aligned": "SelfDeblur's protocol: the reference cropped by 15 px, the output moved by the best of all shifts "
               "within +-5 px in 0.25 px steps (bilinear, least SSD), PSNR/SSIM on luma (grey images: the grey "
               "plane) (keys *_aligned)",
}
KernelDeblur = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def evaluate_deblur(deblur: Callable[[torch.Tensor], torch.Tensor] | None, data_dir: str | os.PathLike,
                    kernels: list[torch.Tensor] | None = None, reference: bool = True, progress: bool = True,
                    *, with_kernel: KernelDeblur | None = None,
                    estimate_kernel: Callable[[torch.Tensor], torch.Tensor] | None = None, aligned: bool = False,
                    kernel_deconvolution: KernelDeblur | None = None,
                    ) -> dict[str, float | int | list[dict[str, float]] | dict[str, float]]:
    """PSNR/SSIM of a deblurring method and of the blurred input against the sharp images, unaligned (RGB, no
    border crop) and, with `aligned` (about a second per image and score), after SelfDeblur's shift alignment
    (`metrics.aligned_scores`; keys `*_aligned`). Outputs are quantised to 8 bits.

    The method is one of: `deblur` (blurred [1,3,H,W] -> restored: a network); `with_kernel` alone
    ((blurred, true kernel [kh,kw]) -> restored: non-blind deconvolution given the truth; every case needs its
    kernel); `estimate_kernel` (blurred -> kernel; the image is then `with_kernel`, by default
    `deconvolution.deconvolve_batch`, applied with the estimated kernel; where the true kernel is known the rows
    add `kernel_similarity` (`metrics.kernel_similarity`) and `error_ratio` (`metrics.error_ratio`: the same
    non-blind step with the estimated over with the true kernel)); or none (the input only). With true kernels and
    `reference`, the rows also hold Richardson-Lucy given the true kernel (unaligned).

    `kernel_deconvolution`, where given, is that non-blind step for the error ratio in place of `with_kernel`,
    for a `with_kernel` that does more than deconvolve (`--method auto` may put a network's output in place of
    the deconvolution): the ratio scores the kernel, so both of its images must be deconvolutions, by the
    estimated and by the true kernel.
    """
    if sum(x is not None for x in (deblur, estimate_kernel)) > 1 or (deblur is not None and with_kernel is not None):
        raise ValueError("give one deblurring method: a network, a non-blind step with the true kernel, or a kernel "
                         "estimator")
    if estimate_kernel is not None and with_kernel is None:
        from ganzoo.deconvolution import deconvolve_batch
        with_kernel = deconvolve_batch
    rows = []
    for name, blurred, sharp, kernel in tqdm(deblur_cases(data_dir, kernels), desc="evaluate", disable=not progress):
        row = {"image": name, **_scores(blurred, sharp, "_input", aligned)}
        if deblur is not None or with_kernel is not None:
            restored, extra = _restore(name, blurred, sharp, kernel, deblur, with_kernel, estimate_kernel, aligned,
                                       kernel_deconvolution)
            row.update(_scores(restored, sharp, "", aligned), **extra)
        if reference and kernel is not None:
            out = quantize(richardson_lucy(blurred, kernel))
            row.update(psnr_richardson_lucy=psnr(out, sharp).item(), ssim_richardson_lucy=ssim(out, sharp).item())
        rows.append(row)
    keys = [k for k in rows[0] if isinstance(rows[0][k], float) and all(k in r for r in rows)]
    means = {key: sum(r[key] for r in rows) / len(rows) for key in keys}
    return {"n": len(rows), **means, "images": rows, "protocol": {k: v for k, v in DEBLUR_PROTOCOL.items()
                                                                   if aligned or k == "unaligned"}}


def _restore(name: str, blurred: torch.Tensor, sharp: torch.Tensor, kernel: torch.Tensor | None,
             deblur: Callable[[torch.Tensor], torch.Tensor] | None, with_kernel: KernelDeblur | None,
             estimate_kernel: Callable[[torch.Tensor], torch.Tensor] | None, aligned: bool,
             kernel_deconvolution: KernelDeblur | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """One case's restored image (8 bits) by the chosen method, and the kernel scores of a blind one."""
    extra: dict[str, float] = {}
    if deblur is not None:
        out = deblur(blurred)
    elif estimate_kernel is None:
        if kernel is None:
            raise ValueError(f"{name}: deconvolution with the true kernel needs the kernels (the Lai layout's "
                             "kernels/, or --kernels for Levin's `_ker_N` names)")
        out = with_kernel(blurred, kernel)
    else:
        estimated = estimate_kernel(blurred)
        out = with_kernel(blurred, estimated)
        if kernel is not None:
            step = kernel_deconvolution or with_kernel
            with_estimate = out if kernel_deconvolution is None else kernel_deconvolution(blurred, estimated)
            with_true = quantize(step(blurred, kernel).to(sharp.device, sharp.dtype))
            extra = {"kernel_similarity": kernel_similarity(estimated, kernel),
                     "error_ratio": error_ratio(quantize(with_estimate.to(sharp.device, sharp.dtype)), with_true,
                                                sharp, aligned=aligned)}
    out = quantize(out.to(sharp.device, sharp.dtype))
    if out.shape != sharp.shape:
        raise ValueError(f"{name}: deblurred to {tuple(out.shape)}, expected {tuple(sharp.shape)}")
    return out, extra


def _scores(image: torch.Tensor, sharp: torch.Tensor, suffix: str, aligned: bool) -> dict[str, float]:
    """psnr/ssim (RGB, whole image) and, with `aligned`, psnr_aligned/ssim_aligned, each with `suffix`."""
    scores = {f"psnr{suffix}": psnr(image, sharp).item(), f"ssim{suffix}": ssim(image, sharp).item()}
    if aligned:
        found = aligned_scores(image, sharp)
        scores.update({f"psnr{suffix}_aligned": found["psnr"], f"ssim{suffix}_aligned": found["ssim"]})
    return scores


# -- style transfer ---------------------------------------------------------------------------------

@torch.no_grad()
def evaluate_style(stylize: Callable[[torch.Tensor], torch.Tensor], data_dir: str | os.PathLike,
                   max_size: int | None = None, progress: bool = True) -> dict[str, float | int | list]:
    """Grid-artefact score (`metrics.grid_artifact_score`) of each stylised photo and of the photo itself,
    and the content-structure SSIM (`metrics.structure_ssim`) of stylised to photo; outputs quantised to
    8 bits. `max_size` first shrinks photos whose longer side is larger (Lanczos), for quick checks."""
    from PIL import Image

    from ganzoo.metrics import grid_artifact_score, structure_ssim

    rows = []
    for path in tqdm(list_images(data_dir), desc="evaluate", disable=not progress):
        image = load_image(path).convert("RGB")
        if max_size is not None and max(image.size) > max_size:
            image.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
        photo = image_to_tensor(image)[0]
        out = quantize(stylize(photo).to(photo.device, photo.dtype))
        if out.shape != photo.shape:
            raise ValueError(f"{path.name}: stylised to {tuple(out.shape)}, expected {tuple(photo.shape)}")
        rows.append({"image": path.stem, "grid": grid_artifact_score(out), "grid_input": grid_artifact_score(photo),
                     "structure_ssim": structure_ssim(out, photo).item()})
    if not rows:
        raise ValueError(f"no images in {data_dir}")
    means = {key: sum(r[key] for r in rows) / len(rows) for key in ("grid", "grid_input", "structure_ssim")}
    return {"n": len(rows), **means, "images": rows}
