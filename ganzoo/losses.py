"""Losses shared by the families: adversarial (non-saturating BCE, WGAN-GP), pixel, perceptual and
style losses over the feature networks of `ganzoo.models.vgg`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganzoo.models.vgg import VGGFeatures, mean_std


def d_bce_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss of the original GAN: real -> 1, fake -> 0."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def g_bce_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: make the discriminator call fakes real."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# -- perceptual loss over VGG features (ganzoo.models.vgg) ----------------------------------------

class PerceptualLoss(torch.nn.Module):
    """MSE between VGG activations of output and target, each layer normalised by the target's
    mean squared activation so that ImageNet and random features give losses of similar size."""

    def __init__(self, features: VGGFeatures) -> None:
        super().__init__()
        self.features = features

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        out_feats = self.features(output)
        with torch.no_grad():
            target_feats = self.features(target)
        return sum(F.mse_loss(out_feats[k], target_feats[k]) / target_feats[k].pow(2).mean().clamp_min(1e-8)
                   for k in out_feats)


def feature_matching_loss(fake_features: list[torch.Tensor], real_features: list[torch.Tensor]) -> torch.Tensor:
    """L1 between discriminator activations of fake and real images (pix2pixHD's feature matching)."""
    return sum(F.l1_loss(f, r.detach()) for f, r in zip(fake_features, real_features)) / len(fake_features)


# -- WGAN-GP (Gulrajani et al. 2017) ----------------------------------------------------------------

def gradient_penalty(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Mean of (||d critic / d x||_2 - 1)^2 at random per-sample interpolations of real and fake.

    The gradient is taken with `create_graph=True`, so the penalty backpropagates into the critic.
    For a critic that returns a score map, the gradient is that of the summed scores.
    """
    real, fake = real.detach(), fake.detach()  # the penalty trains the critic only
    alpha = torch.rand(real.shape[0], *[1] * (real.dim() - 1), device=real.device, dtype=real.dtype)
    mixed = torch.lerp(fake, real, alpha).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    # The tiny epsilon keeps the norm differentiable where the gradient vanishes.
    norm = grad.flatten(1).pow(2).sum(1).add(1e-12).sqrt()
    return (norm - 1).pow(2).mean()


def wgan_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Critic loss: push fake scores down and real scores up (add the gradient penalty separately)."""
    return fake_scores.mean() - real_scores.mean()


def wgan_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Generator loss: raise the critic's score of the fakes."""
    return -fake_scores.mean()


# -- style transfer (Gatys et al. 2016; Johnson et al. 2016; Huang & Belongie 2017) ----------------
# Each layer's term is divided by the target's mean square (as in PerceptualLoss), so that the same
# weights work with ImageNet and with random VGG features, whose activations differ in scale.

def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """[N,C,H,W] activations -> [N,C,C] channel correlations, divided by C*H*W (Johnson et al. 2016)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w).float()
    return flat @ flat.transpose(1, 2) / (c * h * w)


def gram_style_loss(out_features: dict[str, torch.Tensor], style_grams: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the normalised MSE between the output's Gram matrices and the style's
    ([1 or N, C, C] each, e.g. precomputed once from the style image)."""
    total = 0.0
    for name, target in style_grams.items():
        gram = gram_matrix(out_features[name])
        total = total + F.mse_loss(gram, target.expand_as(gram)) / target.pow(2).mean().clamp_min(1e-12)
    return total


def content_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE between activations, normalised by the (constant) target's mean square."""
    target = target.detach()
    return F.mse_loss(out, target) / target.pow(2).mean().clamp_min(1e-12)


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (a smoothness prior against noise)."""
    return ((images[..., 1:, :] - images[..., :-1, :]).abs().mean()
            + (images[..., :, 1:] - images[..., :, :-1]).abs().mean())


def adain_style_loss(out_features: dict[str, torch.Tensor], style_features: dict[str, torch.Tensor]) -> torch.Tensor:
    """AdaIN's style loss: sum over layers of the (normalised) MSE between the per-channel means and
    stds of the output's and the style's activations."""
    total = 0.0
    for name, style in style_features.items():
        o_mean, o_std = mean_std(out_features[name])
        s_mean, s_std = (t.detach() for t in mean_std(style))
        scale = (s_mean.pow(2).mean() + s_std.pow(2).mean()).clamp_min(1e-12)
        total = total + (F.mse_loss(o_mean, s_mean) + F.mse_loss(o_std, s_std)) / scale
    return total


def focal_frequency_loss(output: torch.Tensor, target: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Focal frequency loss (Jiang et al. 2021): the squared distance between the images' 2-D spectra
    (orthonormal FFT per channel), each frequency weighted by its own distance to the power `alpha`,
    scaled to [0, 1] per image and not differentiated through. Hard frequencies (such as a lattice's
    peaks, which pixel and deep-feature losses barely see) weigh most."""
    diff = torch.fft.fft2(output.float(), norm="ortho") - torch.fft.fft2(target.float(), norm="ortho")
    distance = diff.real.pow(2) + diff.imag.pow(2)
    weight = distance.detach().sqrt().pow(alpha)
    weight = weight / weight.flatten(1).amax(1).clamp_min(1e-12).view(-1, *[1] * (weight.dim() - 1))
    return (weight * distance).mean()


def lattice_loss(output: torch.Tensor, target: torch.Tensor, period: int = 4, window: int = 16) -> torch.Tensor:
    """The energy of the residual's local period-`period` lattice: in each `window`x`window` block, the mean
    of the residual at each of the period x period pixel phases, less their mean, squared and averaged.

    This is the part of the MSE that `metrics.grid_artifact_score` sees (the residual's content at the
    frequencies k/period) measured block by block, since a generator's lattice follows the image content
    rather than being one fixed pattern. MSE weighs it by its share of the pixels; this term lets a
    recipe weigh it more."""
    if window % period:
        raise ValueError(f"window ({window}) must be a multiple of period ({period})")
    residual = output.float() - target.float()
    height, width = residual.shape[-2:]
    residual = residual[..., : height - height % window, : width - width % window]
    if residual.shape[-1] == 0 or residual.shape[-2] == 0:
        raise ValueError(f"lattice_loss needs images of at least {window}x{window}, got {height}x{width}")
    phases = F.pixel_unshuffle(residual, period)  # [B, C*period^2, H/period, W/period]
    block_means = F.avg_pool2d(phases, window // period)
    block_means = block_means.unflatten(1, (residual.shape[1], period * period))
    return (block_means - block_means.mean(2, keepdim=True)).pow(2).mean()
