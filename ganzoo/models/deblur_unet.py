"""Deblurring U-Net of NAFNet blocks (Chen et al. 2022, "Simple Baselines for Image Restoration").

A 75 px camera-shake kernel spreads each point over 75 px, so the network must see several times that:
four stride-2 levels make a 3x3 depthwise conv at the bottom span 16 px per tap, and each block's
simplified channel attention pools its whole feature map, so the receptive field is the whole image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.hub import GanzooModel, ModelLoadError, check_range, hub_kwargs


class LayerNorm2d(nn.Module):
    """Layer norm over the channels of each pixel of an [N, C, H, W] map (NAFNet's normalisation)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them: NAFNet's replacement for the activation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class NAFBlock(nn.Module):
    """Norm, 1x1 expand, 3x3 depthwise, gate, channel attention, 1x1; then a gated 1x1 feed-forward.
    Both halves are residual with learnable per-channel scales that start at 0 (the block starts as identity)."""

    def __init__(self, channels: int, expand: int = 2) -> None:
        super().__init__()
        hidden = channels * expand
        self.norm1 = LayerNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.gate = SimpleGate()
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(hidden // 2, hidden // 2, 1))
        self.conv2 = nn.Conv2d(hidden // 2, channels, 1)
        self.norm2 = LayerNorm2d(channels)
        self.ffn1 = nn.Conv2d(channels, hidden, 1)
        self.ffn2 = nn.Conv2d(hidden // 2, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gate(self.dwconv(self.conv1(self.norm1(x))))
        y = self.conv2(y * self.attention(y))
        x = x + self.beta * y
        y = self.ffn2(self.gate(self.ffn1(self.norm2(x))))
        return x + self.gamma * y


class DeblurUNet(GanzooModel, **hub_kwargs(pipeline_tag="image-to-image", tags=["deblurring", "nafnet", "unet"])):
    """Multi-scale encoder-decoder of NAFNet blocks that predicts the residual added to the blurred input.

    `encoder_blocks[i]` blocks run at 1/2^i resolution with `channels * 2^i` channels before each stride-2
    downsampling; `middle_blocks` at the bottom; `decoder_blocks[i]` after each x2 upsampling (pixel
    shuffle) and the skip addition. Takes a blurred RGB image in [0, 1] of any size and returns the
    sharp estimate, same size (inputs are padded to a multiple of 2^levels and cropped back).
    """

    legacy_config_keys = {"width": "channels"}

    def __init__(self, channels: int = 16, encoder_blocks: list[int] = [1, 1, 2, 4], middle_blocks: int = 4,  # noqa: B006
                 decoder_blocks: list[int] = [1, 1, 1, 1]) -> None:  # noqa: B006 (lists: the Hub config is JSON)
        check_range("channels", channels, 1, 256)
        check_range("middle_blocks", middle_blocks, 0, 64)
        if not 1 <= len(encoder_blocks) <= 6 or len(decoder_blocks) != len(encoder_blocks):
            raise ModelLoadError(f"encoder_blocks and decoder_blocks need the same length, 1 to 6 "
                                 f"(got {encoder_blocks} and {decoder_blocks})")
        for i, n in enumerate([*encoder_blocks, *decoder_blocks]):
            check_range(f"blocks[{i}]", n, 0, 64)
        super().__init__()
        self.levels = len(encoder_blocks)
        self.intro = nn.Conv2d(3, channels, 3, padding=1)
        self.encoders, self.downs, self.ups, self.decoders = (nn.ModuleList() for _ in range(4))
        c = channels
        for n in encoder_blocks:
            self.encoders.append(nn.Sequential(*[NAFBlock(c) for _ in range(n)]))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = nn.Sequential(*[NAFBlock(c) for _ in range(middle_blocks)])
        for n in reversed(decoder_blocks):
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(c) for _ in range(n)]))
        self.ending = nn.Conv2d(channels, 3, 3, padding=1)

    def residual(self, blurred: torch.Tensor) -> torch.Tensor:
        """The correction the network adds to the input (sides must be multiples of 2^levels)."""
        x = self.intro(blurred * 2 - 1)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle(x)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips)):
            x = decoder(up(x) + skip)
        return self.ending(x)

    def forward(self, blurred: torch.Tensor) -> torch.Tensor:
        height, width = blurred.shape[-2:]
        multiple = 2 ** self.levels
        pad_h, pad_w = -height % multiple, -width % multiple
        # Replicate, not reflect: reflection needs the pad smaller than the side, which tiny inputs are not.
        padded = F.pad(blurred, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else blurred
        return torch.clamp(blurred + self.residual(padded)[..., :height, :width], 0, 1)
