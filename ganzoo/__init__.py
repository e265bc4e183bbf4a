"""ganzoo: a small zoo of image GANs (digits, super-resolution, deblurring, style transfer)."""

from ganzoo._version import __version__
from ganzoo.registry import list_models, load, resolve

__all__ = ["__version__", "list_models", "load", "resolve"]
