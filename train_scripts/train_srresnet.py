"""Train SRResNet (Ledig et al. 2017) with a pixel loss: the PSNR-oriented model and SRGAN's starting point.

    accelerate launch train_scripts/train_srresnet.py --train-dirs ../shared/data/sr/train/* \
        --val-dir ../shared/data/sr/bench/Set5 --output-dir runs/srresnet-x4 --mixed-precision bf16

`--init-from` continues a trained SRResNet (its config decides the architecture; the card sums the runs).
`--trunk-from` starts a new one (say `--upsample bilinear`) from a trained SRResNet's head, residual blocks and tail;
its sub-pixel filters, averaged over their 2x2 phases, start the new upsampler.
`--lattice-weight` adds `ganzoo.losses.lattice_loss`: the residual's local period-2/4 pixel lattice, the part of
the error the grid-artefact score sees and plain MSE barely weighs.
"""

import argparse
import math

import torch
import torch.nn.functional as F
from torch import nn

import ganzoo
from ganzoo.data import add_sr_data_args, data_sources, image_bank, sr_batches
from ganzoo.models import SRResNet
from ganzoo.models.srgan import SR_UPSAMPLE_MODES
from ganzoo.losses import focal_frequency_loss, lattice_loss
from ganzoo.training import Trainer, add_training_args, initial_model, run_history, sr_callbacks, write_history

SRRESNET_DEFAULTS = {"num_blocks": 16, "channels": 64, "upsample": "pixelshuffle"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sr_data_args(parser)
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--init-from", default=None, help="a trained SRResNet (name, export folder or Hub id) to "
                                                         "continue; its config decides the architecture")
    start.add_argument("--trunk-from", default=None, help="a trained SRResNet whose head, residual blocks and tail "
                                                          "start this new model (the upsampler from its filters)")
    parser.add_argument("--upsample", choices=SR_UPSAMPLE_MODES, default=None,
                        help=f"x2 upsampling step (default {SRRESNET_DEFAULTS['upsample']}; see SRResNet)")
    parser.add_argument("--num-blocks", type=int, default=None, help=f"default {SRRESNET_DEFAULTS['num_blocks']}")
    parser.add_argument("--channels", type=int, default=None, help=f"default {SRRESNET_DEFAULTS['channels']}")
    parser.add_argument("--pixel-loss", choices=["mse", "l1"], default="mse")
    parser.add_argument("--lattice-weight", type=float, default=0.0,
                        help="weight of the residual's local period-2/4 lattice energy (ganzoo.losses.lattice_loss)")
    parser.add_argument("--frequency-weight", type=float, default=0.0,
                        help="focal frequency loss term (Jiang et al. 2021)")
    parser.add_argument("--lr", type=float, default=2e-4)
    add_training_args(parser, max_steps=100_000, batch_size=16, checkpoint_every=2000, sample_every=2000)
    return parser.parse_args(argv)


def cosine_factor(step: int, total: int, floor: float = 0.01) -> float:
    """Learning-rate multiplier: cosine from 1 at step 0 to `floor` at `total`, then flat."""
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step / max(total, 1), 1.0)))


def copy_trunk(source: nn.Module, model: SRResNet) -> None:
    """`source`'s weights into `model` wherever names and shapes match; each sub-pixel conv of `source` that
    meets a resize-convolution conv gives it its filters averaged over the 2x2 output phases (so it starts by
    computing the mean of what the four phases computed)."""
    if not isinstance(source, SRResNet) or source.scale != model.scale:
        raise SystemExit(f"--trunk-from must be an SRResNet x{model.scale}, got {type(source).__name__}")
    target, copied = model.state_dict(), {}
    source_convs = [m for m in source.upsample if isinstance(m, nn.Conv2d)]
    target_convs = [m for m in model.upsample if isinstance(m, nn.Conv2d)]
    for name, value in source.state_dict().items():
        if name in target and target[name].shape == value.shape:
            copied[name] = value
    model.load_state_dict(copied, strict=False)
    with torch.no_grad():
        for from_conv, to_conv in zip(source_convs, target_convs):
            if from_conv.weight.shape != to_conv.weight.shape:  # sub-pixel (4C outputs) -> resize-conv (C)
                to_conv.weight.copy_(from_conv.weight.unflatten(0, (-1, 4)).mean(1))
                to_conv.bias.copy_(from_conv.bias.unflatten(0, (-1, 4)).mean(1))


def main(argv=None) -> None:
    args = parse_args(argv)
    model = initial_model(args, SRResNet, SRRESNET_DEFAULTS | {"scale": args.scale})  # before the data: fails fast
    if args.trunk_from:
        copy_trunk(ganzoo.load(args.trunk_from), model)
    trainer = Trainer(args, "srresnet")
    bank = image_bank(args, args.train_dirs, args.crop_size, trainer.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
    # Cosine to lr/100 over --max-steps, read at every step, so --fit-schedule-to-time can shorten it mid-run.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_factor(step, args.max_steps))
    model, optimizer = trainer.prepare(model, optimizer)
    trainer.accelerator.register_for_checkpointing(scheduler)  # stepped by hand: once per optimiser update
    pixel_loss = F.mse_loss if args.pixel_loss == "mse" else F.l1_loss
    next_batch = sr_batches(args, bank)

    def train_step(step: int, rng: torch.Generator) -> dict[str, float]:
        hr, lr = next_batch(rng)
        sr = model(lr).float()
        pixel = pixel_loss(sr, hr)
        lattice = lattice_loss(sr, hr) if args.lattice_weight else sr.new_zeros(())
        frequency = focal_frequency_loss(sr, hr) if args.frequency_weight else sr.new_zeros(())
        loss = pixel + args.lattice_weight * lattice + args.frequency_weight * frequency
        trainer.optimize(loss, optimizer)
        if trainer.accelerator.sync_gradients:
            scheduler.step()
        return {"loss": loss.item(), "pixel": pixel.item(), "lattice": lattice.item(), "lr": scheduler.get_last_lr()[0]}

    sample, validate = sr_callbacks(trainer, args, model, bank)
    metrics = trainer.fit(train_step, [model], sample_fn=sample, eval_fn=validate, eval_every=args.eval_every,
                          sample_nrow=4)
    terms = [f"pixel {args.pixel_loss.upper()}"] + [
        f"{weight:g} x {name}" for weight, name in ((args.lattice_weight, "lattice (local period-2/4 residual)"),
                                                    (args.frequency_weight, "focal frequency")) if weight]
    fields = run_history(trainer, args.init_from or args.trunk_from)
    write_history(trainer.export(model, "final", "super-resolution.md", metrics=metrics,
                                 train_dirs=data_sources(args, args.train_dirs), images=len(bank),
                                 content_loss=" + ".join(terms), continued_from=args.init_from or args.trunk_from,
                                 **fields),
                  fields["history"])
    trainer.end()


if __name__ == "__main__":
    main()
