"""A noise-level-conditional Gaussian denoiser (FFDNet, Zhang et al. 2018), the learned image prior of
plug-and-play deconvolution (DPIR, Zhang et al. 2021; `ganzoo.deconvolution`, method "pnp").

Plug-and-play replaces the prior's proximal step by "denoise at level sigma_k", with sigma_k falling from
~50/255 to the image's noise, so the network takes the level as an input: a constant map beside the image.
As in FFDNet, the image is first folded into four half-resolution sub-images (pixel unshuffle), which
doubles the receptive field for the same work; the body predicts the noise, which is subtracted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.hub import GanzooModel, check_range, hub_kwargs

#: the largest noise level (std on [0, 1]) the denoiser is trained for; the level map is sigma / this
SIGMA_MAX = 50.0 / 255.0


class Denoiser(GanzooModel, **hub_kwargs(pipeline_tag="image-to-image", tags=["denoising", "ffdnet", "prior"])):
    """`layers` 3x3 convolutions of `channels` channels (ReLU between) on the pixel-unshuffled RGB image plus
    a noise-level map. `forward(noisy, sigma)`: noisy RGB [N,3,H,W] on [0, 1] (any size), sigma the noise std
    on [0, 1] (a number or [N]); returns the denoised image, same size."""

    def __init__(self, channels: int = 64, layers: int = 8) -> None:
        check_range("channels", channels, 4, 256)
        check_range("layers", layers, 2, 32)
        super().__init__()
        body: list[nn.Module] = [nn.Conv2d(4 * 3 + 1, channels, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(layers - 2):
            body += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
        body.append(nn.Conv2d(channels, 4 * 3, 3, padding=1))
        self.body = nn.Sequential(*body)

    def forward(self, noisy: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        if noisy.dim() != 4 or noisy.shape[1] != 3:
            raise ValueError(f"expected an RGB batch [N,3,H,W], got {list(noisy.shape)}")
        n, _, height, width = noisy.shape
        sigma = torch.as_tensor(sigma, dtype=noisy.dtype, device=noisy.device).reshape(-1)
        if sigma.numel() not in (1, n) or not torch.isfinite(sigma).all() or (sigma < 0).any():
            raise ValueError(f"sigma must be one non-negative level or one per image, got {sigma.tolist()}")
        padded = F.pad(noisy, (0, width % 2, 0, height % 2), mode="replicate")
        folded = F.pixel_unshuffle(padded, 2)
        level = (sigma / SIGMA_MAX).view(-1, 1, 1, 1).expand(n, 1, *folded.shape[-2:])
        noise = F.pixel_shuffle(self.body(torch.cat([folded, level], 1)), 2)
        return (padded - noise)[..., :height, :width]
