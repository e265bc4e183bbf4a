"""Train the AdaIN decoder (Huang & Belongie 2017) for arbitrary style transfer.

    accelerate launch train_scripts/train_adain.py --content-dirs ../shared/data/style/content \
        ../shared/data/sr/train/t91 ../shared/data/sr/train/bsds500_train \
        --style-dirs ../shared/data/style/styles --output-dir runs/adain --vgg-weights imagenet

The encoder (VGG19 to relu4_1) is frozen and part of the model's config, not of its weights. Each
step: encode a batch of content and style crops, replace the content's relu4_1 channel statistics by
the style's (AdaIN), decode, and score the decoded image with the same encoder: content loss at
relu4_1 against the AdaIN target, style loss = mean/std matching at relu1_1, relu2_1, relu3_1, relu4_1.
Images are first resized so their shorter side is `--resize` (the paper: 512, crops of 256).

`--init-from adain` (a name, folder or Hub repo id) continues a trained decoder; its config decides the
width and the encoder, and the card sums the steps and hours of all runs.

`--identity-weight` adds the identity loss of SANet (Park & Lee 2019): L1 between a content or style
crop and its own features decoded, without AdaIN. It teaches the decoder to invert the encoder
directly, which the content loss alone does slowly; that matters with a random-weight encoder
and a small budget (see the adain model card).
"""

import argparse

import torch
import torch.nn.functional as F

from ganzoo.data import ImageBank, add_dataset_args, data_sources, image_bank
from ganzoo.losses import adain_style_loss, content_loss
from ganzoo.models import AdaINStyleTransfer
from ganzoo.models.vgg import adain
from ganzoo.training import Trainer, add_training_args, add_vgg_args, initial_model, run_history, write_history

ADAIN_DEFAULTS = {"channels": 64, "vgg_weights": "imagenet", "vgg_seed": 0}
ADAIN_CONFIG_NAMES = {"vgg_weights": "encoder_weights", "vgg_seed": "encoder_seed"}  # flag -> config.json name


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--content-dirs", nargs="+", default=[], help="folders of content photos (and/or --dataset-name)")
    data.add_argument("--style-dirs", nargs="+", required=True, help="folders of style images (paintings)")
    data.add_argument("--crop-size", type=int, default=256)
    data.add_argument("--resize", type=int, default=512, help="shorter side of every image before cropping")
    model = parser.add_argument_group("model and loss")
    model.add_argument("--init-from", default=None,
                       help="continue a trained AdaIN decoder (name, folder or Hub repo id); its config decides "
                            "--channels and the encoder")
    model.add_argument("--channels", "--width", type=int, default=None, help="decoder width (default 64, the paper's)")
    model.add_argument("--upsample", choices=["nearest", "bilinear"], default=None,
                       help="the decoder's upsampling (default: --init-from's, else nearest, the paper's; nearest "
                            "paints a lattice, see AdaINStyleTransfer). It has no weights, so it may differ from "
                            "--init-from's")
    model.add_argument("--style-weight", type=float, default=10.0)
    add_vgg_args(model, loss_network=False,  # the encoder is rebuilt from the model's config, not from a file
                 weights_help="the encoder: torchvision's ImageNet VGG19 (from the torch hub cache) or a fixed "
                              "random-weight VGG19 (default imagenet)")
    model.set_defaults(vgg_weights=None)  # None: "not given", so --init-from's encoder decides
    model.add_argument("--vgg-seed", type=int, default=None, help="seed of the random-weight VGG (default 0)")
    model.add_argument("--identity-weight", type=float, default=0.0,
                       help="weight of the identity loss (L1 of decode(encode(x)) vs x); 0 is the paper's recipe")
    model.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: OMP_NUM_THREADS "
                        "or all cores)")
    add_dataset_args(parser)
    add_training_args(parser, max_steps=160_000, batch_size=8, checkpoint_every=1000, sample_every=500)
    args = parser.parse_args(argv)
    if args.streaming:
        parser.error("--streaming is not supported here: every content image is resized once, in memory")
    if args.identity_weight < 0:
        parser.error(f"--identity-weight must be >= 0, got {args.identity_weight}")
    if args.resize < args.crop_size:
        parser.error(f"--resize ({args.resize}) must be at least --crop-size ({args.crop_size})")
    return args


def resized_bank(bank: ImageBank, short_side: int, crop_size: int) -> ImageBank:
    """`bank` with its images resized (antialiased bilinear) to `short_side` on their shorter side."""
    for i, image in enumerate(bank.images):
        scale = short_side / min(image.shape[-2:])
        size = (max(crop_size, round(image.shape[-2] * scale)), max(crop_size, round(image.shape[-1] * scale)))
        resized = F.interpolate(image[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)
        bank.images[i] = resized[0].round().clamp(0, 255).to(torch.uint8)
    return bank


def switch_upsampling(net: AdaINStyleTransfer, config: dict, upsample: str) -> AdaINStyleTransfer:
    """The same decoder with another upsampling mode (it has no weights, so the trained ones fit)."""
    switched = AdaINStyleTransfer(**{**config, "upsample": upsample})
    switched.load_state_dict(net.state_dict())
    return switched


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    net = initial_model(args, AdaINStyleTransfer, ADAIN_DEFAULTS, config_names=ADAIN_CONFIG_NAMES)
    config = dict(net._hub_mixin_config or {})
    if args.upsample is not None and args.upsample != config.get("upsample", "nearest"):
        net = switch_upsampling(net, config, args.upsample)
    args.upsample = net._hub_mixin_config.get("upsample", "nearest")  # the card's arguments say what trained
    trainer = Trainer(args, "adain")
    device = trainer.device
    min_size = min(args.crop_size, 16)  # smaller images are scaled up to --resize
    contents = resized_bank(image_bank(args, args.content_dirs, min_size, device), args.resize, args.crop_size)
    styles = resized_bank(ImageBank(args.style_dirs, min_size, device), args.resize, args.crop_size)
    net.to(device)
    optimizer = torch.optim.Adam(net.decoder.parameters(), lr=args.lr)
    decoder, optimizer = trainer.prepare(net.decoder, optimizer)  # the encoder is frozen and not saved

    def train_step(step: int, rng: torch.Generator) -> dict[str, float]:
        content = contents.random_crops(args.batch_size, args.crop_size, rng)
        style = styles.random_crops(args.batch_size, args.crop_size, rng)
        with trainer.accelerator.autocast():
            with torch.no_grad():
                style_features = net.encode(style)
                content_features = net.encode(content)["relu4_1"]
                target = adain(content_features, style_features["relu4_1"])
            out_features = net.encode(decoder(target).float())
            c_loss = content_loss(out_features["relu4_1"], target)
            s_loss = adain_style_loss(out_features, style_features)
            loss = c_loss + args.style_weight * s_loss
            logs = {"content": c_loss.item(), "style": s_loss.item()}
            if args.identity_weight > 0:
                identity = (F.l1_loss(decoder(content_features).float(), content)
                            + F.l1_loss(decoder(style_features["relu4_1"]).float(), style))
                loss = loss + args.identity_weight * identity
                logs["identity"] = identity.item()
        trainer.optimize(loss, optimizer)
        return {"loss": loss.item(), **logs}

    rng = torch.Generator().manual_seed(1234)
    fixed_content = contents.random_crops(4, args.crop_size, rng)
    fixed_style = styles.random_crops(4, args.crop_size, rng)

    def sample(step: int) -> torch.Tensor:
        """Rows: content, style, stylised, and the content reconstructed (alpha 0 through the decoder)."""
        with trainer.accelerator.autocast():
            features = net.encode(fixed_content)["relu4_1"]
            stylised = decoder(adain(features, net.encode(fixed_style)["relu4_1"])).float()
            reconstructed = decoder(features).float()
        return torch.cat([fixed_content, fixed_style, stylised, reconstructed])

    trainer.fit(train_step, [decoder], sample_fn=sample, sample_nrow=4)
    history = run_history(trainer, args.init_from)
    export = trainer.export(net, "final", "adain.md", encoder=net.encoder.describe(),
                            content_dirs=data_sources(args, args.content_dirs), init_from=args.init_from,
                            style_dirs=[str(d) for d in args.style_dirs], content_images=len(contents),
                            style_images=len(styles), **history)
    write_history(export, history["history"])
    trainer.end()


if __name__ == "__main__":
    main()
