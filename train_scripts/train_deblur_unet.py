"""Train the deblurring U-Net (NAFNet blocks, `DeblurUNet`) for PSNR on blur it will never be scored on.

    python train_scripts/train_deblur_unet.py --train-dirs ../shared/data/sr/train/* \
        --held-out runs/eval/deblur-large runs/eval/deblur-moderate ../shared/data/sr/bench/Set5 \
            ../shared/data/blur/bench/levin ../shared/data/blur/kernels \
        --output-dir runs/deblur-unet --time-limit 60

Every pair is made on the fly: a random crop's surrounding region is blurred by a fresh Boracchi-Foi
camera-shake trajectory (path length uniform in `--lengths`, kernels up to `--max-kernel` px), so every
pixel of the crop is blurred from real image content; then sensor noise, sometimes clipped highlights,
and 8-bit rounding (`degrade.ShakeBlur`). No recorded kernel is used. `--held-out` names the evaluation
sets: their images are dropped from the training folders and their kernels may not appear in training.
Loss: Charbonnier (a smooth L1). AdamW with a cosine learning rate from `--lr` to `--min-lr`.
A run that continues another (`--init-from`) adds its steps and hours to the model's training history.

`--pair-dirs` trains on ready-made (input, sharp) pairs instead, in the `data.blur_pairs` layout: the refiner of
blind deblurring learns from `make_refiner_pairs.py`'s (deconvolved with the estimated kernel, sharp) pairs.
With both, half of each batch comes from each source.
"""

import argparse
import math
from pathlib import Path

import torch

from ganzoo.blur_sets import HeldOut
from ganzoo.data import ImageBank, PairedImageBank, sharp_folders
from ganzoo.degrade import ShakeBlur
from ganzoo.models import DeblurUNet
from ganzoo.training import Trainer, add_training_args, initial_model, run_history, write_history


UNET_DEFAULTS = {"channels": 16, "encoder_blocks": [1, 1, 1, 2], "middle_blocks": 2, "decoder_blocks": [1, 1, 1, 1]}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--train-dirs", nargs="*", default=[], help="folders of sharp images (blurred on the fly)")
    data.add_argument("--pair-dirs", nargs="*", default=[],
                      help="folders of aligned (input, sharp) pairs: `blur*/` beside `sharp/`, e.g. "
                           "make_refiner_pairs.py's output")
    data.add_argument("--held-out", nargs="*", default=[], metavar="SET",
                      help="evaluation sets (benchmark folders, image folders, kernel files or folders) that "
                           "training must never read")
    data.add_argument("--crop-size", type=int, default=128)
    data.add_argument("--lengths", type=float, nargs=2, default=(1.0, 100.0), metavar=("LOW", "HIGH"),
                      help="camera path lengths in px")
    data.add_argument("--max-kernel", type=int, default=75, help="largest kernel side in px")
    data.add_argument("--max-noise", type=float, default=0.02, help="noise std drawn from [0, this]")
    data.add_argument("--saturation", type=float, default=0.2, help="share of crops with clipped highlights")
    data.add_argument("--sized-fraction", type=float, default=0.0,
                      help="share of kernels stretched to span a random size up to --max-kernel")
    model = parser.add_argument_group("model and optimiser")
    start = model.add_mutually_exclusive_group()
    start.add_argument("--init-from", default=None, help="a trained DeblurUNet (name, export folder or Hub id); its "
                                                         "config decides the architecture")
    start.add_argument("--init-from-checkpoint", default=None, metavar="CHECKPOINT",
                       help="the model in a checkpoints/checkpoint-N folder of a run of this script (give that "
                            "run's architecture flags)")
    model.add_argument("--channels", "--width", type=int, default=None, help=f"default {UNET_DEFAULTS['channels']}")
    model.add_argument("--encoder-blocks", type=int, nargs="+", default=None,
                       help=f"default {' '.join(map(str, UNET_DEFAULTS['encoder_blocks']))}")
    model.add_argument("--middle-blocks", type=int, default=None, help=f"default {UNET_DEFAULTS['middle_blocks']}")
    model.add_argument("--decoder-blocks", type=int, nargs="+", default=None,
                       help=f"default {' '.join(map(str, UNET_DEFAULTS['decoder_blocks']))}")
    model.add_argument("--lr", type=float, default=1e-3)
    model.add_argument("--card", default="deblur-unet.md", help="the model card template in ganzoo/model_cards/ "
                                                                "(deblur-refiner.md for a refiner)")
    model.add_argument("--min-lr", type=float, default=1e-6)
    model.add_argument("--warmup-steps", type=int, default=100)
    model.add_argument("--schedule-steps", type=int, default=None,
                       help="length of the cosine schedule (default: --max-steps)")
    model.add_argument("--weight-decay", type=float, default=0.0)
    add_training_args(parser, max_steps=3000, batch_size=4, checkpoint_every=250, sample_every=250)
    args = parser.parse_args(argv)
    if not args.train_dirs and not args.pair_dirs:
        parser.error("give --train-dirs (sharp images) and/or --pair-dirs (input/sharp pairs)")
    return args


def learning_rate(args: argparse.Namespace, step: int) -> float:
    """Linear warm-up, then cosine decay to `--min-lr` at `--schedule-steps` (a function of the step: resumable)."""
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    total = args.schedule_steps or args.max_steps
    progress = min((step - args.warmup_steps) / max(total - args.warmup_steps, 1), 1.0)
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * progress))


def charbonnier(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((x - y) ** 2 + eps**2).mean()


def load_model(args: argparse.Namespace) -> DeblurUNet:
    """A new U-Net (from --init-from-checkpoint's weights if given), or the trained one --init-from names."""
    return initial_model(args, DeblurUNet, UNET_DEFAULTS)


def main(argv=None) -> None:
    args = parse_args(argv)
    model = load_model(args)  # before the data: a wrong --init-from fails fast
    held_out = HeldOut(args.held_out)
    train_paths, dropped = held_out.split_images(args.train_dirs)
    pair_sharp = [folder for pairs in args.pair_dirs for folder in sharp_folders(Path(pairs))]
    if held_out.split_images(pair_sharp)[1]:
        raise SystemExit(f"--pair-dirs {' '.join(args.pair_dirs)} hold images of a --held-out set: evaluation "
                         "images are never training data")
    synth = ShakeBlur(args.crop_size, tuple(args.lengths), args.max_kernel, args.max_noise, args.saturation,
                      args.sized_fraction)
    trainer = Trainer(args, "deblur-unet")
    bank = ImageBank(args.train_dirs, synth.region_size, trainer.device, exclude=set(dropped)) \
        if args.train_dirs else None
    pairs = PairedImageBank(args.pair_dirs, args.crop_size, trainer.device) if args.pair_dirs else None
    if bank is not None:
        print(f"{len(bank)} training images ({len(dropped)} held out, {bank.skipped} smaller than "
              f"{synth.region_size} px); {len(train_paths)} before the size filter")
    if pairs is not None:
        print(f"{len(pairs)} training pairs ({pairs.skipped} smaller than {args.crop_size} px)")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.9), weight_decay=args.weight_decay)
    model, optimizer = trainer.prepare(model, optimizer)

    def train_step(step: int, rng: torch.Generator) -> dict[str, float]:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(args, step)
        blurred, sharp = next_batch(args.batch_size, rng)
        with trainer.accelerator.autocast():
            restored = model(blurred).float()
        loss = charbonnier(restored, sharp)
        trainer.optimize(loss, optimizer)
        return {"charbonnier": loss.item(), "lr": optimizer.param_groups[0]["lr"]}

    def next_batch(size: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, sharp) crops: synthetic blur of sharp crops and/or ready-made pairs, half each with both."""
        parts = []
        from_pairs = 0 if pairs is None else (size if bank is None else size // 2)
        if from_pairs:
            parts.append(pairs.random_pairs(from_pairs, args.crop_size, rng))
        if size > from_pairs:
            parts.append(synth(bank.random_crops(size - from_pairs, synth.region_size, rng), rng))
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    fixed_blurred, fixed_sharp = next_batch(4, torch.Generator().manual_seed(1234))

    def sample(step: int) -> torch.Tensor:
        restored = trainer.accelerator.unwrap_model(model)(fixed_blurred).float()
        return torch.cat([fixed_blurred, restored, fixed_sharp])

    trainer.fit(train_step, [model], sample_fn=sample, sample_nrow=4)
    start = args.init_from or args.init_from_checkpoint
    fields = {"data": {"sharp_images": len(bank) if bank else 0, "pairs": len(pairs) if pairs else 0,
                       "held_out_images_dropped": len(dropped), **held_out.describe()},
              "train_dirs": args.train_dirs, "pair_dirs": args.pair_dirs, "init_from": start,
              **run_history(trainer, start)}
    write_history(trainer.export(model, "final", args.card, **fields), fields["history"])
    trainer.end()


if __name__ == "__main__":
    main()
