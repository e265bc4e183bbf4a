"""Super-resolution: the SRResNet generator and the SRGAN discriminator (Ledig et al. 2017)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ganzoo.hub import GanzooModel, check_choice, check_range, hub_kwargs


class ResidualBlock(nn.Module):
    """conv-BN-PReLU-conv-BN with an identity skip (SRResNet's building block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.PReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def icnr_(weight: torch.Tensor, factor: int) -> torch.Tensor:
    """ICNR initialisation (Aitken et al. 2017) of a conv followed by PixelShuffle(`factor`), in place.

    Each group of `factor`**2 output channels that PixelShuffle spreads over one factor x factor block gets
    the same (Kaiming-initialised) filter, so at initialisation conv + shuffle equals a conv with
    `factor`**2 times fewer outputs followed by nearest-neighbour upsampling: no checkerboard to unlearn.
    """
    out_channels = weight.shape[0]
    if out_channels % factor**2:
        raise ValueError(f"{out_channels} output channels do not split into groups of {factor}**2")
    sub = torch.empty(out_channels // factor**2, *weight.shape[1:], dtype=weight.dtype, device=weight.device)
    nn.init.kaiming_uniform_(sub, a=5**0.5)  # nn.Conv2d's default init, on the smaller conv
    with torch.no_grad():
        return weight.copy_(sub.repeat_interleave(factor**2, dim=0))


SR_UPSAMPLE_MODES = ("pixelshuffle", "bilinear")


def _upsample_step(channels: int, mode: str) -> list[nn.Module]:
    """One x2 step of SRResNet's upsampler (see `SRResNet`)."""
    if mode == "bilinear":
        return [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(channels, channels, 3, padding=1), nn.PReLU()]
    return [nn.Conv2d(channels, 4 * channels, 3, padding=1), nn.PixelShuffle(2), nn.PReLU()]


class SRResNet(GanzooModel, **hub_kwargs(pipeline_tag="image-to-image",
                                         tags=["super-resolution", "srresnet", "srgan"])):
    """SRResNet: 9x9 head, residual blocks, global skip, x2 upsampling steps, 9x9 tail.

    Takes a low-resolution RGB image in [0, 1] and returns it `scale` times larger. Each x2 step is
    `upsample="pixelshuffle"` (the paper's sub-pixel convolution, ICNR-initialised: a conv to 4x the
    channels, then PixelShuffle) or `"bilinear"` (resize-convolution, Odena et al. 2016: bilinear x2, then
    a conv on the larger grid). Sub-pixel convolution computes each of the 2x2 output phases with its own
    filters, and a trained one leaves a faint period-2/4 lattice; resize-convolution treats every output
    pixel alike, so it has none by construction (issue 16).
    """

    def __init__(self, scale: int = 4, num_blocks: int = 16, channels: int = 64,
                 upsample: str = "pixelshuffle") -> None:
        check_choice("scale", scale, (2, 4, 8))
        check_range("num_blocks", num_blocks, 1, 64)
        check_range("channels", channels, 1, 512)
        check_choice("upsample", upsample, SR_UPSAMPLE_MODES)
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(3, channels, 9, padding=4), nn.PReLU())
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(num_blocks)])
        self.body_tail = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))
        self.upsample = nn.Sequential(*[
            layer for _ in range(int(math.log2(scale))) for layer in _upsample_step(channels, upsample)])
        self.tail = nn.Conv2d(channels, 3, 9, padding=4)
        if upsample == "pixelshuffle":
            for layer in self.upsample:
                if isinstance(layer, nn.Conv2d):
                    icnr_(layer.weight, 2)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        head = self.head(lr * 2 - 1)
        features = head + self.body_tail(self.blocks(head))
        return (self.tail(self.upsample(features)) + 1) / 2


class SRGANDiscriminator(GanzooModel, **hub_kwargs(pipeline_tag="image-classification",
                                                   tags=["super-resolution", "srgan", "discriminator"])):
    """Eight 3x3 conv layers (LeakyReLU, BN), then a dense head; adaptive pooling accepts any crop size."""

    def __init__(self, channels: int = 64) -> None:
        check_range("channels", channels, 1, 512)
        super().__init__()
        widths = [channels, channels, 2 * channels, 2 * channels, 4 * channels, 4 * channels,
                  8 * channels, 8 * channels]
        layers: list[nn.Module] = []
        in_channels = 3
        for i, width in enumerate(widths):
            layers.append(nn.Sequential(
                nn.Conv2d(in_channels, width, 3, stride=1 + i % 2, padding=1),
                nn.Identity() if i == 0 else nn.BatchNorm2d(width),
                nn.LeakyReLU(0.2, True)))
            in_channels = width
        self.convs = nn.ModuleList(layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(6), nn.Flatten(),
            nn.Linear(in_channels * 36, 1024), nn.LeakyReLU(0.2, True), nn.Linear(1024, 1))

    def forward(self, images: torch.Tensor, return_features: bool = False):
        """Real/fake logit per image; with `return_features`, also each conv layer's output
        (for the discriminator feature-matching content loss)."""
        h, features = images * 2 - 1, []
        for conv in self.convs:
            h = conv(h)
            features.append(h)
        logit = self.head(h).squeeze(1)
        return (logit, features) if return_features else logit
