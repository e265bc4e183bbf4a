"""Neural style transfer: Johnson et al.'s fast per-style network and AdaIN arbitrary style transfer.

`TransformerNet` (Johnson, Alahi & Fei-Fei 2016) is trained for one style image and
stylises any photo in one pass. `AdaINStyleTransfer` (Huang & Belongie 2017) takes
any style image at run time: a frozen VGG19 encoder to relu4_1, adaptive instance
normalisation of the content features to the style's channel statistics, and a
trained decoder. Both take and return RGB in [0, 1], any size from their minimum up.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.hub import GanzooModel, check_choice, check_range, hub_kwargs
from ganzoo.models.vgg import VGG_WEIGHT_CHOICES, VGGFeatures, adain

UPSAMPLE_MODES = ("nearest", "bilinear")
TRANSFORMER_MIN_SIZE = 8  # the 9x9 reflection pad needs more than 4 pixels, the 1/4-scale 3x3 pads 2
ADAIN_MIN_SIZE = 16  # relu4_1 is 1/8 scale; the decoder's first reflection pad needs 2 pixels there
ADAIN_BORDER = 32  # reflected pixels around the content: the encoder's zero padding otherwise paints a frame
ADAIN_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")  # the style-loss layers; relu4_1 is the code


def _check_size(name: str, images: torch.Tensor, minimum: int, what: str = "images") -> None:
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} needs RGB {what} of shape [N,3,H,W], got {list(images.shape)}")
    height, width = images.shape[-2:]
    if height < minimum or width < minimum:
        raise ValueError(f"{name} needs {what} of at least {minimum}x{minimum} pixels, got {height}x{width}")


def _pad_to_multiple(images: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad bottom and right to a multiple of `multiple` (crop the result back afterwards)."""
    pad_h, pad_w = -images.shape[-2] % multiple, -images.shape[-1] % multiple
    return F.pad(images, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else images


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Reflection padding + convolution: no zero borders for the network to paint frames around."""
    return nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(in_channels, out_channels, kernel, stride))


def _conv_in_relu(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [_conv(in_channels, out_channels, kernel, stride), nn.InstanceNorm2d(out_channels, affine=True),
            nn.ReLU(True)]


class ResidualBlock(nn.Module):
    """conv3x3, IN, ReLU, conv3x3, IN, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_in_relu(channels, channels, 3), _conv(channels, channels, 3),
                                  nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformerNet(GanzooModel, **hub_kwargs(pipeline_tag="image-to-image",
                                               tags=["style-transfer", "fast-neural-style"])):
    """Johnson et al.'s image transformation network for one style.

    9x9 conv, two stride-2 3x3 convs, `num_blocks` residual blocks at 4 x `channels`, two x2
    upsamplings each followed by a 3x3 conv (instead of transposed convs, which leave checkerboard
    artefacts; Odena et al. 2016), and a 9x9 conv to RGB. Reflection padding and affine instance norm
    throughout (Ulyanov et al. 2016). Any input size from 8x8: it is reflect-padded to a multiple of 4
    and the output cropped back.

    `upsample="nearest"` (Odena et al.'s resize-convolution, the older models' setting) copies each
    pixel into a 2x2 block, which the trained networks turned into a period-2/4 lattice (issue 16:
    grid score 1.73 -> 0.70 for style-mosaic by switching its trained weights to bilinear, untrained);
    `"bilinear"` interpolates instead. The weights are the same shape either way.
    """

    def __init__(self, channels: int = 32, num_blocks: int = 5, upsample: str = "nearest") -> None:
        check_range("channels", channels, 1, 256)
        check_range("num_blocks", num_blocks, 0, 32)
        check_choice("upsample", upsample, UPSAMPLE_MODES)
        super().__init__()
        c = channels
        self.down = nn.Sequential(*_conv_in_relu(3, c, 9), *_conv_in_relu(c, 2 * c, 3, stride=2),
                                  *_conv_in_relu(2 * c, 4 * c, 3, stride=2))
        self.blocks = nn.Sequential(*[ResidualBlock(4 * c) for _ in range(num_blocks)])
        self.up = nn.Sequential(_upsample_x2(upsample), *_conv_in_relu(4 * c, 2 * c, 3),
                                _upsample_x2(upsample), *_conv_in_relu(2 * c, c, 3),
                                _conv(c, 3, 9))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Stylised images in [0, 1], the same size as `images` ([N,3,H,W] in [0, 1])."""
        _check_size(type(self).__name__, images, TRANSFORMER_MIN_SIZE)
        height, width = images.shape[-2:]
        h = self.up(self.blocks(self.down(_pad_to_multiple(images, 4) * 2 - 1)))
        return (torch.tanh(h[..., :height, :width]) + 1) / 2


class AdaINStyleTransfer(GanzooModel, **hub_kwargs(pipeline_tag="image-to-image",
                                                   tags=["style-transfer", "adain"])):
    """Arbitrary style transfer with adaptive instance normalisation (Huang & Belongie 2017).

    Only the decoder is trained and saved. The encoder, VGG19 up to relu4_1, is rebuilt from the
    config when the model is created: `encoder_weights="imagenet"` loads torchvision's ImageNet
    weights from the torch hub cache (a `VGGWeightsError` if absent, never a silent fallback);
    `"random"` is the fixed random-weight VGG19 of seed `encoder_seed` (see `VGGFeatures`). A decoder
    only works with the encoder it was trained with. The decoder mirrors the encoder with x2 upsampling
    steps and reflection-padded convs; `channels` is its narrowest channel count (64 in the paper).
    `upsample="nearest"` is the paper's (and the older configs'); it copies each pixel into a block, which
    stylised outputs show as a period-2/4/8 lattice. `"bilinear"` interpolates instead (issue 16); the
    weights are the same shape either way.

    `alpha` trades content for style as in the paper, by blending the content features with their
    AdaIN target before decoding. `alpha=0` returns the content unchanged (exactly: the decoder would
    only approximate it), so strength 0 means no stylisation.
    """

    legacy_config_keys = {"width": "channels"}

    def __init__(self, channels: int = 64, encoder_weights: str = "imagenet", encoder_seed: int = 0,
                 upsample: str = "nearest") -> None:
        check_range("channels", channels, 1, 256)
        check_choice("encoder_weights", encoder_weights, VGG_WEIGHT_CHOICES)
        check_range("encoder_seed", encoder_seed, 0, 2**31 - 1)
        check_choice("upsample", upsample, UPSAMPLE_MODES)
        super().__init__()
        # A tuple hides the encoder from state_dict() and parameters(): it is frozen and rebuilt from the
        # config, not saved. `_apply` below still moves it along with the decoder (.to, .float, ...).
        self._encoder = (copy.deepcopy(_frozen_vgg(encoder_weights, encoder_seed)),)
        w = channels
        layers: list[nn.Module] = [*_conv_relu(512, 4 * w), _upsample_x2(upsample)]
        layers += [*_conv_relu(4 * w, 4 * w), *_conv_relu(4 * w, 4 * w), *_conv_relu(4 * w, 4 * w),
                   *_conv_relu(4 * w, 2 * w), _upsample_x2(upsample)]
        layers += [*_conv_relu(2 * w, 2 * w), *_conv_relu(2 * w, w), _upsample_x2(upsample)]
        layers += [*_conv_relu(w, w), _conv(w, 3, 3)]
        self.decoder = nn.Sequential(*layers)

    @property
    def encoder(self) -> VGGFeatures:
        return self._encoder[0]

    def _apply(self, fn, recurse: bool = True):  # nn.Module's signature
        super()._apply(fn, recurse)
        self._encoder[0]._apply(fn, recurse)
        return self

    def encode(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encoder activations at relu1_1 ... relu4_1 (sizes must be multiples of 8 to decode back)."""
        return self.encoder(images)

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """relu4_1-shaped features [N,512,h,w] -> images [N,3,8h,8w], unclamped (for training)."""
        return self.decoder(features)

    def style_features(self, style: torch.Tensor) -> torch.Tensor:
        """relu4_1 activations of style images (any size from 16x16; only their statistics are used)."""
        _check_size(type(self).__name__, style, ADAIN_MIN_SIZE, "style images")
        return self.encode(style)["relu4_1"]

    def reconstruct(self, content: torch.Tensor) -> torch.Tensor:
        """The decoder applied to the content's own relu4_1 features, in [0, 1], same size: what `alpha=0`
        would give without its exact shortcut; how much structure the decoder keeps."""
        _check_size(type(self).__name__, content, ADAIN_MIN_SIZE, "content images")
        padded, crop = _reflect_border(content)
        return self.decode(self.encode(padded)["relu4_1"])[crop].clamp(0.0, 1.0)

    def forward(self, content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        """`content` [N,3,H,W] stylised with `style` ([1 or N,3,h,w]), in [0, 1], same size as `content`."""
        return self.mix(content, [style], [1.0], alpha)

    def mix(self, content: torch.Tensor, styles: Sequence[torch.Tensor], weights: Sequence[float],
            alpha: float = 1.0) -> torch.Tensor:
        """Interpolate between styles: the AdaIN targets of each style, weighted by `weights`
        (non-negative, normalised to sum 1), as in the paper's Fig. 9."""
        name = type(self).__name__
        _check_size(name, content, ADAIN_MIN_SIZE, "content images")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        weights = [float(w) for w in weights]
        if len(styles) != len(weights) or not styles:
            raise ValueError(f"give one weight per style: {len(styles)} styles, {len(weights)} weights")
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"style weights must be non-negative with a positive sum, got {weights}")
        if alpha == 0:
            return content.clone()
        padded, crop = _reflect_border(content)
        content_features = self.encode(padded)["relu4_1"]
        target = sum(w / sum(weights) * adain(content_features, self.style_features(s))
                     for w, s in zip(weights, styles, strict=True))
        target = alpha * target + (1 - alpha) * content_features
        return self.decode(target)[crop].clamp(0.0, 1.0)


def _reflect_border(content: torch.Tensor) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """The content reflect-padded by up to ADAIN_BORDER pixels on every side (then to a multiple of 8), and
    the index that crops a decoded image back to the content: the border the encoder's zero padding
    disturbs falls outside the crop (issue 16: the visible frame around AdaIN outputs)."""
    height, width = content.shape[-2:]
    border = min(ADAIN_BORDER, height - 1, width - 1)
    padded = _pad_to_multiple(F.pad(content, (border,) * 4, mode="reflect"), 8)
    return padded, (..., slice(border, border + height), slice(border, border + width))


@functools.lru_cache(maxsize=2)
def _frozen_vgg(weights: str, seed: int) -> VGGFeatures:
    """The encoder, built once per process (building VGG19 initialises its 120 M classifier weights
    too, seconds on a CPU); each model gets a copy."""
    return VGGFeatures(ADAIN_LAYERS, weights=weights, seed=seed)


def _upsample_x2(mode: str) -> nn.Upsample:
    """x2 upsampling, `mode` one of UPSAMPLE_MODES (bilinear with half-pixel centres, as PIL and OpenCV)."""
    return nn.Upsample(scale_factor=2, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))


def _conv_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [_conv(in_channels, out_channels, 3), nn.ReLU(True)]


# -- colour preservation ----------------------------------------------------------------------------
# JPEG's full-range YCbCr (ITU-R BT.601 coefficients): exactly invertible, luma in [0, 1].

_RGB_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114],
                              [-0.168736, -0.331264, 0.5],
                              [0.5, -0.418688, -0.081312]])


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """[N,3,H,W] RGB in [0, 1] -> Y, Cb, Cr planes (Y in [0, 1], Cb and Cr in [-0.5, 0.5])."""
    return torch.einsum("ij,njhw->nihw", _RGB_TO_YCBCR.to(rgb), rgb)


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(_RGB_TO_YCBCR.double()).to(ycbcr), ycbcr)


def preserve_color(content: torch.Tensor, stylised: torch.Tensor) -> torch.Tensor:
    """Transfer on luminance only: the stylised image's luma (Y) with the content's chroma (Cb, Cr),
    clamped to [0, 1] (Gatys et al. 2016, "Preserving color in neural artistic style transfer")."""
    if content.shape != stylised.shape:
        raise ValueError(f"content {list(content.shape)} and stylised {list(stylised.shape)} differ in shape")
    luma = rgb_to_ycbcr(stylised)[:, :1]
    chroma = rgb_to_ycbcr(content)[:, 1:]
    return ycbcr_to_rgb(torch.cat([luma, chroma], 1)).clamp(0.0, 1.0)
