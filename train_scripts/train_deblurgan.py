"""Train DeblurGAN (Kupyn et al. 2018): a ResNet generator against a PatchGAN WGAN-GP critic,
generator loss = adversarial + 100 x perceptual (VGG conv3_3), on synthetic motion blur.

    accelerate launch train_scripts/train_deblurgan.py --train-dirs ../shared/data/sr/train/* \
        --shake-lengths 1 100 --held-out ../shared/data/sr/bench/Set5 ../shared/data/sr/bench/Set14 \
        ../shared/data/blur/bench/levin ../shared/data/blur/kernels \
        --output-dir runs/deblurgan --vgg-weights imagenet --mixed-precision bf16

(Levin's kernels and `kernels_12.npz` are evaluation-only: `--held-out` refuses them as `--kernels-dir`.)

Training pairs are made on the fly: random crops of sharp images, blurred with a
random camera-shake trajectory kernel or (with `--kernels-dir`, a fraction
`--recorded-fraction` of the time) a recorded kernel, plus mild Gaussian noise.
`--pair-dirs` takes folders of real blurred/sharp pairs instead (GoPro layout:
`<scene>/blur/*.png` beside `<scene>/sharp/*.png`); both may be given, and a
step then draws half its batch from each.

Two stages work best on a small budget, as SRResNet before SRGAN: first the generator alone on
L1 (`--adversarial-weight 0 --perceptual-weight 0 --pixel-weight 1 --beta1 0.9`; no critic is
built), then the GAN recipe from that start (`--init-from runs/deblurgan-l1/final`). The start may also
be a `DeblurUNet` (train_deblur_unet.py); `--shake-lengths` then makes the pairs as that script does.

`--held-out` names evaluation sets: their images are dropped from `--train-dirs`, and a recorded kernel
that belongs to one stops the run before it starts.
"""

import argparse

import torch
import torch.nn.functional as F

from ganzoo.blur_sets import HeldOut
from ganzoo.data import add_dataset_args, data_sources, image_bank
from ganzoo.degrade import BlurSynthesizer, ShakeBlur, load_kernels
from ganzoo.evaluate import evaluate_deblur
from ganzoo.losses import PerceptualLoss, gradient_penalty, wgan_d_loss, wgan_g_loss
from ganzoo.models import DeblurGANGenerator, DeblurUNet, PatchGANCritic
from ganzoo.models.vgg import VGGFeatures
from ganzoo.pipelines import deblurrer
from ganzoo.training import (Trainer, add_training_args, add_vgg_args, adversarial_step, initial_model, run_history,
                             write_history)


GENERATOR_DEFAULTS = {"channels": 64, "num_blocks": 9, "dropout": 0.0}  # a new generator's architecture


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--train-dirs", nargs="*", default=[], help="folders of sharp images to blur synthetically")
    data.add_argument("--pair-dirs", nargs="*", default=[], help="folders of real blurred/sharp pairs (GoPro layout)")
    data.add_argument("--kernels-dir", default=None, help="recorded blur kernels (.npz/.png) to mix in")
    data.add_argument("--recorded-fraction", type=float, default=0.5,
                      help="share of synthetic pairs blurred with a recorded kernel (the rest: random trajectories)")
    data.add_argument("--kernel-size", type=int, default=31, help="size of the random trajectory kernels")
    data.add_argument("--noise-sigma", type=float, default=0.01, help="noise std drawn from [0, this] per image")
    data.add_argument("--circular-fraction", type=float, default=0.0,
                      help="share of synthetic pairs blurred with circular instead of reflect borders (as synthetic "
                           "benchmarks such as Levin's are made)")
    data.add_argument("--crop-size", type=int, default=256)
    data.add_argument("--held-out", nargs="*", default=[], metavar="SET",
                      help="evaluation sets (benchmark folders, image folders, kernel files or folders) that "
                           "training must never read")
    data.add_argument("--shake-lengths", type=float, nargs=2, metavar=("LOW", "HIGH"),
                      help="blur with degrade.ShakeBlur instead: camera paths of these lengths, kernels up to "
                           "--max-kernel px, noise up to --noise-sigma, clipped highlights (no recorded kernels)")
    data.add_argument("--max-kernel", type=int, default=75)
    data.add_argument("--sized-fraction", type=float, default=0.0,
                      help="with --shake-lengths: share of kernels stretched to span a random size up to --max-kernel")
    data.add_argument("--val-dir", default=None, help="validation pairs (e.g. the Levin benchmark folder)")
    data.add_argument("--eval-every", type=int, default=1000)
    data.add_argument("--synthetic-data", action="store_true",
                      help="reuse one in-memory batch every step: times the model alone, to compare with the "
                           "real pipeline and show the data is not the bottleneck")
    model = parser.add_argument_group("model and loss")
    start = model.add_mutually_exclusive_group()
    start.add_argument("--init-from", default=None,
                       help="start from a trained generator (bundled name, export folder or Hub repo id); its config "
                            "decides the architecture")
    start.add_argument("--init-from-checkpoint", default=None, metavar="CHECKPOINT",
                       help="start from the generator in a checkpoints/checkpoint-N folder of a run of this script "
                            "(give that run's --channels/--num-blocks/--dropout)")
    model.add_argument("--channels", type=int, default=None, help=f"default {GENERATOR_DEFAULTS['channels']}")
    model.add_argument("--num-blocks", type=int, default=None, help=f"default {GENERATOR_DEFAULTS['num_blocks']}")
    model.add_argument("--dropout", type=float, default=None, help=f"default {GENERATOR_DEFAULTS['dropout']}")
    model.add_argument("--critic-channels", type=int, default=64)
    model.add_argument("--perceptual-weight", type=float, default=100.0)
    model.add_argument("--pixel-weight", type=float, default=0.0,
                       help="optional L1 term (0 in the paper; see the card of the bundled model for why it uses one)")
    model.add_argument("--adversarial-weight", type=float, default=1.0, help="0: no critic (a pretraining stage)")
    model.add_argument("--gp-weight", type=float, default=10.0)
    add_vgg_args(model)
    model.add_argument("--lr", type=float, default=1e-4)
    model.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (0.5 as in DeblurGAN)")
    add_dataset_args(parser, paired=True)
    add_training_args(parser, max_steps=100_000, batch_size=8, checkpoint_every=1000, sample_every=500)
    args = parser.parse_args(argv)
    if not args.train_dirs and not args.pair_dirs and not (args.dataset_name or args.train_data_dir):
        parser.error("give --train-dirs (sharp images), --pair-dirs (blurred/sharp pairs) and/or --dataset-name")
    if args.shake_lengths and args.kernels_dir:
        parser.error("--shake-lengths blurs with random camera shake only; drop --kernels-dir")
    weights = (args.adversarial_weight, args.perceptual_weight, args.pixel_weight)
    if min(weights) < 0 or max(weights) == 0:
        parser.error("loss weights must be >= 0 and at least one of them > 0")
    return args


def deblur_batches(args: argparse.Namespace, device: torch.device):
    """A step's (blurred, sharp) crops: synthetic blur of sharp crops and/or real pairs."""
    held_out = HeldOut(args.held_out)
    kernels = load_kernels(args.kernels_dir) if args.kernels_dir else None
    if kernels:
        held_out.check_kernels(kernels, args.kernels_dir)
    dropped = held_out.split_images(args.train_dirs)[1] if args.train_dirs else []
    shake = ShakeBlur(args.crop_size, tuple(args.shake_lengths), args.max_kernel, args.noise_sigma,
                      sized_fraction=args.sized_fraction) if args.shake_lengths else None
    sharp_bank = image_bank(args, args.train_dirs, shake.region_size if shake else args.crop_size, device,
                            optional=True, exclude=set(dropped))
    pair_bank = image_bank(args, args.pair_dirs, args.crop_size, device, paired=True, optional=True)
    synthesizer = BlurSynthesizer(kernels, args.recorded_fraction if kernels else 0.0, args.kernel_size,
                                  (0.0, args.noise_sigma), args.circular_fraction)
    both = sharp_bank is not None and pair_bank is not None

    def fresh(rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        parts = []
        n_real = args.batch_size // 2 if both else (args.batch_size if pair_bank else 0)
        if pair_bank is not None:
            parts.append(pair_bank.random_pairs(n_real, args.crop_size, rng))
        if sharp_bank is not None:
            if shake is not None:
                parts.append(shake(sharp_bank.random_crops(args.batch_size - n_real, shake.region_size, rng), rng))
            else:
                sharp = sharp_bank.random_crops(args.batch_size - n_real, args.crop_size, rng)
                parts.append((synthesizer(sharp, rng)[0], sharp))
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    description = {
        "sharp_images": len(sharp_bank) if sharp_bank else 0,
        "pairs": len(pair_bank) if pair_bank else 0,
        "recorded_kernels": len(kernels) if kernels else 0,
        "held_out_images_dropped": len(dropped), **held_out.describe(),
        "shake_saturation": shake.saturation if shake else None,  # the card's data line (train_deblur_unet: a flag)
    }
    if args.synthetic_data:
        fixed = fresh(torch.Generator().manual_seed(0))
        return (lambda rng: fixed), description
    return fresh, description


def load_generator(args: argparse.Namespace) -> DeblurGANGenerator | DeblurUNet:
    """A new generator, or the trained one --init-from names: a DeblurUNet is fine-tuned as a DeblurGAN too."""
    return initial_model(args, DeblurGANGenerator, GENERATOR_DEFAULTS, (DeblurGANGenerator, DeblurUNet))


def main(argv=None) -> None:
    args = parse_args(argv)
    generator = load_generator(args)  # before the data: a wrong --init-from fails fast
    trainer = Trainer(args, "deblurgan")
    next_batch, data_description = deblur_batches(args, trainer.device)
    g_opt = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    generator, g_opt = trainer.prepare(generator, g_opt)
    critic = d_opt = None
    if args.adversarial_weight > 0:
        critic = PatchGANCritic(channels=args.critic_channels)
        d_opt = torch.optim.Adam(critic.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
        critic, d_opt = trainer.prepare(critic, d_opt)
    features = perceptual = None
    if args.perceptual_weight > 0:
        features = VGGFeatures(("conv3_3",), weights=args.vgg_weights, weights_path=args.vgg_weights_path,
                               pool=args.vgg_pool)
        perceptual = PerceptualLoss(features).to(trainer.device)
    unwrap = trainer.accelerator.unwrap_model

    def generator_loss(fake: torch.Tensor, sharp: torch.Tensor, disc) -> tuple[torch.Tensor, dict[str, float]]:
        pixel = F.l1_loss(fake, sharp)
        loss, logs = args.pixel_weight * pixel, {"l1": pixel.item()}
        if disc is not None:
            adversarial = wgan_g_loss(disc(fake).float())
            loss, logs["g_adv"] = loss + args.adversarial_weight * adversarial, adversarial.item()
        if perceptual is not None:
            content = perceptual(fake, sharp)
            loss, logs["perceptual"] = loss + args.perceptual_weight * content, content.item()
        return loss, logs

    def train_step(step: int, rng: torch.Generator) -> dict[str, float]:
        blurred, sharp = next_batch(rng)
        fake = generator(blurred).float()
        if critic is None:
            loss, logs = generator_loss(fake, sharp, None)
            trainer.optimize(loss, g_opt)
            return logs

        def d_loss(disc):
            wasserstein = wgan_d_loss(disc(sharp).float(), disc(fake.detach()).float())
            penalty = gradient_penalty(disc, sharp, fake)
            return wasserstein + args.gp_weight * penalty, {"d_wasserstein": wasserstein.item(), "gp": penalty.item()}

        return adversarial_step(trainer, critic, d_opt, g_opt, d_loss, lambda disc: generator_loss(fake, sharp, disc))

    fixed_blurred, fixed_sharp = next_batch(torch.Generator().manual_seed(1234))
    fixed_blurred, fixed_sharp = fixed_blurred[:4], fixed_sharp[:4]

    def sample(step: int) -> torch.Tensor:
        with trainer.accelerator.autocast():
            deblurred = unwrap(generator)(fixed_blurred).float().clamp(0, 1)
        return torch.cat([fixed_blurred, deblurred, fixed_sharp])

    def validate(step: int) -> dict[str, float]:
        scores = evaluate_deblur(deblurrer(unwrap(generator), device=trainer.device), args.val_dir,
                                 reference=False, progress=False)
        unwrap(generator).to(trainer.device).train()
        return {k: scores[k] for k in ("psnr", "ssim", "psnr_input", "ssim_input")}

    models = [generator] if critic is None else [generator, critic]
    metrics = trainer.fit(train_step, models, sample_fn=sample,
                          eval_fn=validate if args.val_dir else None, eval_every=args.eval_every, sample_nrow=4)
    fields = {"metrics": metrics, "perceptual_loss": features.describe() if features else "no perceptual term",
              "data": data_description, "train_dirs": data_sources(args, args.train_dirs),
              "pair_dirs": data_sources(args, args.pair_dirs, paired=True),
              "kernels_dir": args.kernels_dir, "init_from": args.init_from or args.init_from_checkpoint}
    card = "deblur-unet.md" if isinstance(unwrap(generator), DeblurUNet) else "deblurgan.md"
    fields.update(run_history(trainer, fields["init_from"]))
    write_history(trainer.export(generator, "final", card, **fields), fields["history"])
    if critic is not None:
        trainer.export(critic, "critic", "deblurgan.md", **fields)
    trainer.end()


if __name__ == "__main__":
    main()
