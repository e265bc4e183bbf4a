"""Exact rewrites that make a trained model cheaper to run, for inference only.

`for_inference(model)` returns a copy that computes the same function (to float rounding):

- every Conv2d followed by a BatchNorm2d inside an `nn.Sequential` becomes one convolution with the
  batch-norm statistics folded into its weights (`torch.nn.utils.fusion.fuse_conv_bn_eval`);
- SRResNet's last step, PixelShuffle -> PReLU -> 9x9 conv to 3 channels on the full-size image, becomes
  PReLU -> 5x5 conv to 12 channels on the half-size grid -> PixelShuffle. A convolution with only three
  output channels wastes most of a CPU's vector width; on the half-size grid it has 4x the channels and
  a quarter of the pixels, and ran about 3x faster (348 -> 118 ms on 2 CPU cores; README, Performance).
  A resize-convolution SRResNet (`upsample="bilinear"`) has no last shuffle, so only its batch norms fold.

The weights of the original model are left untouched.

`to_bf16(model)` is not exact: it is the form in which a CPU with native bf16 (AVX512-BF16, AMX) runs a
model, and `ganzoo.quality_gate` decides per model whether its results are close enough to fp32.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ganzoo.models.srgan import SRResNet

__all__ = ["fold_batch_norms", "for_inference", "output_conv", "subpixel_conv", "to_bf16"]


def for_inference(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` with the rewrites above applied where its layers allow them."""
    model = fold_batch_norms(copy.deepcopy(model).eval())
    if isinstance(model, SRResNet):
        _move_tail_before_last_shuffle(model)
    return model


def to_bf16(model: nn.Module) -> nn.Module:
    """A copy of `model` that computes in bf16 except its output convolution, which stays fp32.

    The weights are cast once (autocast would cast them on every call, and it runs reflection padding in
    fp32, so the style and deblurring networks would convert every activation twice). Each convolution
    casts its input to its own weights' dtype, so the model still takes fp32 images; what reads the input
    outside a convolution (DeblurGAN's global skip) keeps reading it in fp32. The output convolution stays
    fp32 because bf16 has 8 significant bits: its rounding of values near 1 alone (up to 2^-9) is half an
    8-bit grey level.
    """
    model = copy.deepcopy(model).eval().to(torch.bfloat16)
    output_conv(model).float()
    for conv in model.modules():
        if isinstance(conv, nn.Conv2d):
            conv.register_forward_pre_hook(_cast_input_to_weight)
    return model


def output_conv(model: nn.Module) -> nn.Conv2d:
    """The convolution that makes the image: the last one registered (true of every ganzoo image model)."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no convolution")
    return convs[-1]


def _cast_input_to_weight(conv: nn.Conv2d, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return (args[0].to(conv.weight.dtype), *args[1:])


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Fold each eval-mode BatchNorm2d into the Conv2d just before it in the same `nn.Sequential` (in place)."""
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            conv, norm = module[i], module[i + 1]
            if (isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d) and not norm.training
                    and norm.track_running_stats and conv.out_channels == norm.num_features):
                module[i] = fuse_conv_bn_eval(conv, norm)
                module[i + 1] = nn.Identity()
    return model


def subpixel_conv(conv: nn.Conv2d, factor: int) -> nn.Conv2d:
    """The convolution on the low-resolution grid that equals `conv` applied after `PixelShuffle(factor)`.

    conv(pixel_shuffle(x)) == pixel_shuffle(subpixel_conv(conv, factor)(x)) for stride-1, zero-padded,
    odd square kernels with 'same' padding. Output pixel (factor*i + a) reads input pixels
    factor*i + a + d for |d| <= k//2; on the low-resolution grid those are at offsets floor((a + d) / factor),
    with the phase (a + d) mod factor selecting the input channel.
    """
    k = conv.kernel_size[0]
    if (conv.kernel_size != (k, k) or k % 2 == 0 or conv.stride != (1, 1) or conv.dilation != (1, 1)
            or conv.groups != 1 or conv.padding != (k // 2, k // 2) or conv.padding_mode != "zeros"):
        raise ValueError(f"subpixel_conv needs a stride-1, zero-padded, odd square 'same' convolution, got {conv}")
    half, r = k // 2, factor
    low, high = -((half + r - 1) // r), (half + r - 1) // r  # low-res tap offsets: floor(-half/r)..floor((r-1+half)/r)
    taps = high - low + 1
    weight = conv.weight.detach()
    out_c, in_c = conv.out_channels, conv.in_channels
    # new[o, a, b, c, p, q, u, v] = weight[o, c, dy, dx] with dy = r*(low+u) + p - a, dx likewise.
    new = weight.new_zeros(out_c, r, r, in_c, r, r, taps, taps)
    for a in range(r):
        for p in range(r):
            for u in range(taps):
                dy = r * (low + u) + p - a
                if abs(dy) > half:
                    continue
                for b in range(r):
                    for q in range(r):
                        for v in range(taps):
                            dx = r * (low + v) + q - b
                            if abs(dx) <= half:
                                new[:, a, b, :, p, q, u, v] = weight[:, :, dy + half, dx + half]
    result = nn.Conv2d(in_c * r * r, out_c * r * r, taps, padding=-low, bias=conv.bias is not None)
    result = result.to(device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        result.weight.copy_(new.reshape(out_c * r * r, in_c * r * r, taps, taps))
        if conv.bias is not None:
            result.bias.copy_(conv.bias.repeat_interleave(r * r))
    return result


def _prelu_before_shuffle(prelu: nn.PReLU, factor: int) -> nn.PReLU:
    """The PReLU on the channels before PixelShuffle(factor) that equals `prelu` after it."""
    if prelu.num_parameters == 1:
        return prelu
    moved = nn.PReLU(prelu.num_parameters * factor * factor).to(prelu.weight)
    with torch.no_grad():
        moved.weight.copy_(prelu.weight.repeat_interleave(factor * factor))
    return moved


def _move_tail_before_last_shuffle(model: nn.Module) -> None:
    """SRResNet: [... conv, PixelShuffle(r), PReLU] + tail  ->  [... conv, PReLU'] + [tail', PixelShuffle(r)]."""
    *rest, shuffle, prelu = model.upsample
    if not (isinstance(shuffle, nn.PixelShuffle) and isinstance(prelu, nn.PReLU)):
        return
    factor = shuffle.upscale_factor
    model.upsample = nn.Sequential(*rest, _prelu_before_shuffle(prelu, factor))
    model.tail = nn.Sequential(subpixel_conv(model.tail, factor), nn.PixelShuffle(factor))
