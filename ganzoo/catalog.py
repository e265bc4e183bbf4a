"""The models ganzoo knows, as data: short name, kind, Hub repo id, description; where bundled ones live.

The bottom of the package's layers: it imports nothing of ganzoo. `registry` (loading by short name),
`cards` (which bundled model a run started from, for a card's `base_model`) and `hub` (the weights file's
name) all read it, so none of them has to import another upwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
#: the weights file of a model folder: `hub` writes and reads it, and a model is bundled when its folder holds it
WEIGHTS_NAME = "model.safetensors"

#: what a model is -> the task it serves (`ganzoo models` lists the task; callers choose by kind)
KINDS = {"digit-generator": "digits", "digit-classifier": "digits", "super-resolution": "super-resolution",
         "deblurring": "deblurring", "denoiser": "deblurring", "fast-style": "style", "arbitrary-style": "style"}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str
    repo_id: str
    description: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}; known: {', '.join(KINDS)}")

    @property
    def task(self) -> str:
        return KINDS[self.kind]

    @property
    def bundled_path(self) -> Path:
        return PRETRAINED_DIR / self.name

    @property
    def is_bundled(self) -> bool:
        return (self.bundled_path / WEIGHTS_NAME).is_file()


MODELS: dict[str, ModelEntry] = {e.name: e for e in [
    ModelEntry("mnist-dcgan", "digit-generator", "ganzoo/mnist-dcgan",
               "class-conditional DCGAN generator for 28x28 MNIST digits"),
    ModelEntry("mnist-classifier", "digit-classifier", "ganzoo/mnist-classifier",
               "small CNN that scores generated digits (accuracy, FID features)"),
    ModelEntry("srresnet-x4", "super-resolution", "ganzoo/srresnet-x4",
               "SRResNet x4 trained with MSE: the highest PSNR, smooth textures"),
    ModelEntry("srgan-x4", "super-resolution", "ganzoo/srgan-x4",
               "SRGAN x4: SRResNet fine-tuned with a perceptual + adversarial loss, sharper textures"),
    ModelEntry("deblurgan", "deblurring", "ganzoo/deblurgan",
               "DeblurGAN: deblur-unet fine-tuned with a WGAN-GP critic + perceptual loss (texture over PSNR)"),
    ModelEntry("deblur-unet", "deblurring", "ganzoo/deblur-unet",
               "U-Net of NAFNet blocks trained for PSNR on random camera shake up to 75 px"),
    ModelEntry("denoiser", "denoiser", "ganzoo/denoiser",
               "noise-level-conditional denoiser (FFDNet-like): the learned prior of plug-and-play deconvolution"),
    ModelEntry("style-mosaic", "fast-style", "ganzoo/style-mosaic", "fast style transfer: mosaic (Johnson et al. 2016)"),
    ModelEntry("style-candy", "fast-style", "ganzoo/style-candy", "fast style transfer: candy (Johnson et al. 2016)"),
    ModelEntry("style-starry-night", "fast-style", "ganzoo/style-starry-night",
               "fast style transfer: The Starry Night, van Gogh (Johnson et al. 2016)"),
    ModelEntry("style-udnie", "fast-style", "ganzoo/style-udnie", "fast style transfer: Udnie, Picabia (Johnson et al. 2016)"),
    ModelEntry("adain", "arbitrary-style", "ganzoo/adain",
               "arbitrary style transfer from any style image (AdaIN, Huang & Belongie 2017)"),
]}


#: what `ganzoo upscale`, `ganzoo evaluate sr` use without a choice
DEFAULT_SR_MODEL = "srgan-x4"
#: the deblurring network `ganzoo evaluate deblur` and the Deblur tab use without a choice, and `ganzoo deblur`
#: where it cannot trust a kernel estimate: the bundled model with the best measured gain on unseen blur
DEFAULT_DEBLUR_MODEL = "deblur-unet"
#: the learned prior of plug-and-play deconvolution (`deconvolution.deconvolve(method="pnp")`)
DEFAULT_DENOISER = "denoiser"


def list_models(kind: str | None = None) -> list[ModelEntry]:
    """Every known model, or those of one kind (e.g. "fast-style")."""
    return [e for e in MODELS.values() if kind is None or e.kind == kind]


def fast_style_name(style: str) -> str | None:
    """The registry name of a fast style network ("mosaic", "starry_night", "style-mosaic"), else None."""
    name = style.replace("_", "-")
    for candidate in (name, f"style-{name}"):
        entry = MODELS.get(candidate)
        if entry is not None and entry.kind == "fast-style":
            return candidate
    return None
