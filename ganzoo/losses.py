"""Losses shared by the families: adversarial (non-saturating BCE, WGAN-GP) and pixel losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_bce_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss of the original GAN: real -> 1, fake -> 0."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def g_bce_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: make the discriminator call fakes real."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
