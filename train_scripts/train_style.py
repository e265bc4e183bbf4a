"""Train one fast style-transfer network (Johnson et al. 2016) for one style image.

    accelerate launch train_scripts/train_style.py --style-image ../shared/data/style/styles/mosaic.jpg \
        --content-dirs ../shared/data/sr/train/* ../shared/data/style/content \
        --output-dir runs/style-mosaic --vgg-weights imagenet

Loss = content-weight x feature loss (VGG relu2_2 of output vs content) + style-weight x Gram-matrix
loss (relu1_2, relu2_2, relu3_3, relu4_1 of output vs the style image) + tv-weight x total variation,
each feature term normalised by its target's mean square (`ganzoo.losses`). Content images are random
crops of the content folders; the style image is resized so its longer side is `--style-size`.
"""

import argparse
from pathlib import Path

import torch
from PIL import Image

import ganzoo
from ganzoo.data import add_dataset_args, data_sources, image_bank
from ganzoo.imaging import image_to_tensor, load_image
from ganzoo.losses import content_loss, gram_matrix, gram_style_loss, total_variation
from ganzoo.models import TransformerNet
from ganzoo.models.vgg import FeatureEnsemble, MultiScaleRandomFeatures, VGGFeatures, base_layer
from ganzoo.training import (Trainer, add_training_args, add_vgg_args, resolve_architecture, run_history,
                             write_history)

# Where the bundled styles' images come from (../shared/data/README.md, ../shared/data/style/licenses/).
STYLE_CREDITS = {
    "mosaic": "`mosaic.jpg` from pytorch/examples (fast_neural_style), BSD-3-Clause; the artwork's author and "
              "copyright status are not recorded there",
    "candy": "`candy.jpg` from pytorch/examples (fast_neural_style), BSD-3-Clause; the artwork's author and "
             "copyright status are not recorded there",
    "udnie": "`udnie.jpg` from pytorch/examples (fast_neural_style), BSD-3-Clause; the painting is Francis "
             "Picabia's *Udnie* (1913)",
    "starry_night": "`starry_night.jpg` from the MIT-licensed style-transfer examples collected in "
                    "../shared/data/style (jcjohnson/neural-style, pytorch-AdaIN); the painting is Vincent van "
                    "Gogh's *The Starry Night* (1889), in the public domain",
    "the_scream": "`the_scream.jpg` from the MIT-licensed style-transfer examples collected in "
                  "../shared/data/style (jcjohnson/neural-style, pytorch-AdaIN); the painting is Edvard Munch's "
                  "*The Scream* (1893), in the public domain",
}
UNKNOWN_CREDIT = ("from ../shared/data/style/styles, whose images come from pytorch/examples (BSD-3-Clause), "
                  "jcjohnson/neural-style (MIT) and pytorch-AdaIN (MIT); see ../shared/data/style/licenses")
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_1")
CONTENT_LAYER = "relu2_2"
TRANSFORMER_DEFAULTS = {"channels": 32, "num_blocks": 5}  # a new network's architecture


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--style-image", type=Path, required=True, help="the one style image")
    data.add_argument("--style-name", default=None, help="name for the card (default: the image's file stem)")
    data.add_argument("--style-credit", default=None, help="source and licence of the style image, for the card")
    data.add_argument("--style-size", type=int, default=256, help="longer side of the style image in the loss")
    data.add_argument("--content-dirs", nargs="*", default=[], help="folders of content photos")
    add_dataset_args(parser)
    data.add_argument("--crop-size", type=int, default=256)
    model = parser.add_argument_group("model and loss")
    model.add_argument("--channels", type=int, default=None, help=f"default {TRANSFORMER_DEFAULTS['channels']}")
    model.add_argument("--num-blocks", type=int, default=None, help=f"default {TRANSFORMER_DEFAULTS['num_blocks']}")
    model.add_argument("--upsample", choices=["nearest", "bilinear"], default="nearest",
                       help="TransformerNet's upsampling (nearest paints a lattice, see its docstring)")
    model.add_argument("--content-weight", type=float, default=1.0)
    model.add_argument("--style-weight", type=float, default=10.0)
    model.add_argument("--tv-weight", type=float, default=0.0)
    model.add_argument("--style-layers", nargs="+", default=list(STYLE_LAYERS), help="VGG19 layers of the Gram loss")
    add_vgg_args(model)
    model.add_argument("--vgg-seed", type=int, default=0, help="seed of the random-weight VGG")
    model.add_argument("--vgg-seeds", type=int, default=1,
                       help="average the losses over this many random VGGs (seeds vgg-seed, vgg-seed+1, ...)")
    model.add_argument("--features", choices=["vgg19", "multiscale"], default="vgg19",
                       help="loss network: VGG19 (see --vgg-*) or MultiScaleRandomFeatures (no pooling; "
                            "all its layers form the Gram loss, --content-layer defaults to k3s2)")
    model.add_argument("--content-layer", default=None, help="feature layer of the content loss "
                       f"(default {CONTENT_LAYER} for VGG19)")
    model.add_argument("--lr", type=float, default=1e-3)
    model.add_argument("--init-from", default=None,
                       help="fine-tune a trained TransformerNet (name, folder or Hub repo id); its config decides "
                            "--channels and --num-blocks")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: OMP_NUM_THREADS "
                        "or all cores)")
    add_training_args(parser, max_steps=40_000, batch_size=4, checkpoint_every=500, sample_every=250)
    return parser.parse_args(argv)


def load_style(path: Path, size: int) -> torch.Tensor:
    """[1,3,h,w] in [0, 1], longer side `size` (Lanczos)."""
    image = load_image(path).convert("RGB")
    scale = size / max(image.size)
    image = image.resize((max(16, round(image.width * scale)), max(16, round(image.height * scale))),
                         Image.Resampling.LANCZOS)
    return image_to_tensor(image)[0]


def build_features(args: argparse.Namespace) -> tuple[torch.nn.Module, tuple[str, ...], str]:
    """The loss network the arguments ask for, its Gram layers and its content layer."""
    if args.features == "multiscale":
        features = MultiScaleRandomFeatures(seed=args.vgg_seed)
        return features, features.layers, args.content_layer or "k3s2"
    style_layers = tuple(args.style_layers)
    content_layer = args.content_layer or CONTENT_LAYER
    members = [VGGFeatures(tuple(dict.fromkeys((*style_layers, content_layer))), weights=args.vgg_weights,
                           weights_path=args.vgg_weights_path, seed=args.vgg_seed + i, pool=args.vgg_pool)
               for i in range(args.vgg_seeds)]
    return (members[0] if len(members) == 1 else FeatureEnsemble(members)), style_layers, content_layer


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    style_name = args.style_name or args.style_image.stem
    trainer = Trainer(args, f"style-{style_name}")
    device = trainer.device
    bank = image_bank(args, args.content_dirs, args.crop_size, device)
    style = load_style(args.style_image, args.style_size).to(device)
    features, style_layers, content_layer = build_features(args)
    features = features.to(device)
    members = len(features.members) if isinstance(features, FeatureEnsemble) else 1
    with torch.no_grad():
        style_grams = {name: gram_matrix(f) for name, f in features(style).items()
                       if base_layer(name) in style_layers}
    trained = ganzoo.load(args.init_from) if args.init_from else None
    if trained is not None and not isinstance(trained, TransformerNet):
        raise SystemExit(f"--init-from must be a TransformerNet, got {type(trained).__name__}")
    model = TransformerNet(**resolve_architecture(args, TRANSFORMER_DEFAULTS, trained), upsample=args.upsample)
    if trained is not None:  # the upsampling mode has no weights: a nearest model's weights fit a bilinear one
        model.load_state_dict(trained.state_dict())
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    model, optimizer = trainer.prepare(model, optimizer)

    def train_step(step: int, rng: torch.Generator) -> dict[str, float]:
        content = bank.random_crops(args.batch_size, args.crop_size, rng)
        with trainer.accelerator.autocast():
            output = model(content).float()
            out_features = features(output)
            with torch.no_grad():
                targets = {k: f for k, f in features(content).items() if base_layer(k) == content_layer}
            c_loss = sum(content_loss(out_features[k], t) for k, t in targets.items()) / members
            s_loss = gram_style_loss(out_features, style_grams) / members
            tv = total_variation(output)
            loss = args.content_weight * c_loss + args.style_weight * s_loss + args.tv_weight * tv
        trainer.optimize(loss, optimizer)
        return {"loss": loss.item(), "content": c_loss.item(), "style": s_loss.item(), "tv": tv.item()}

    fixed = bank.random_crops(4, args.crop_size, torch.Generator().manual_seed(1234))

    def sample(step: int) -> torch.Tensor:
        """Row 1: content crops; row 2: stylised."""
        with trainer.accelerator.autocast():
            return torch.cat([fixed, trainer.accelerator.unwrap_model(model)(fixed).float()])

    trainer.fit(train_step, [model], sample_fn=sample, sample_nrow=4)
    history = run_history(trainer, args.init_from)
    folder = trainer.export(
        model, "final", "style.md", style_name=style_name, style_image=str(args.style_image),
        style_credit=args.style_credit or STYLE_CREDITS.get(style_name, UNKNOWN_CREDIT),
        loss_network=features.describe(), style_layers=list(style_layers), content_layer=content_layer,
        content_dirs=data_sources(args, args.content_dirs), content_images=len(bank), init_from=args.init_from,
        **history)
    write_history(folder, history["history"])
    if folder is not None:  # the style image beside the weights: the card and the app's gallery show it
        thumbnail = load_image(args.style_image).convert("RGB")
        thumbnail.thumbnail((256, 256), Image.Resampling.LANCZOS)
        thumbnail.save(folder / "style.jpg", quality=88)
    trainer.end()


if __name__ == "__main__":
    main()
