"""MNIST digits: a class-conditional DCGAN and the classifier that scores it.

Every ganzoo model takes and returns images in [0, 1]; the [-1, 1] range the
GAN works in internally stays inside these modules.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.hub import GanzooModel, check_range, hub_kwargs

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class DigitGenerator(GanzooModel, **hub_kwargs(pipeline_tag="unconditional-image-generation",
                                               tags=["mnist", "dcgan", "conditional"])):
    """DCGAN generator for 28x28 digits: (noise, class) -> image in [0, 1]."""

    legacy_config_keys = {"base_channels": "channels"}

    def __init__(self, latent_dim: int = 100, num_classes: int = 10, channels: int = 64) -> None:
        check_range("latent_dim", latent_dim, 1, 4096)
        check_range("num_classes", num_classes, 1, 1000)
        check_range("channels", channels, 1, 1024)
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        c = channels
        self.project = nn.Sequential(
            nn.Linear(latent_dim + num_classes, 4 * c * 7 * 7, bias=False), nn.BatchNorm1d(4 * c * 7 * 7), nn.ReLU(True))
        # nearest upsampling + conv instead of transposed conv: no checkerboard artefacts
        self.upsample = nn.Sequential(
            nn.Upsample(scale_factor=2), nn.Conv2d(4 * c, 2 * c, 3, 1, 1, bias=False),
            nn.BatchNorm2d(2 * c), nn.ReLU(True),  # 14x14
            nn.Upsample(scale_factor=2), nn.Conv2d(2 * c, c, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c), nn.ReLU(True),  # 28x28
            nn.Conv2d(c, 1, 3, 1, 1), nn.Tanh())
        self._channels = c

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.project(torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1))
        h = h.view(z.shape[0], 4 * self._channels, 7, 7)
        return (self.upsample(h) + 1) / 2

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """Digits of the given classes; the same seed always gives the same images."""
        z = latent_noise(len(labels), self.latent_dim, seed)
        device = next(self.parameters()).device
        return self(z.to(device), labels.to(device))


def latent_noise(n: int, latent_dim: int, seed: int) -> torch.Tensor:
    """Noise drawn on the CPU from a seeded generator, so a seed means the same digits everywhere."""
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))


class DigitDiscriminator(GanzooModel, **hub_kwargs(pipeline_tag="image-classification",
                                                   tags=["mnist", "dcgan", "discriminator"])):
    """Conditional DCGAN discriminator with spectral norm: (image, class) -> real logit.

    The class enters as one-hot planes stacked on the image (the classic cGAN recipe)."""

    legacy_config_keys = {"base_channels": "channels"}

    def __init__(self, num_classes: int = 10, channels: int = 64) -> None:
        check_range("num_classes", num_classes, 1, 1000)
        check_range("channels", channels, 1, 1024)
        super().__init__()
        self.num_classes = num_classes
        c = channels
        sn = nn.utils.parametrizations.spectral_norm
        self.net = nn.Sequential(
            sn(nn.Conv2d(1 + num_classes, c, 4, 2, 1)), nn.LeakyReLU(0.2, True),  # 14x14
            sn(nn.Conv2d(c, 2 * c, 4, 2, 1)), nn.LeakyReLU(0.2, True),  # 7x7
            sn(nn.Conv2d(2 * c, 4 * c, 3, 2, 1)), nn.LeakyReLU(0.2, True),  # 4x4
            nn.Flatten(), sn(nn.Linear(4 * c * 16, 1)))

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        planes = F.one_hot(labels, self.num_classes).to(images.dtype)[:, :, None, None]
        planes = planes.expand(-1, -1, *images.shape[-2:])
        return self.net(torch.cat([images * 2 - 1, planes], dim=1)).squeeze(1)


class DigitClassifier(GanzooModel, **hub_kwargs(pipeline_tag="image-classification",
                                                tags=["mnist", "classifier"])):
    """Small CNN for 28x28 digits; its penultimate features are the space the digit FID is measured in."""

    legacy_config_keys = {"base_channels": "channels"}

    def __init__(self, num_classes: int = 10, channels: int = 32, feature_dim: int = 128) -> None:
        check_range("num_classes", num_classes, 1, 1000)
        check_range("channels", channels, 1, 1024)
        check_range("feature_dim", feature_dim, 1, 65536)
        super().__init__()
        c = channels

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]

        self.body = nn.Sequential(
            *block(1, c), *block(c, c), nn.MaxPool2d(2),  # 14x14
            *block(c, 2 * c), *block(2 * c, 2 * c), nn.MaxPool2d(2),  # 7x7
            nn.Flatten(), nn.Dropout(0.25),
            nn.Linear(2 * c * 49, feature_dim), nn.ReLU(True))
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(feature_dim, num_classes))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body((images - MNIST_MEAN) / MNIST_STD)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
