"""Train the class-conditional DCGAN on MNIST (the class is a one-hot input to both networks).

    accelerate launch train_scripts/train_mnist_gan.py --data-dir ../shared/data/mnist \
        --output-dir runs/mnist-dcgan --classifier runs/mnist-classifier/final
"""

import argparse

import torch

from ganzoo import load
from ganzoo.data import epoch_batch_indices, load_mnist
from ganzoo.evaluate import evaluate_digits
from ganzoo.losses import d_bce_loss, g_bce_loss
from ganzoo.models import DigitDiscriminator, DigitGenerator
from ganzoo.training import Trainer, add_training_args, adversarial_step


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="folder with the MNIST IDX files, or a Hub dataset id")
    parser.add_argument("--latent-dim", type=int, default=100)
    parser.add_argument("--channels", "--base-channels", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--classifier", default=None,
                        help="trained DigitClassifier (name, folder or repo) to score samples during training")
    parser.add_argument("--eval-every", type=int, default=2000)
    parser.add_argument("--eval-samples-per-class", type=int, default=500)
    add_training_args(parser, max_steps=10000, batch_size=128, checkpoint_every=1000, sample_every=500)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    trainer = Trainer(args, "mnist-dcgan")
    images, labels = load_mnist(args.data_dir, "train")
    generator = DigitGenerator(latent_dim=args.latent_dim, channels=args.channels)
    discriminator = DigitDiscriminator(channels=args.channels)
    betas = (0.5, 0.999)  # DCGAN's Adam settings
    g_opt = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=betas)
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=args.lr, betas=betas)
    generator, discriminator, g_opt, d_opt = trainer.prepare(generator, discriminator, g_opt, d_opt)
    acc, device = trainer.accelerator, trainer.device

    def train_step(step: int, rng: torch.Generator) -> dict[str, float]:
        idx = epoch_batch_indices(len(images), args.batch_size, step, args.seed, acc.process_index,
                                  acc.num_processes)
        real, real_labels = images[idx].to(device), labels[idx].to(device)
        z = torch.randn(len(idx), args.latent_dim, generator=rng).to(device)
        fake_labels = torch.randint(0, 10, (len(idx),), generator=rng).to(device)
        fake = generator(z, fake_labels)

        def d_loss(disc):
            logits = disc(torch.cat([real, fake.detach()]), torch.cat([real_labels, fake_labels]))
            loss = d_bce_loss(*logits.chunk(2))
            return loss, {"d_loss": loss.item()}

        def g_loss(disc):
            loss = g_bce_loss(disc(fake, fake_labels))
            return loss, {"g_loss": loss.item()}

        return adversarial_step(trainer, discriminator, d_opt, g_opt, d_loss, g_loss)

    def sample(step: int) -> torch.Tensor:
        generator.eval()
        out = acc.unwrap_model(generator).sample(torch.arange(10).repeat_interleave(8), seed=args.seed)
        generator.train()
        return out

    classifier = load(args.classifier, device=str(device)) if args.classifier else None

    def evaluate(step: int) -> dict[str, float]:
        scores = evaluate_digits(acc.unwrap_model(generator), classifier, args.data_dir,
                                 samples_per_class=args.eval_samples_per_class, seed=args.seed)
        return {k: v for k, v in scores.items() if isinstance(v, (int, float))}

    metrics = trainer.fit(train_step, [generator, discriminator], sample_fn=sample,
                          eval_fn=evaluate if classifier is not None else None, eval_every=args.eval_every)
    trainer.export(generator, "final", "mnist-dcgan.md", metrics=metrics, data=str(args.data_dir))
    trainer.export(discriminator, "discriminator", "mnist-dcgan.md", metrics=metrics, data=str(args.data_dir))
    trainer.end()


if __name__ == "__main__":
    main()
