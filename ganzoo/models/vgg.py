"""Feature networks for perceptual and style losses and for AdaIN's encoder (as fast_neural_style/vgg.py).

`VGGFeatures` is VGG19 with torchvision's ImageNet weights or the offline alternative, a fixed seeded
random-weight VGG19; `MultiScaleRandomFeatures` is a pooling-free random network over an image
pyramid; `FeatureEnsemble` averages several of them. `adain` is AdaIN's feature operation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Index of each named activation in torchvision's `vgg19().features`.
VGG19_LAYERS = {"relu1_1": 1, "relu1_2": 3, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11, "conv3_3": 14, "relu3_3": 15,
                "relu4_1": 20, "relu4_4": 26, "relu5_4": 35}
VGG19_IMAGENET_FILE = "vgg19-dcbb9e9d.pth"  # the file torchvision's VGG19_Weights.IMAGENET1K_V1 downloads
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
VGG_WEIGHT_CHOICES = ("imagenet", "random")
VGG_POOL_CHOICES = ("max", "avg")


class VGGWeightsError(RuntimeError):
    """ImageNet VGG weights were asked for but are not on this machine."""


def _imagenet_vgg_state_dict(path: str | None) -> dict[str, torch.Tensor]:
    import os

    if path is None:
        path = os.path.join(torch.hub.get_dir(), "checkpoints", VGG19_IMAGENET_FILE)
    if not os.path.isfile(path):
        raise VGGWeightsError(
            f"ImageNet VGG19 weights not found at {path}. ganzoo never downloads them silently: "
            f"put torchvision's {VGG19_IMAGENET_FILE} in the torch hub cache "
            f"(`python -c \"import torchvision; torchvision.models.vgg19(weights='IMAGENET1K_V1')\"` "
            f"on a machine with internet, then copy {torch.hub.get_dir()}/checkpoints), pass an explicit path, "
            "or choose the documented offline alternative (--vgg-weights random).")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


class VGGFeatures(torch.nn.Module):
    """Frozen VGG19 activations at named layers, for perceptual and style losses.

    `weights="imagenet"` uses torchvision's ImageNet weights from the torch hub
    cache or `weights_path` (an error if absent, never a silent fallback).
    `weights="random"` is the offline alternative: a fixed, seeded random-weight
    VGG19 (Kaiming init, as torchvision initialises it). Random conv features
    still capture local image statistics (Ustyuzhaninov et al. 2017; He et al.
    2016), and fixing the seed makes the loss reproducible. `describe()` gives the
    one-line description that model cards must quote.
    """

    def __init__(self, layers: tuple[str, ...] = ("relu5_4",), weights: str = "imagenet",
                 weights_path: str | None = None, seed: int = 0, pool: str = "max") -> None:
        from torchvision.models import vgg19

        super().__init__()
        unknown = [name for name in layers if name not in VGG19_LAYERS]
        if unknown:
            raise ValueError(f"unknown VGG19 layers {unknown}; choose from {sorted(VGG19_LAYERS)}")
        if weights not in VGG_WEIGHT_CHOICES:
            raise ValueError(f"weights must be one of {VGG_WEIGHT_CHOICES}, got {weights!r}")
        if pool not in VGG_POOL_CHOICES:
            raise ValueError(f"pool must be one of {VGG_POOL_CHOICES}, got {pool!r}")
        self.layers, self.weights, self.seed, self.pool = tuple(layers), weights, seed, pool
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = vgg19(weights=None)
        if weights == "imagenet":
            model.load_state_dict(_imagenet_vgg_state_dict(weights_path))
        last = max(VGG19_LAYERS[name] for name in layers)
        self.features = model.features[:last + 1].eval().requires_grad_(False)
        for relu in (m for m in self.features if isinstance(m, torch.nn.ReLU)):
            relu.inplace = False  # an in-place ReLU would overwrite a returned conv output (conv3_3)
        if pool == "avg":  # Gatys et al. 2016: average pooling gives smoother gradients than max pooling
            for index, layer in enumerate(self.features):
                if isinstance(layer, torch.nn.MaxPool2d):
                    self.features[index] = torch.nn.AvgPool2d(2, 2)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def describe(self) -> str:
        names = ", ".join(self.layers) + (", average pooling" if self.pool == "avg" else "")
        if self.weights == "imagenet":
            return f"VGG19 ({names}) with torchvision's ImageNet weights"
        return f"VGG19 ({names}) with fixed random weights (Kaiming init, seed {self.seed}); no ImageNet weights"

    def train(self, mode: bool = True) -> VGGFeatures:
        return super().train(False)  # always frozen, BN-free, eval

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Activations at each requested layer for images in [0, 1]."""
        wanted = {VGG19_LAYERS[name]: name for name in self.layers}
        h, out = (images - self.mean) / self.std, {}
        for index, layer in enumerate(self.features):
            h = layer(h)
            if index in wanted:
                out[wanted[index]] = h
        return out


class MultiScaleRandomFeatures(torch.nn.Module):
    """Wide one-layer random ReLU networks without pooling, over an image pyramid (Ustyuzhaninov et al. 2017).

    At each scale s in `scales` (the image area-downsampled s times) and each kernel size k, `width`
    fixed random filters (Kaiming-uniform, from `seed`; deterministic) with ReLU give the activations
    named f"k{k}s{s}". The pyramid stands in for the paper's very large kernels at a fraction of the
    cost. No stride or pooling follows a filter, so no sub-lattice of pixels is privileged: a loss on
    these features cannot be met with a periodic lattice the way a max-pooled network's can.
    """

    def __init__(self, kernel_sizes: tuple[int, ...] = (3, 5, 7), scales: tuple[int, ...] = (1, 2, 4),
                 width: int = 128, seed: int = 0) -> None:
        super().__init__()
        if not kernel_sizes or any(k < 1 or k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must be odd and positive, got {kernel_sizes}")
        if not scales or any(s < 1 for s in scales):
            raise ValueError(f"scales must be positive integers, got {scales}")
        self.kernel_sizes, self.scales, self.width, self.seed = tuple(kernel_sizes), tuple(scales), width, seed
        self.convs = torch.nn.ModuleDict()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for k in kernel_sizes:
                conv = torch.nn.Conv2d(3, width, k, padding=k // 2, padding_mode="reflect")
                torch.nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu")
                torch.nn.init.zeros_(conv.bias)
                self.convs[f"k{k}"] = conv
        self.requires_grad_(False)
        self.layers = tuple(f"k{k}s{s}" for s in scales for k in kernel_sizes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def describe(self) -> str:
        return (f"multi-scale random features (Ustyuzhaninov et al. 2017): {self.width} random ReLU filters of "
                f"sizes {', '.join(map(str, self.kernel_sizes))} on the image at scales 1/"
                f"{', 1/'.join(map(str, self.scales))}, no pooling (seed {self.seed}); no ImageNet weights")

    def config(self) -> dict[str, object]:
        """What rebuilds these features exactly (for config.json and model cards)."""
        return {"kind": "multiscale", "kernel_sizes": list(self.kernel_sizes), "scales": list(self.scales),
                "width": self.width, "seed": self.seed}

    def train(self, mode: bool = True) -> MultiScaleRandomFeatures:
        return super().train(False)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Activations named k{size}s{scale} for images in [0, 1]."""
        h, out = (images - self.mean) / self.std, {}
        for s in self.scales:
            x = F.avg_pool2d(h, s) if s > 1 else h
            for k in self.kernel_sizes:
                out[f"k{k}s{s}"] = F.relu(self.convs[f"k{k}"](x))
        return out


class FeatureEnsemble(torch.nn.Module):
    """Several feature networks (e.g. random VGGs of different seeds) as one: activations keyed
    "<i>/<layer>"; a loss summed over keys and divided by `len(members)` averages the members."""

    def __init__(self, members: list[torch.nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("FeatureEnsemble needs at least one feature network")
        self.members = torch.nn.ModuleList(members)

    def describe(self) -> str:
        return f"the average of {len(self.members)}: " + "; ".join(m.describe() for m in self.members)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {f"{i}/{name}": f for i, member in enumerate(self.members) for name, f in member(images).items()}


def base_layer(key: str) -> str:
    """The layer name of a feature key ("relu2_2" or FeatureEnsemble's "1/relu2_2" -> "relu2_2")."""
    return key.rsplit("/", 1)[-1]


# -- adaptive instance normalisation (Huang & Belongie 2017) ---------------------------------------

def mean_std(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and standard deviation over H, W: two [N,C,1,1] tensors."""
    flat = features.flatten(2)
    return flat.mean(2)[..., None, None], (flat.var(2, unbiased=False) + eps).sqrt()[..., None, None]


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Adaptive instance normalisation (Huang & Belongie 2017): the content activations with each
    channel's mean and std replaced by the style's. A style batch of 1 applies to every content image."""
    c_mean, c_std = mean_std(content, eps)
    s_mean, s_std = mean_std(style, eps)
    return (content - c_mean) / c_std * s_std + s_mean
