"""Rebuild the Hub metadata of bundled model cards from their own text; the measured numbers stay as they are.

    python train_scripts/refresh_cards.py            # every bundled model
    python train_scripts/refresh_cards.py srgan-x4   # some

`bundle_model.py` already writes this metadata (through `hub.save_with_card`); this is for cards
rendered before the metadata rules changed, whose run records are gone.
"""

import argparse
import json

from ganzoo.cards import refresh_card
from ganzoo.registry import MODELS, read_config


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="bundled model names (default: all)")
    args = parser.parse_args(argv)
    from ganzoo.models import MODEL_CLASSES

    for name in args.names or [m.name for m in MODELS.values() if m.is_bundled]:
        folder = MODELS[name].bundled_path
        cls = MODEL_CLASSES[read_config(str(folder))["_class_name"]]
        card = refresh_card(folder, cls._hub_mixin_info.model_card_data, cls.__name__)
        print(name, json.dumps({k: card.data.to_dict().get(k) for k in ("license", "datasets", "base_model")}),
              f"{len(card.data.eval_results or [])} results")


if __name__ == "__main__":
    main()
