"""Exact rewrites that make a trained model cheaper to run, for inference only.

`for_inference(model)` returns a copy that computes the same function (to float rounding):

- every Conv2d followed by a BatchNorm2d inside an `nn.Sequential` becomes one convolution with the
  batch-norm statistics folded into its weights (`torch.nn.utils.fusion.fuse_conv_bn_eval`);
- SRResNet's last step, PixelShuffle -> PReLU -> 9x9 conv to 3 channels on the full-size image, becomes
  PReLU -> 5x5 conv to 12 channels on the half-size grid -> PixelShuffle. A convolution with only three
  output channels wastes most of a CPU's vector width; on the half-size grid it has 4x the channels and
  a quarter of the pixels, and ran about 3x faster (348 -> 118 ms on 2 CPU cores; README, Performance).
- A resize-convolution SRResNet (`upsample="bilinear"`, the bundled one) has no last shuffle, so its last
  x2 bilinear upsampling, 3x3 conv, PReLU and tail become `ResizeConvTail`: one 3x3 conv from the half-size
  grid to the 2x2 output phases, PReLU, the tail's `subpixel_conv` on that grid, PixelShuffle. The full-size
  feature map is never made (docs/performance.md, "Exact rewrites", has the times).
- The U-Net's `LayerNorm2d` (mean, variance and affine over each pixel's channels in eight elementwise
  passes) becomes `PixelLayerNorm`: `F.layer_norm` over the last dimension of the channels-last view, one
  fused pass (with fp32 statistics in bf16).

The weights of the original model are left untouched.

`to_bf16(model)` is not exact: it is the form in which a CPU with native bf16 (AVX512-BF16, AMX) runs a
model, and `ganzoo.quality_gate` decides per model whether its results are close enough to fp32.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ganzoo.models.deblur_unet import LayerNorm2d
from ganzoo.models.srgan import SRResNet

__all__ = ["PixelLayerNorm", "ResizeConvTail", "fold_batch_norms", "for_inference", "subpixel_conv", "to_bf16"]


def for_inference(model: nn.Module, resize_conv_tail: bool = True) -> nn.Module:
    """An eval-mode copy of `model` with the rewrites above applied where its layers allow them.

    `resize_conv_tail=False` leaves out `ResizeConvTail`, whose writes into the outermost ring sit at
    size-dependent positions that an ONNX trace would fix to its example's size (`export.export_onnx`).
    """
    model = fold_batch_norms(copy.deepcopy(model).eval())
    _replace_modules(model, LayerNorm2d, PixelLayerNorm)
    if isinstance(model, SRResNet):
        _move_tail_before_last_shuffle(model)
        if resize_conv_tail:
            _resize_conv_tail_on_low_grid(model)
    return model


def to_bf16(model: nn.Module) -> nn.Module:
    """A copy of `model` that computes in bf16, taking and returning fp32 images.

    The weights are cast once (autocast would cast them on every call, and it runs reflection padding in
    fp32, so the style and deblurring networks would convert every activation twice). Each convolution
    casts its input to its own weights' dtype, so the model still takes fp32 images; what reads the input
    outside a convolution (DeblurGAN's global skip) keeps reading it in fp32.

    The output convolution is bf16 too. Keeping it in fp32 spares the image bf16's last rounding (up to
    2^-9 of values near 1), but on a native-bf16 CPU it cost srresnet-x4 a fifth of its time for a few
    thousandths of a dB (docs/performance.md, "bf16 on the CPU").
    """
    model = copy.deepcopy(model).eval().to(torch.bfloat16)
    for conv in model.modules():
        if isinstance(conv, nn.Conv2d):
            conv.register_forward_pre_hook(_cast_input_to_weight)
    model.register_forward_hook(_output_to_fp32)
    return model


def _output_to_fp32(model: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    return output.float()


def _cast_input_to_weight(conv: nn.Conv2d, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return (args[0].to(conv.weight.dtype), *args[1:])


class PixelLayerNorm(LayerNorm2d):
    """`LayerNorm2d` as one `F.layer_norm` over the channels, the innermost dimension of a channels-last map
    (an NCHW input is copied into that layout first). The output is channels-last."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return pixels.permute(0, 3, 1, 2)


def _replace_modules(model: nn.Module, old: type[nn.Module], new: type[nn.Module]) -> None:
    """Give every `old` module in `model` the class `new`, a subclass or parent with the same parameters (in place)."""
    for module in model.modules():
        if type(module) is old:
            module.__class__ = new


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


# up[2i + t] = sum_u _BILINEAR_X2[t + 1][u + 1] * z[i + u] for t in -1..2, u in -1..1: nn.Upsample(scale_factor=2,
# mode="bilinear", align_corners=False) in one dimension, exact everywhere once z is padded by replication.
_BILINEAR_X2 = torch.tensor([[0.75, 0.25, 0.0], [0.25, 0.75, 0.0], [0.0, 0.75, 0.25], [0.0, 0.25, 0.75]])


class ResizeConvTail(nn.Module):
    """SRResNet's last resize-convolution step and tail, [x2 bilinear, 3x3 conv, PReLU] + 9x9 conv to 3 channels,
    computed on the grid of its input, with the full-size image appearing only at the final PixelShuffle(2).

    The upsampling is linear, so upsample -> 3x3 conv is one 3x3 conv from the replication-padded input to the
    2x2 output phases (`subpixel_upsample_conv`); the PReLU acts on each pixel alike; and the tail on the
    half-size grid is `subpixel_conv(tail, 2)`. No full-size feature map is upsampled, unshuffled or read
    by a 3-channel convolution (the shapes a CPU runs slowest). The one difference is the outermost ring of
    full-size pixels, where the original conv reads its zero padding and the phases read the upsampling's
    replication: those four rows and columns are recomputed the original way from the input's two outermost
    rows and columns.
    """

    def __init__(self, upsample: nn.Upsample, conv: nn.Conv2d, prelu: nn.PReLU, tail: nn.Conv2d) -> None:
        super().__init__()
        if not (upsample.scale_factor in (2, 2.0, (2.0, 2.0)) and upsample.mode == "bilinear"
                and not upsample.align_corners):
            raise ValueError(f"ResizeConvTail needs a x2 bilinear upsampling (align_corners=False), got {upsample}")
        if (conv.kernel_size != (3, 3) or conv.padding != (1, 1) or conv.padding_mode != "zeros" or conv.groups != 1
                or conv.stride != (1, 1) or conv.dilation != (1, 1)):
            raise ValueError(f"ResizeConvTail needs a stride-1, zero-padded 3x3 'same' convolution, got {conv}")
        self.upsample, self.conv = upsample, conv  # the original step, for the outermost ring
        self.phases = subpixel_upsample_conv(conv)
        self.prelu = _prelu_before_shuffle(prelu, 2)
        self.tail = subpixel_conv(tail, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n, _, height, width = z.shape
        if height < 2 or width < 2:  # no ring to recompute from: the original step, then its phases
            phases = F.pixel_unshuffle(self.conv(self.upsample(z)), 2)
            return F.pixel_shuffle(self.tail(self.prelu(phases)), 2)
        phases = self.phases(F.pad(z, (1, 1, 1, 1), mode="replicate"))
        grid = phases.view(n, -1, 2, 2, height, width)  # [n, c, row phase, column phase, i, j]
        top, bottom = self._ring_rows(z[..., :2, :], first=True), self._ring_rows(z[..., -2:, :], first=False)
        grid[:, :, 0, :, 0, :] = top.unflatten(-1, (width, 2)).transpose(-1, -2)
        grid[:, :, 1, :, -1, :] = bottom.unflatten(-1, (width, 2)).transpose(-1, -2)
        left = self._ring_rows(z[..., :2].transpose(-1, -2), first=True, transposed=True)
        right = self._ring_rows(z[..., -2:].transpose(-1, -2), first=False, transposed=True)
        grid[:, :, :, 0, :, 0] = left.unflatten(-1, (height, 2)).transpose(-1, -2)
        grid[:, :, :, 1, :, -1] = right.unflatten(-1, (height, 2)).transpose(-1, -2)
        return F.pixel_shuffle(self.tail(self.prelu(phases)), 2)

    def _ring_rows(self, rows: torch.Tensor, first: bool, transposed: bool = False) -> torch.Tensor:
        """The original conv's output on the first (or last) full-size row of a two-row strip of the input,
        [n, c, full width]; with `transposed`, of columns given as rows."""
        up = self.upsample(rows)  # 4 rows: the outer two are exact (the strip's far edge is not the image's)
        up = up[..., :2, :] if first else up[..., -2:, :]
        pad = (1, 1, 1, 0) if first else (1, 1, 0, 1)
        weight = self.conv.weight.transpose(-1, -2) if transposed else self.conv.weight
        out = F.conv2d(F.pad(up, pad), weight, self.conv.bias)
        return out[..., 0, :]


def subpixel_upsample_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """The 3x3 convolution from the replication-padded input to the 2x2 output phases (channel 4c + 2a + b
    for output channel c, row phase a, column phase b: PixelShuffle(2)'s order) that equals `conv` after x2
    bilinear upsampling (align_corners=False), away from the outermost ring of output pixels.

    Phase a at low-resolution row i reads up[2i + a + dy] for the conv's row offsets dy in -1..1, and each of
    those is a 3-tap stencil of z (`_BILINEAR_X2`), so the composite has 3x3 taps on the low-resolution grid.
    """
    weight = conv.weight.detach()
    stencil = _BILINEAR_X2.to(weight)
    rows = torch.stack([stencil[a:a + 3] for a in range(2)])  # [phase a, dy, u]: up[2i+a+dy] from z[i+u]
    # new[o, a, b, c, u, v] = sum_{dy, dx} weight[o, c, dy, dx] * rows[a, dy, u] * rows[b, dx, v]
    new = torch.einsum("ocyx,ayu,bxv->oabcuv", weight, rows, rows)
    out_c, in_c = conv.out_channels, conv.in_channels
    result = nn.Conv2d(in_c, out_c * 4, 3, bias=conv.bias is not None).to(weight)
    with torch.no_grad():
        result.weight.copy_(new.reshape(out_c * 4, in_c, 3, 3))
        if conv.bias is not None:
            result.bias.copy_(conv.bias.repeat_interleave(4))
    return result


def _prelu_before_shuffle(prelu: nn.PReLU, factor: int) -> nn.PReLU:
    """The PReLU on the channels before PixelShuffle(factor) that equals `prelu` after it."""
    if prelu.num_parameters == 1:
        return prelu
    moved = nn.PReLU(prelu.num_parameters * factor * factor).to(prelu.weight)
    with torch.no_grad():
        moved.weight.copy_(prelu.weight.repeat_interleave(factor * factor))
    return moved


def _resize_conv_tail_on_low_grid(model: SRResNet) -> None:
    """Resize-convolution SRResNet: [... Upsample, conv, PReLU] + tail  ->  [...] + ResizeConvTail."""
    if len(model.upsample) < 3 or not isinstance(model.tail, nn.Conv2d):
        return
    *rest, upsample, conv, prelu = model.upsample
    if not (isinstance(upsample, nn.Upsample) and isinstance(conv, nn.Conv2d) and isinstance(prelu, nn.PReLU)):
        return
    model.upsample = nn.Sequential(*rest)
    model.tail = ResizeConvTail(upsample, conv, prelu, model.tail)


def _move_tail_before_last_shuffle(model: nn.Module) -> None:
    """SRResNet: [... conv, PixelShuffle(r), PReLU] + tail  ->  [... conv, PReLU'] + [tail', PixelShuffle(r)]."""
    *rest, shuffle, prelu = model.upsample
    if not (isinstance(shuffle, nn.PixelShuffle) and isinstance(prelu, nn.PReLU)):
        return
    factor = shuffle.upscale_factor
    model.upsample = nn.Sequential(*rest, _prelu_before_shuffle(prelu, factor))
    model.tail = nn.Sequential(subpixel_conv(model.tail, factor), nn.PixelShuffle(factor))
