"""The package version, in one place: pyproject.toml reads it, ganzoo and ganzoo.hub import it."""

__version__ = "0.1.0"
