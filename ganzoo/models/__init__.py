"""Model classes of every family, by name (the `_class_name` in each config.json)."""

from ganzoo.models.digits import DigitClassifier, DigitDiscriminator, DigitGenerator

MODEL_CLASSES = {cls.__name__: cls for cls in (DigitGenerator, DigitDiscriminator, DigitClassifier)}

__all__ = ["MODEL_CLASSES", "DigitClassifier", "DigitDiscriminator", "DigitGenerator"]
