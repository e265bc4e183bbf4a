"""Train the small MNIST classifier that scores generated digits.

    accelerate launch train_scripts/train_mnist_classifier.py --data-dir ../shared/data/mnist --output-dir runs/mnist-classifier
"""

import argparse

import torch
import torch.nn.functional as F

from ganzoo.data import epoch_batch_indices, load_mnist
from ganzoo.models import DigitClassifier
from ganzoo.training import Trainer, add_training_args


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="folder with the MNIST IDX files, or a Hub dataset id")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--channels", "--base-channels", type=int, default=32)
    parser.add_argument("--eval-every", type=int, default=1000)
    add_training_args(parser, max_steps=4000, batch_size=128, checkpoint_every=1000, sample_every=10**9)
    return parser.parse_args(argv)


def random_shift(images: torch.Tensor, rng: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Translate each digit by up to `max_shift` pixels: cheap augmentation that helps generalise."""
    n = images.shape[0]
    padded = F.pad(images, [max_shift] * 4)
    dx, dy = (torch.randint(0, 2 * max_shift + 1, (2, n), generator=rng)).tolist()
    return torch.stack([padded[i, :, y:y + 28, x:x + 28] for i, (x, y) in enumerate(zip(dx, dy))])


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 1000) -> float:
    correct = sum((model(images[i:i + batch]).argmax(1) == labels[i:i + batch]).sum().item()
                  for i in range(0, len(images), batch))
    return correct / len(images)


def main(argv=None) -> None:
    args = parse_args(argv)
    trainer = Trainer(args, "mnist-classifier")
    train_images, train_labels = load_mnist(args.data_dir, "train")
    test_images, test_labels = (t.to(trainer.device) for t in load_mnist(args.data_dir, "test"))
    model = DigitClassifier(channels=args.channels)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.max_steps)
    model, optimizer = trainer.prepare(model, optimizer)
    acc = trainer.accelerator
    acc.register_for_checkpointing(scheduler)  # stepped by hand: once per optimiser update

    def train_step(step: int, rng: torch.Generator) -> dict[str, float]:
        idx = epoch_batch_indices(len(train_images), args.batch_size, step, args.seed,
                                  acc.process_index, acc.num_processes)
        images = random_shift(train_images[idx], rng).to(trainer.device)
        loss = F.cross_entropy(model(images), train_labels[idx].to(trainer.device))
        trainer.optimize(loss, optimizer)
        if acc.sync_gradients:
            scheduler.step()
        return {"loss": loss.item(), "lr": scheduler.get_last_lr()[0]}

    def evaluate(step: int) -> dict[str, float]:
        return {"test_accuracy": accuracy(model, test_images, test_labels)}

    metrics = trainer.fit(train_step, [model], eval_fn=evaluate, eval_every=args.eval_every)
    trainer.export(model, "final", "mnist-classifier.md", metrics=metrics, data=str(args.data_dir))
    trainer.end()


if __name__ == "__main__":
    main()
