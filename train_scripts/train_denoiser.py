"""Train the noise-level-conditional denoiser (`Denoiser`, FFDNet-like): the learned prior of plug-and-play
deconvolution (`ganzoo deblur --kernel K --deconvolution pnp`, `deconvolution.deconvolve(method="pnp")`).

    python train_scripts/train_denoiser.py --train-dirs ../shared/data/sr/train/bsds500_train \
        --held-out runs/eval/deblur-large runs/eval/deblur-moderate ../shared/data/blur/bench/levin \
        --output-dir runs/denoiser --cpu --time-limit 45 --fit-schedule-to-time 120

(the bundled `denoiser`, on one CPU thread; it also held out the 34 BSDS500-train images of the development sets
its plug-and-play weight was chosen on: runs/dev/src_rgb, runs/dev/src_grey, runs/dev-images/b and c).

Pairs are made on the fly: a random crop, and the same crop plus white Gaussian noise of a std drawn
uniformly from [0, 50/255] (one level per crop, DPIR's range), unrounded, as plug-and-play feeds the
denoiser the unrounded iterates of its Fourier step. `--held-out` drops the images of the evaluation sets.
Loss: L1 (DPIR's). Adam with a cosine learning rate from `--lr` to `--min-lr`.
"""

import argparse
import math

import torch
import torch.nn.functional as F

from ganzoo.blur_sets import HeldOut
from ganzoo.data import ImageBank
from ganzoo.models import Denoiser
from ganzoo.models.denoiser import SIGMA_MAX
from ganzoo.training import Trainer, add_training_args, initial_model, run_history, write_history

DENOISER_DEFAULTS = {"channels": 64, "layers": 8}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--train-dirs", nargs="+", required=True, help="folders of clean images")
    data.add_argument("--held-out", nargs="*", default=[], metavar="SET",
                      help="evaluation sets (benchmark or image folders) whose images training must never read")
    data.add_argument("--crop-size", type=int, default=64)
    model = parser.add_argument_group("model and optimiser")
    model.add_argument("--init-from", default=None, help="a trained Denoiser to continue (name, folder or Hub id)")
    model.add_argument("--channels", type=int, default=None, help=f"default {DENOISER_DEFAULTS['channels']}")
    model.add_argument("--layers", type=int, default=None, help=f"default {DENOISER_DEFAULTS['layers']}")
    model.add_argument("--lr", type=float, default=1e-3)
    model.add_argument("--min-lr", type=float, default=1e-6)
    model.add_argument("--warmup-steps", type=int, default=100)
    add_training_args(parser, max_steps=20000, batch_size=16, checkpoint_every=500, sample_every=1000)
    return parser.parse_args(argv)


def learning_rate(args: argparse.Namespace, step: int) -> float:
    """Linear warm-up, then cosine decay to `--min-lr` at `--max-steps` (read each step: the schedule probe
    may lower it)."""
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    progress = min((step - args.warmup_steps) / max(args.max_steps - args.warmup_steps, 1), 1.0)
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * progress))


def noisy_pairs(clean: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy crops, their noise levels [B]): one level per crop, uniform on [0, SIGMA_MAX]."""
    sigma = torch.rand(clean.shape[0], generator=rng, device=clean.device) * SIGMA_MAX
    noise = torch.randn(clean.shape, generator=rng, device=clean.device)
    return clean + sigma.view(-1, 1, 1, 1) * noise, sigma


def main(argv=None) -> None:
    args = parse_args(argv)
    model = initial_model(args, Denoiser, DENOISER_DEFAULTS)
    held_out = HeldOut(args.held_out)
    train_paths, dropped = held_out.split_images(args.train_dirs)
    trainer = Trainer(args, "denoiser")
    bank = ImageBank(args.train_dirs, args.crop_size, trainer.device, exclude=set(dropped))
    print(f"{len(bank)} training images ({len(dropped)} held out, {bank.skipped} smaller than {args.crop_size} px)")
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    model, optimizer = trainer.prepare(model, optimizer)

    def train_step(step: int, rng: torch.Generator) -> dict[str, float]:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(args, step)
        clean = bank.random_crops(args.batch_size, args.crop_size, rng)
        noisy, sigma = noisy_pairs(clean, rng)
        with trainer.accelerator.autocast():
            denoised = model(noisy, sigma).float()
        loss = F.l1_loss(denoised, clean)
        trainer.optimize(loss, optimizer)
        return {"l1": loss.item(), "lr": optimizer.param_groups[0]["lr"]}

    fixed_clean = bank.random_crops(4, args.crop_size, torch.Generator().manual_seed(1234))
    fixed_sigma = torch.tensor([5.0, 15.0, 30.0, 50.0]) / 255
    fixed_noisy = fixed_clean + fixed_sigma.view(-1, 1, 1, 1) * torch.randn(
        fixed_clean.shape, generator=torch.Generator().manual_seed(1234))
    fixed_noisy, fixed_sigma = fixed_noisy.to(trainer.device), fixed_sigma.to(trainer.device)

    def sample(step: int) -> torch.Tensor:
        denoised = trainer.accelerator.unwrap_model(model)(fixed_noisy, fixed_sigma).float()
        return torch.cat([fixed_noisy.clamp(0, 1), denoised.clamp(0, 1), fixed_clean])

    trainer.fit(train_step, [model], sample_fn=sample, sample_nrow=4)
    fields = {"data": {"clean_images": len(bank), "held_out_images_dropped": len(dropped), **held_out.describe()},
              "train_dirs": args.train_dirs, "init_from": args.init_from, **run_history(trainer, args.init_from)}
    write_history(trainer.export(model, "final", "denoiser.md", **fields), fields["history"])
    trainer.end()


if __name__ == "__main__":
    main()
