"""Post-training static int8 in ONNX Runtime, calibrated on training crops: a measured option of
`ganzoo benchmark`, not a default (README, Performance).

The model is exported as `ganzoo export-onnx` does it, pre-processed (`quant_pre_process`), then
`onnxruntime.quantization.quantize_static` quantises it: QDQ format, int8 weights per output channel in 7
bits (`reduce_range`: x86 without VNNI multiplies uint8 by int8 with VPMADDUBSW, whose 16-bit sums saturate
with 8-bit weights, which cost several dB of Set5 Y-PSNR in development runs), uint8 activations with
ranges from the calibration inputs, and the output convolution left in fp32. The PSNR cost is
measured by `ganzoo benchmark --calibration-data ... --reference-data ...`. Calibration inputs are random
crops of training images (never of a benchmark image),
degraded into what the model takes: bicubic-downscaled for super-resolution, blurred with random
camera-shake kernels for deblurring, as they are for style transfer.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ganzoo import imaging

__all__ = ["calibration_inputs", "quantize_onnx"]


def _training_images(folder: Path) -> list[Path]:
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in imaging.IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder}: no training images for int8 calibration")
    return files


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:  # reads the header only
        return image.size


def calibration_inputs(model: nn.Module, data_dir: str | os.PathLike, count: int = 16, size: int = 64,
                       seed: int = 0) -> list[np.ndarray]:
    """`count` float32 inputs [1,3,size,size] for `model`, from random crops of the images under `data_dir`."""
    from ganzoo.degrade import blur, random_trajectory_kernel
    from ganzoo.models import DEBLURRING_MODELS
    from ganzoo.pipelines import image_model_scale

    scale = image_model_scale(model)
    deblurs = isinstance(model, DEBLURRING_MODELS)
    crop = size * scale
    files = [path for path in _training_images(Path(data_dir)) if min(_size(path)) >= crop]
    if not files:
        raise ValueError(f"{data_dir}: no training image is {crop}x{crop} pixels or larger, the calibration crop")
    rng = torch.Generator().manual_seed(seed)
    inputs = []
    while len(inputs) < count:
        path = files[int(torch.randint(len(files), (1,), generator=rng))]
        image = imaging.image_to_tensor(imaging.load_image(path))[0]
        height, width = image.shape[-2:]
        top = int(torch.randint(height - crop + 1, (1,), generator=rng))
        left = int(torch.randint(width - crop + 1, (1,), generator=rng))
        x = image[..., top:top + crop, left:left + crop]
        if scale > 1:
            x = imaging.degrade_bicubic(x, scale)
        elif deblurs:
            x = imaging.quantize(blur(x, random_trajectory_kernel(31, rng)))
        inputs.append(x.float().numpy())
    return inputs


def quantize_onnx(model: nn.Module, path: str | os.PathLike, calibration: list[np.ndarray]) -> str:
    """Write `model` as static int8 ONNX to `path` (fp32 in and out), calibrated on `calibration`."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ganzoo.export import INPUT_NAME, export_onnx

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    path = os.fspath(path)
    fp32_path, prepared_path = path + ".fp32.onnx", path + ".prepared.onnx"
    try:
        quant_pre_process(export_onnx(model, fp32_path), prepared_path)
        convs = [node.name for node in onnx.load(prepared_path).graph.node if node.op_type == "Conv"]
        quantize_static(prepared_path, path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        nodes_to_exclude=convs[-1:])
    finally:
        for temporary in (fp32_path, prepared_path):
            if os.path.exists(temporary):
                os.remove(temporary)
    return path
