"""ganzoo: a small zoo of image GANs (digits, super-resolution, deblurring, style transfer)."""

__version__ = "0.1.0"

from ganzoo.registry import list_models, load, resolve  # noqa: E402

__all__ = ["__version__", "list_models", "load", "resolve"]
