"""Train SRResNet (Ledig et al. 2017) with a pixel loss: the PSNR-oriented model and SRGAN's starting point.

    accelerate launch train_scripts/train_srresnet.py --train-dirs ../shared/data/sr/train/* \
        --val-dir ../shared/data/sr/bench/Set5 --output-dir runs/srresnet-x4 --mixed-precision bf16
"""

import argparse

import torch
import torch.nn.functional as F

from ganzoo.data import ImageBank, add_dataset_args, data_sources, degrade_bicubic, image_bank
from ganzoo.evaluate import evaluate_sr
from ganzoo.models import SRResNet
from ganzoo.training import Trainer, add_training_args


def add_sr_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train-dirs", nargs="*", default=[], help="folders of high-resolution training images")
    add_dataset_args(parser)
    parser.add_argument("--val-dir", default=None, help="folder of HR images for validation (e.g. Set5)")
    parser.add_argument("--scale", type=int, default=4, choices=[2, 4, 8])
    parser.add_argument("--crop-size", type=int, default=96, help="HR crop size (the paper's 96)")
    parser.add_argument("--eval-every", type=int, default=2000)
    parser.add_argument("--synthetic-data", action="store_true",
                        help="reuse one in-memory batch every step: times the model alone, to compare with the "
                             "real pipeline and show the data is not the bottleneck")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sr_data_args(parser)
    parser.add_argument("--num-blocks", type=int, default=16)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--pixel-loss", choices=["mse", "l1"], default="mse")
    parser.add_argument("--lr", type=float, default=2e-4)
    add_training_args(parser, max_steps=100_000, batch_size=16, checkpoint_every=2000, sample_every=2000)
    return parser.parse_args(argv)


def sr_batches(args: argparse.Namespace, bank: ImageBank):
    """A step's (HR crops, bicubic LR): fresh each step, or with --synthetic-data one fixed pair."""
    def fresh(rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        hr = bank.random_crops(args.batch_size, args.crop_size, rng)
        return hr, degrade_bicubic(hr, args.scale)

    if args.synthetic_data:
        fixed = fresh(torch.Generator().manual_seed(0))
        return lambda rng: fixed
    return fresh


def sr_callbacks(trainer: Trainer, args: argparse.Namespace, generator: torch.nn.Module, bank: ImageBank):
    """Sample comparisons (bicubic | output | HR) and Set5-style validation, shared by both SR scripts."""
    unwrap = trainer.accelerator.unwrap_model
    fixed_hr = bank.random_crops(4, args.crop_size, torch.Generator().manual_seed(1234))
    fixed_lr = degrade_bicubic(fixed_hr, args.scale)

    def sample(step: int) -> torch.Tensor:
        from ganzoo.imaging import imresize
        with trainer.accelerator.autocast():
            sr = unwrap(generator)(fixed_lr).float().clamp(0, 1)
        return torch.cat([imresize(fixed_lr, scale=args.scale).clamp(0, 1), sr, fixed_hr])

    def validate(step: int) -> dict[str, float]:
        scores = evaluate_sr(lambda lr: unwrap(generator)(lr.to(trainer.device)).float(), args.val_dir,
                             args.scale, progress=False)
        return {k: v for k, v in scores.items() if k in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")}

    return sample, (validate if args.val_dir else None)


def main(argv=None) -> None:
    args = parse_args(argv)
    trainer = Trainer(args, "srresnet")
    bank = image_bank(args, args.train_dirs, args.crop_size, trainer.device)
    model = SRResNet(scale=args.scale, num_blocks=args.num_blocks, channels=args.channels)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.max_steps, eta_min=args.lr / 100)
    model, optimizer = trainer.prepare(model, optimizer)
    trainer.accelerator.register_for_checkpointing(scheduler)  # stepped by hand: once per optimiser update
    pixel_loss = F.mse_loss if args.pixel_loss == "mse" else F.l1_loss
    next_batch = sr_batches(args, bank)

    def train_step(step: int, rng: torch.Generator) -> dict[str, float]:
        hr, lr = next_batch(rng)
        loss = pixel_loss(model(lr).float(), hr)
        trainer.optimize(loss, optimizer)
        if trainer.accelerator.sync_gradients:
            scheduler.step()
        return {"loss": loss.item(), "lr": scheduler.get_last_lr()[0]}

    sample, validate = sr_callbacks(trainer, args, model, bank)
    metrics = trainer.fit(train_step, [model], sample_fn=sample, eval_fn=validate, eval_every=args.eval_every,
                          sample_nrow=4)
    trainer.export(model, "final", "super-resolution.md", metrics=metrics,
                   train_dirs=data_sources(args, args.train_dirs), images=len(bank),
                   content_loss=f"pixel {args.pixel_loss.upper()}")
    trainer.end()


if __name__ == "__main__":
    main()
