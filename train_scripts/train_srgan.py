"""Train SRGAN (Ledig et al. 2017): start from a trained SRResNet, add a discriminator,
and train with a content loss + 1e-3 x adversarial loss.

    accelerate launch train_scripts/train_srgan.py --init-from runs/srresnet-x4/final \
        --train-dirs ../shared/data/sr/train/* --val-dir ../shared/data/sr/bench/Set5 \
        --output-dir runs/srgan-x4 --content-loss vgg54 --vgg-weights imagenet --mixed-precision bf16

Content losses: `vgg54` / `vgg22` (VGG19 relu5_4 / relu2_2 features; `--vgg-weights imagenet`
needs torchvision's weights on disk, `random` is the offline alternative) or `dfm`
(feature matching on the discriminator's own activations, as in pix2pixHD).

`--lattice-weight` adds `ganzoo.losses.lattice_loss` with the whole crop as its window: the residual's
period-2/4 pixel lattice, averaged over the crop so that the image's own unpredictable detail mostly
cancels and a lattice the generator paints everywhere stays. Fine-tuned from the resize-convolution
srresnet-x4, the adversarial term alone grows one (README, Grid artefacts).
"""

import argparse

import torch
import torch.nn.functional as F

import ganzoo
from ganzoo.data import add_sr_data_args, data_sources, image_bank, sr_batches
from ganzoo.losses import (PerceptualLoss, d_bce_loss, feature_matching_loss, focal_frequency_loss, g_bce_loss,
                           lattice_loss)
from ganzoo.models import SRGANDiscriminator, SRResNet
from ganzoo.models.vgg import VGGFeatures
from ganzoo.training import Trainer, add_training_args, add_vgg_args, adversarial_step, sr_callbacks

CONTENT_LAYERS = {"vgg54": "relu5_4", "vgg22": "relu2_2"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sr_data_args(parser)
    parser.add_argument("--init-from", required=True, help="trained SRResNet (name, folder or Hub repo id)")
    parser.add_argument("--content-loss", choices=["vgg54", "vgg22", "dfm"], default="vgg54")
    add_vgg_args(parser)
    parser.add_argument("--adversarial-weight", type=float, default=1e-3)
    parser.add_argument("--pixel-weight", type=float, default=0.0, help="optional MSE term (0 in the paper)")
    parser.add_argument("--frequency-weight", type=float, default=0.0,
                        help="focal frequency loss term (Jiang et al. 2021); it sees the lattices VGG54 misses")
    parser.add_argument("--lattice-weight", type=float, default=0.0,
                        help="weight of the crop-wide period-2/4 residual lattice (ganzoo.losses.lattice_loss)")
    parser.add_argument("--lr", type=float, default=1e-4)
    add_training_args(parser, max_steps=100_000, batch_size=16, checkpoint_every=2000, sample_every=1000)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    trainer = Trainer(args, "srgan")
    bank = image_bank(args, args.train_dirs, args.crop_size, trainer.device)
    generator = ganzoo.load(args.init_from)
    if not isinstance(generator, SRResNet) or generator.scale != args.scale:
        raise SystemExit(f"--init-from must be an SRResNet x{args.scale}, got {type(generator).__name__}")
    discriminator = SRGANDiscriminator()
    if args.content_loss == "dfm":
        perceptual, content_description = None, "discriminator feature matching (L1 on all 8 conv activations)"
    else:
        features = VGGFeatures((CONTENT_LAYERS[args.content_loss],), weights=args.vgg_weights,
                               weights_path=args.vgg_weights_path, pool=args.vgg_pool)
        perceptual = PerceptualLoss(features).to(trainer.device)
        content_description = f"{args.content_loss.upper()}: {features.describe()}"
    g_opt = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(0.9, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=args.lr, betas=(0.9, 0.999))
    generator, discriminator, g_opt, d_opt = trainer.prepare(generator, discriminator, g_opt, d_opt)
    next_batch = sr_batches(args, bank)

    def train_step(step: int, rng: torch.Generator) -> dict[str, float]:
        hr, lr = next_batch(rng)
        sr = generator(lr).float()

        def d_loss(disc):
            logits = disc(torch.cat([hr, sr.detach()]))
            loss = d_bce_loss(*logits.float().chunk(2))
            return loss, {"d_loss": loss.item()}

        def g_loss(disc):
            fake_logit, fake_feats = disc(sr, return_features=True)
            adversarial = g_bce_loss(fake_logit.float())
            if perceptual is None:
                _, real_feats = disc(hr, return_features=True)
                content = feature_matching_loss([f.float() for f in fake_feats], [r.float() for r in real_feats])
            else:
                content = perceptual(sr, hr)
            pixel = F.mse_loss(sr, hr)
            frequency = focal_frequency_loss(sr, hr) if args.frequency_weight else sr.new_zeros(())
            lattice = (lattice_loss(sr, hr, window=args.crop_size - args.crop_size % 4) if args.lattice_weight
                       else sr.new_zeros(()))
            loss = (content + args.adversarial_weight * adversarial + args.pixel_weight * pixel
                    + args.frequency_weight * frequency + args.lattice_weight * lattice)
            return loss, {"content": content.item(), "g_adv": adversarial.item(), "mse": pixel.item(),
                          "ffl": frequency.item(), "lattice": lattice.item()}

        return adversarial_step(trainer, discriminator, d_opt, g_opt, d_loss, g_loss)

    sample, validate = sr_callbacks(trainer, args, generator, bank)
    metrics = trainer.fit(train_step, [generator, discriminator], sample_fn=sample, eval_fn=validate,
                          eval_every=args.eval_every, sample_nrow=4)
    trainer.export(generator, "final", "super-resolution.md", metrics=metrics,
                   train_dirs=data_sources(args, args.train_dirs), images=len(bank),
                   content_loss=content_description, init_from=args.init_from)
    trainer.export(discriminator, "discriminator", "super-resolution.md", metrics=metrics,
                   train_dirs=data_sources(args, args.train_dirs), images=len(bank),
                   content_loss=content_description, init_from=args.init_from)
    trainer.end()


if __name__ == "__main__":
    main()
