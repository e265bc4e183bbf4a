"""Evaluation routines behind `ganzoo evaluate`, the train scripts' validation and the model cards."""

from __future__ import annotations

import os
from collections.abc import Callable

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
from ganzoo.metrics import frechet_distance, psnr, ssim

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
    then PSNR/SSIM on Y (BT.601) and on RGB, each with a `scale`-pixel border crop."""
    rows = []
    for path in tqdm(list_images(data_dir), desc="evaluate", disable=not progress):
        hr = mod_crop(image_to_tensor(load_image(path))[0], scale)
        lr = degrade_bicubic(hr, scale)
        sr = quantize(upscale(lr).to(hr.device, hr.dtype))
        if sr.shape != hr.shape:
            raise ValueError(f"{path.name}: upscaled to {tuple(sr.shape)}, expected {tuple(hr.shape)}")
        rows.append({
            "image": path.stem,
            "psnr_y": psnr(sr, hr, crop_border=scale, y_channel=True).item(),
            "ssim_y": ssim(sr, hr, crop_border=scale, y_channel=True).item(),
            "psnr_rgb": psnr(sr, hr, crop_border=scale).item(),
            "ssim_rgb": ssim(sr, hr, crop_border=scale).item(),
        })
    means = {key: sum(r[key] for r in rows) / len(rows) for key in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")}
    return {"n": len(rows), **means, "images": rows}
