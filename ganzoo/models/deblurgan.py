"""Deblurring: the DeblurGAN ResNet generator and the PatchGAN critic (Kupyn et al. 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.hub import GanzooModel, check_range, hub_kwargs

MIN_SIZE = 8  # the 3x3 reflection pads in the residual blocks need at least 2x2 at 1/4 resolution


def _conv_norm_relu(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    # Zero padding for the strided convs as in pix2pix; reflection elsewhere to avoid border artefacts.
    pad = kernel // 2
    conv = (nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=pad, bias=False) if stride > 1
            else nn.Sequential(nn.ReflectionPad2d(pad), nn.Conv2d(in_channels, out_channels, kernel, bias=False)))
    # No conv bias: the (non-affine) instance norm removes any per-channel constant anyway.
    return [conv, nn.InstanceNorm2d(out_channels), nn.ReLU(True)]


class DeblurResidualBlock(nn.Module):
    """reflect-pad, conv3x3, IN, ReLU, dropout, reflect-pad, conv3x3, IN, with an identity skip."""

    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_norm_relu(channels, channels, 3), nn.Dropout(dropout),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False), nn.InstanceNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DeblurGANGenerator(GanzooModel, **hub_kwargs(pipeline_tag="image-to-image", tags=["deblurring", "deblurgan"])):
    """DeblurGAN generator: 7x7 head, two stride-2 downsamplings, residual blocks, two x2 upsamplings,
    7x7 tail and tanh, added to the input (the network learns the residual).

    Takes a blurred RGB image in [0, 1] of any size from 8x8 up and returns the sharp estimate, same size.
    `dropout` is 0.5 in the paper; the default 0 makes the model deterministic in training too.
    """

    def __init__(self, channels: int = 64, num_blocks: int = 9, dropout: float = 0.0) -> None:
        check_range("channels", channels, 1, 256)
        check_range("num_blocks", num_blocks, 1, 64)
        check_range("dropout", dropout, 0.0, 0.9, integer=False)
        super().__init__()
        self.head = nn.Sequential(*_conv_norm_relu(3, channels, 7))
        self.down = nn.Sequential(*_conv_norm_relu(channels, 2 * channels, 3, stride=2),
                                  *_conv_norm_relu(2 * channels, 4 * channels, 3, stride=2))
        self.blocks = nn.Sequential(*[DeblurResidualBlock(4 * channels, dropout) for _ in range(num_blocks)])
        # The paper upsamples with transposed convs; nearest upsampling + conv avoids their checkerboard
        # artefacts (Odena et al. 2016) at the same cost.
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), *_conv_norm_relu(4 * channels, 2 * channels, 3),
            nn.Upsample(scale_factor=2, mode="nearest"), *_conv_norm_relu(2 * channels, channels, 3))
        self.tail = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(channels, 3, 7))
        # A zero last layer makes the untrained network the identity (residual 0), so training starts
        # from the blurred input's score instead of from noise.
        nn.init.zeros_(self.tail[1].weight)
        nn.init.zeros_(self.tail[1].bias)

    def residual(self, blurred: torch.Tensor) -> torch.Tensor:
        """The correction in [-1, 1] that the network adds to the input (sizes must be multiples of 4)."""
        h = self.up(self.blocks(self.down(self.head(blurred * 2 - 1))))
        return torch.tanh(self.tail(h))

    def forward(self, blurred: torch.Tensor) -> torch.Tensor:
        height, width = blurred.shape[-2:]
        if height < MIN_SIZE or width < MIN_SIZE:
            raise ValueError(f"DeblurGANGenerator needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels, "
                             f"got {height}x{width}")
        # Two stride-2 steps: pad to a multiple of 4 so that the upsampled map lines up with the input.
        pad_h, pad_w = -height % 4, -width % 4
        padded = F.pad(blurred, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else blurred
        residual = self.residual(padded)[..., :height, :width]
        return torch.clamp(blurred + residual, 0, 1)


class PatchGANCritic(GanzooModel, **hub_kwargs(pipeline_tag="image-classification",
                                               tags=["deblurring", "deblurgan", "discriminator"])):
    """The pix2pix PatchGAN (70x70 receptive field with the default 3 layers) as a WGAN-GP critic.

    Returns an unbounded score per patch, [N, 1, h, w]. Instance norm instead of batch norm: the
    gradient penalty is per sample, which batch norm would break (Gulrajani et al. 2017).
    """

    def __init__(self, channels: int = 64, num_layers: int = 3) -> None:
        check_range("channels", channels, 1, 256)
        check_range("num_layers", num_layers, 1, 5)
        super().__init__()
        self.num_layers = num_layers
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        width = channels
        for n in range(1, num_layers + 1):
            out = channels * min(2 ** n, 8)
            stride = 2 if n < num_layers else 1
            # Affine instance norm: the learnable per-channel gain WGAN-GP's layer norm would have.
            layers += [nn.Conv2d(width, out, 4, stride=stride, padding=1, bias=False),
                       nn.InstanceNorm2d(out, affine=True), nn.LeakyReLU(0.2, True)]
            width = out
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.layers = nn.Sequential(*layers)

    @property
    def min_size(self) -> int:
        """Smallest input side: `num_layers` halvings, then two 4x4 stride-1 convs that each trim one pixel."""
        return 3 * 2 ** self.num_layers

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        if height < self.min_size or width < self.min_size:
            raise ValueError(f"PatchGANCritic with {self.num_layers} layers needs images of at least "
                             f"{self.min_size}x{self.min_size} pixels, got {height}x{width}")
        return self.layers(images * 2 - 1)
