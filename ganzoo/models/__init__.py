"""Model classes of every family, by name (the `_class_name` in each config.json)."""

from ganzoo.models.deblur_unet import DeblurUNet
from ganzoo.models.deblurgan import DeblurGANGenerator, PatchGANCritic
from ganzoo.models.denoiser import Denoiser
from ganzoo.models.digits import DigitClassifier, DigitDiscriminator, DigitGenerator
from ganzoo.models.srgan import SRGANDiscriminator, SRResNet
from ganzoo.models.style import AdaINStyleTransfer, TransformerNet

MODEL_CLASSES = {cls.__name__: cls for cls in (
    DigitGenerator, DigitDiscriminator, DigitClassifier,
    SRResNet, SRGANDiscriminator,
    DeblurGANGenerator, PatchGANCritic, DeblurUNet, Denoiser,
    TransformerNet, AdaINStyleTransfer,
)}

#: the classes `ganzoo deblur` and the Deblur tab accept
DEBLURRING_MODELS = (DeblurGANGenerator, DeblurUNet)

__all__ = ["DEBLURRING_MODELS", "MODEL_CLASSES", *MODEL_CLASSES]
