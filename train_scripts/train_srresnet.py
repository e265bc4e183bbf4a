"""Train SRResNet (Ledig et al. 2017) with a pixel loss: the PSNR-oriented model and SRGAN's starting point.

    accelerate launch train_scripts/train_srresnet.py --train-dirs ../shared/data/sr/train/* \
        --val-dir ../shared/data/sr/bench/Set5 --output-dir runs/srresnet-x4 --mixed-precision bf16
"""

import argparse

import torch
import torch.nn.functional as F

from ganzoo.data import add_sr_data_args, data_sources, image_bank, sr_batches
from ganzoo.models import SRResNet
from ganzoo.training import Trainer, add_training_args, sr_callbacks


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sr_data_args(parser)
    parser.add_argument("--num-blocks", type=int, default=16)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--pixel-loss", choices=["mse", "l1"], default="mse")
    parser.add_argument("--lr", type=float, default=2e-4)
    add_training_args(parser, max_steps=100_000, batch_size=16, checkpoint_every=2000, sample_every=2000)
    return parser.parse_args(argv)


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
