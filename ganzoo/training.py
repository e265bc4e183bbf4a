"""The one training loop every train script uses, built around a single `Accelerator`.

A train script builds its models, optimisers and a `train_step(step, rng)`
function, then calls `Trainer.fit`. The loop owns everything else: devices and
mixed precision, gradient accumulation, atomic `save_state` checkpoints and
`--resume-from-checkpoint`, the progress bar, periodic sample grids and evaluation, logging
(TensorBoard/W&B + JSONL), the final export with a model card and `--push-to-hub`.

Randomness inside a step comes from `rng`, a generator seeded by (seed, step,
process), so a resumed run draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import (SAFE_WEIGHTS_NAME, ProjectConfiguration, is_tensorboard_available, is_wandb_available,
                              parse_flag_from_env, set_seed)
from huggingface_hub import HfApi
from safetensors.torch import load_file
from torch import nn
from tqdm.auto import tqdm

from ganzoo.cards import TEMPLATES_DIR
from ganzoo.data import ImageBank, degrade_bicubic
from ganzoo.evaluate import evaluate_sr
from ganzoo.hub import GanzooModel, load_state_dict_strict, save_with_card
from ganzoo.imaging import imresize, make_grid_image
from ganzoo.models.vgg import VGG_POOL_CHOICES, VGG_WEIGHT_CHOICES
from ganzoo.precision import cpu_bf16_support

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
MODEL_CARDS_DIR = TEMPLATES_DIR  # package data: an installed wheel exports with its card

StepFn = Callable[[int, torch.Generator], dict[str, float]]
TRACKERS = {"tensorboard": is_tensorboard_available, "wandb": is_wandb_available}


def add_training_args(parser: argparse.ArgumentParser, *, max_steps: int, batch_size: int,
                      checkpoint_every: int = 1000, sample_every: int = 500) -> argparse.ArgumentParser:
    """The options every train script shares; script-specific ones are added by the script."""
    group = parser.add_argument_group("training loop")
    group.add_argument("--output-dir", type=Path, required=True, help="run folder: checkpoints, logs, samples, final/")
    group.add_argument("--max-steps", type=int, default=max_steps, help="optimiser updates in total")
    group.add_argument("--batch-size", type=int, default=batch_size, help="per process, per micro-batch")
    group.add_argument("--gradient-accumulation-steps", type=int, default=1)
    group.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default=None,
                       help="default: the launcher's choice (`accelerate launch --mixed_precision`, a saved "
                            "`accelerate config`, ACCELERATE_MIXED_PRECISION); without one, bf16 autocast on a "
                            "CPU with native bf16 (GANZOO_CPU_BF16=0/1 overrides the detection), else fp32")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--checkpoint-every", type=int, default=checkpoint_every)
    group.add_argument("--checkpoints-total-limit", type=int, default=2)
    group.add_argument("--resume-from-checkpoint", default=None, metavar="latest|PATH",
                       help="continue from the latest checkpoint in --output-dir, or from a checkpoint folder")
    group.add_argument("--resume", action="store_true", help="same as --resume-from-checkpoint latest")
    group.add_argument("--sample-every", type=int, default=sample_every)
    group.add_argument("--log-every", type=int, default=50)
    group.add_argument("--report-to", choices=["tensorboard", "wandb", "all", "none"], default="tensorboard",
                       help="experiment tracker (all: every one of tensorboard, wandb that is installed)")
    group.add_argument("--push-to-hub", action="store_true",
                       help="at the end, upload the exported model folder with its card to --hub-model-id")
    group.add_argument("--hub-model-id", default=None,
                       help="Hub repo for --push-to-hub (default: the name of --output-dir under your account)")
    group.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is present")
    group.add_argument("--time-limit", type=float, default=None,
                       help="stop (with a checkpoint and export) after this many minutes of training")
    group.add_argument("--fit-schedule-to-time", type=float, default=None, metavar="SECONDS",
                       help="with --time-limit: after this many seconds of training, measure steps/s and lower "
                            "--max-steps to what the rest of the time allows, so a schedule that reads "
                            "--max-steps ends when the time does (a probe inside the run)")
    return parser


def add_vgg_args(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, weights_help: str | None = None,
                 loss_network: bool = True) -> None:
    """--vgg-weights (ImageNet or the offline fixed random weights) and, for a loss network (not an encoder
    rebuilt from a model's config), --vgg-weights-path and --vgg-pool: the VGG19 options of the scripts whose
    losses (or encoder) use `models.vgg`."""
    parser.add_argument("--vgg-weights", choices=list(VGG_WEIGHT_CHOICES), default="imagenet", help=weights_help)
    if loss_network:
        parser.add_argument("--vgg-weights-path", default=None, help="explicit path to torchvision's vgg19 weights")
        parser.add_argument("--vgg-pool", choices=VGG_POOL_CHOICES, default="max",
                            help="VGG19's pooling (avg pays a generator less for a pixel lattice: README, Grid artefacts)")


class TrainState:
    """What the loop itself must carry across a resume (registered with `save_state`)."""

    def __init__(self) -> None:
        self.step = 0
        self.train_seconds = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "train_seconds": self.train_seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.train_seconds = int(state["step"]), float(state["train_seconds"])


class ScheduleProbe:
    """`--fit-schedule-to-time`: times the steps after a short warm-up, then sets `args.max_steps` to the step
    count the remaining `--time-limit` allows at that rate (never above the given --max-steps). Schedules that
    read `args.max_steps` when they are stepped (as a function of the step) then end when the time does."""

    WARMUP_STEPS = 3  # first steps pay for compilation, autotuning and cold caches

    def __init__(self, args: argparse.Namespace, margin: float = 0.97, start_step: int = 0) -> None:
        self.args, self.margin = args, margin
        self.seconds = args.fit_schedule_to_time
        self.start_step = start_step  # a resumed run's warm-up counts from where it resumed
        self.mark: tuple[int, float] | None = None
        self.rate = 0.0

    def update(self, step: int, elapsed: float) -> bool:
        """Called after each step with the seconds since this process began training; True once the plan is made."""
        if self.mark is None:
            if step - self.start_step >= self.WARMUP_STEPS:
                self.mark = (step, elapsed)
            return False
        if elapsed < self.seconds or step <= self.mark[0]:
            return False
        self.rate = (step - self.mark[0]) / max(elapsed - self.mark[1], 1e-9)
        remaining = 60 * self.args.time_limit - elapsed
        planned = step + int(self.rate * max(remaining, 0.0) * self.margin)
        self.args.max_steps = max(step + 1, min(self.args.max_steps, planned))
        return True


class Trainer:
    def __init__(self, args: argparse.Namespace, run_name: str) -> None:
        for name in ("max_steps", "batch_size", "gradient_accumulation_steps", "checkpoint_every", "sample_every",
                     "log_every"):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
        if args.time_limit is not None and args.time_limit <= 0:
            raise ValueError(f"--time-limit must be positive (minutes), got {args.time_limit}")
        probe_seconds = getattr(args, "fit_schedule_to_time", None)
        if probe_seconds is not None and (args.time_limit is None or probe_seconds <= 0):
            raise ValueError("--fit-schedule-to-time needs --time-limit and a positive number of seconds")
        if args.resume and args.resume_from_checkpoint is None:
            args.resume_from_checkpoint = "latest"
        self.args = args
        self.output_dir = Path(args.output_dir)
        trackers = _trackers(args.report_to)
        mixed_precision, self.channels_last, precision_note = _resolve_precision(args.mixed_precision, args.cpu)
        self.accelerator = Accelerator(
            mixed_precision=mixed_precision,
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            log_with=trackers or None,
            project_config=ProjectConfiguration(project_dir=str(self.output_dir),
                                                logging_dir=str(self.output_dir / "logs")),
            cpu=args.cpu,
        )
        set_seed(args.seed, device_specific=True)
        self.state = TrainState()
        self.accelerator.register_for_checkpointing(self.state)
        if self.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            tqdm.write(f"precision: {precision_note}")
        self.hub_repo_id = self._create_hub_repo() if args.push_to_hub else None
        self.exported: list[Path] = []
        if trackers:
            config = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in vars(args).items()}
            self.accelerator.init_trackers(run_name, config=config)

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def prepare(self, *objects: Any) -> Any:
        if self.channels_last:  # bf16 convolutions on the CPU are fastest in NHWC (oneDNN)
            for module in objects:
                if isinstance(module, nn.Module):
                    module.to(memory_format=torch.channels_last)
        return self.accelerator.prepare(*objects)

    def rng(self, step: int, device: torch.device | str = "cpu") -> torch.Generator:
        """A generator seeded by (seed, step, process): the randomness of one step, reproducible on resume."""
        seed = (self.args.seed * 1_000_003 + step) * 1_009 + self.accelerator.process_index
        return torch.Generator(device=device).manual_seed(seed % (2**63))

    def optimize(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                 clip_params: Iterable[nn.Parameter] | None = None, max_grad_norm: float | None = None) -> None:
        """Backward, optional clipping, and an optimiser step (skipped by Accelerate while accumulating)."""
        self.accelerator.backward(loss)
        if max_grad_norm is not None and clip_params is not None and self.accelerator.sync_gradients:
            self.accelerator.clip_grad_norm_(clip_params, max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def fit(self, train_step: StepFn, models: Iterable[nn.Module],
            sample_fn: Callable[[int], torch.Tensor] | None = None,
            eval_fn: Callable[[int], dict[str, float]] | None = None, eval_every: int | None = None,
            sample_nrow: int = 8) -> dict[str, float]:
        """Run until `--max-steps`; returns the last evaluation (if any)."""
        models = list(models)
        self._started = time.perf_counter()
        if self.args.resume_from_checkpoint:
            self.resume_from(self.args.resume_from_checkpoint)
        args, acc = self.args, self.accelerator
        last_eval: dict[str, float] = {}
        bar = tqdm(total=args.max_steps, initial=self.state.step, disable=not self.is_main, desc="train",
                   dynamic_ncols=True)
        last = self.state.step >= args.max_steps
        fits_schedule = getattr(args, "fit_schedule_to_time", None)  # scripts without add_training_args lack it
        probe = ScheduleProbe(args, start_step=self.state.step) if fits_schedule else None
        while not last:
            started = time.perf_counter()
            for model in models:
                model.train()
            logs: dict[str, float] = {}
            for micro in range(args.gradient_accumulation_steps):
                with acc.accumulate(*models):
                    micro_step = self.state.step * args.gradient_accumulation_steps + micro
                    logs = train_step(micro_step, self.rng(micro_step))
            self.state.step += 1
            self.state.train_seconds += time.perf_counter() - started
            step = self.state.step
            if probe is not None and probe.update(step, time.perf_counter() - self._started):
                bar.total = args.max_steps
                self.log({"planned_steps": args.max_steps, "probe_steps_per_second": probe.rate}, step)
                probe = None
            last = step >= args.max_steps or self._out_of_time()
            bar.update(1)
            if step % args.log_every == 0 or last:
                logs = {k: float(v) for k, v in logs.items()}
                bar.set_postfix({k: f"{v:.3g}" for k, v in list(logs.items())[:4]})
                self.log(logs, step)
            if sample_fn is not None and (step % args.sample_every == 0 or last):
                self.save_samples(sample_fn, step, sample_nrow)
            if eval_fn is not None and eval_every and (step % eval_every == 0 or last):
                last_eval = self.evaluate(eval_fn, models, step)
            if step % args.checkpoint_every == 0 or last:
                self.save_checkpoint()
        bar.close()
        acc.wait_for_everyone()
        return last_eval

    def _out_of_time(self) -> bool:
        """Whether `--time-limit` has passed, agreed by all processes so none waits on the others."""
        limit = self.args.time_limit
        if limit is None:
            return False
        late = torch.tensor(float(time.perf_counter() - self._started > 60 * limit), device=self.device)
        return bool(self.accelerator.reduce(late, "max").item())

    def evaluate(self, eval_fn: Callable[[int], dict[str, float]], models: list[nn.Module],
                 step: int) -> dict[str, float]:
        for model in models:
            model.eval()
        with torch.no_grad():
            metrics = {f"eval/{k}": float(v) for k, v in eval_fn(step).items()}
        self.log(metrics, step)
        if self.is_main:
            tqdm.write(f"step {step}: " + ", ".join(f"{k[5:]}={v:.4g}" for k, v in metrics.items()))
        return {k[5:]: v for k, v in metrics.items()}

    def log(self, values: dict[str, float], step: int) -> None:
        self.accelerator.log(values, step=step)
        if self.is_main:
            with open(self.output_dir / "log.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps({"step": step, "time": round(self.state.train_seconds, 2), **values}) + "\n")

    def save_samples(self, sample_fn: Callable[[int], torch.Tensor], step: int, nrow: int) -> None:
        with torch.no_grad():
            images = sample_fn(step)
        if self.is_main:
            folder = self.output_dir / "samples"
            folder.mkdir(exist_ok=True)
            make_grid_image(images.float().cpu().clamp(0, 1), nrow=nrow).save(folder / f"step_{step:07d}.png")

    # -- checkpoints --------------------------------------------------------------------------------

    @property
    def checkpoint_dir(self) -> Path:
        return self.output_dir / "checkpoints"

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first (a half-written `.tmp` folder is never listed)."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.checkpoint_dir.iterdir()
                 if p.is_dir() and (m := CHECKPOINT_PATTERN.match(p.name))]
        return [p for _, p in sorted(found)]

    def save_checkpoint(self) -> Path:
        """`save_state` into a temporary folder, then rename: a kill never leaves a broken checkpoint."""
        final = self.checkpoint_dir / f"checkpoint-{self.state.step}"
        tmp = self.checkpoint_dir / f".tmp-checkpoint-{self.state.step}"
        if self.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(tmp))
        self.accelerator.wait_for_everyone()
        if self.is_main:
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            for old in self.checkpoints()[:-self.args.checkpoints_total_limit]:
                doomed = old.with_name(f".tmp-delete-{old.name}")  # never half-deleted under its real name
                os.replace(old, doomed)
                shutil.rmtree(doomed, ignore_errors=True)
            for stale in self.checkpoint_dir.glob(".tmp-*"):  # left by a run killed mid-write or mid-delete
                shutil.rmtree(stale, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        return final

    def resume_from(self, checkpoint: str) -> None:
        """Load `latest` (the newest checkpoint in --output-dir; none: start from step 0) or a checkpoint folder."""
        if checkpoint == "latest":
            found = self.checkpoints()
            if not found:
                if self.is_main:
                    tqdm.write(f"--resume: no checkpoint in {self.checkpoint_dir}, starting from step 0")
                return
            path = found[-1]
        else:
            path = next((p for p in (Path(checkpoint), self.checkpoint_dir / checkpoint) if p.is_dir()), None)
            if path is None or not CHECKPOINT_PATTERN.match(path.name):
                raise FileNotFoundError(f"--resume-from-checkpoint {checkpoint}: not a checkpoint-N folder (give "
                                        f"`latest` or one of {[str(p) for p in self.checkpoints()] or 'none yet'})")
        self.accelerator.load_state(str(path))
        if self.is_main:
            tqdm.write(f"resumed from {path} (step {self.state.step})")

    # -- export -------------------------------------------------------------------------------------

    def export(self, model: nn.Module, name: str, card_template: str, **card_fields: Any) -> Path | None:
        """Save `model` to `<output-dir>/<name>` with a model card rendered from `ganzoo/model_cards/<card_template>`."""
        self.accelerator.wait_for_everyone()
        if not self.is_main:
            return None
        unwrapped = self.accelerator.unwrap_model(model)
        assert isinstance(unwrapped, GanzooModel)
        unwrapped = unwrapped.float().cpu().eval()
        record = dict(model_name=name, hardware=self.hardware(), wall_time=format_seconds(self.state.train_seconds),
                      steps=self.state.step, precision=self.accelerator.mixed_precision,  # resolved, not the flag
                      args={k: str(v) for k, v in sorted(vars(self.args).items())},
                      **card_fields)
        # kept beside the export so `train_scripts/bundle_model.py` can re-render the card with benchmark results
        (self.output_dir / f"{name}.run.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
        folder = save_with_card(unwrapped, self.output_dir / name, MODEL_CARDS_DIR / card_template, **record)
        self.exported.append(folder)
        return folder

    def hardware(self) -> str:
        acc = self.accelerator
        if acc.device.type == "cuda":
            what = torch.cuda.get_device_name(acc.device)
        else:
            what = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
        return f"{acc.num_processes} x {what}, mixed precision: {acc.mixed_precision}"

    def end(self) -> None:
        """Close the trackers and, with --push-to-hub, upload the first exported folder (the model) with its card."""
        self.accelerator.end_training()
        if self.hub_repo_id and self.is_main and self.exported:
            url = HfApi().upload_folder(repo_id=self.hub_repo_id, folder_path=self.exported[0],
                                        commit_message=f"ganzoo: {self.exported[0].name} after {self.state.step} steps")
            tqdm.write(f"pushed {self.exported[0]} to {url}")

    def _create_hub_repo(self) -> str | None:
        """Create (or find) the --push-to-hub repo before training, so a missing token fails now, not at the end."""
        if not self.is_main:
            return None
        repo_id = self.args.hub_model_id or self.output_dir.resolve().name
        return HfApi().create_repo(repo_id, exist_ok=True).repo_id


def adversarial_step(trainer: Trainer, discriminator: nn.Module, d_optimizer: torch.optim.Optimizer,
                     g_optimizer: torch.optim.Optimizer,
                     d_loss_fn: Callable[[nn.Module], tuple[torch.Tensor, dict[str, float]]],
                     g_loss_fn: Callable[[nn.Module], tuple[torch.Tensor, dict[str, float]]]) -> dict[str, float]:
    """One discriminator update, then one generator update against the updated discriminator.

    `d_loss_fn(D)` must only see detached fakes. `g_loss_fn(D)` gets the unwrapped
    discriminator with its weights frozen, so the generator's backward neither
    leaves gradients on D nor trips DistributedDataParallel's bookkeeping.
    """
    d_loss, d_logs = d_loss_fn(discriminator)
    trainer.optimize(d_loss, d_optimizer)
    frozen = trainer.accelerator.unwrap_model(discriminator)
    frozen.requires_grad_(False)
    try:
        with trainer.accelerator.autocast():
            g_loss, g_logs = g_loss_fn(frozen)
        trainer.optimize(g_loss, g_optimizer)
    finally:
        frozen.requires_grad_(True)
    return {**d_logs, **g_logs}


def _trackers(report_to: str) -> list[str]:
    """The trackers `--report-to` names; one that is not installed is an error, not a silent no-op."""
    if report_to == "none":
        return []
    if report_to == "all":
        installed = [name for name, available in TRACKERS.items() if available()]
        if not installed:
            raise ValueError("--report-to all: neither tensorboard nor wandb is installed (pip install tensorboard)")
        return installed
    if not TRACKERS[report_to]():
        raise ValueError(f"--report-to {report_to}: {report_to} is not installed (pip install {report_to}, "
                         "or pass --report-to none)")
    return [report_to]


def _resolve_precision(requested: str | None, cpu: bool) -> tuple[str | None, bool, str]:
    """(mixed_precision for the Accelerator, channels-last?, a log line saying which and why).

    None is passed on when the launcher chose (ACCELERATE_MIXED_PRECISION), so Accelerate applies its choice.
    """
    chosen = os.environ.get("ACCELERATE_MIXED_PRECISION", "").lower()
    why = ("from --mixed-precision" if requested else
           "from the launcher / accelerate config (ACCELERATE_MIXED_PRECISION)")
    on_cpu = PartialState(cpu=cpu or parse_flag_from_env("ACCELERATE_USE_CPU")).device.type == "cpu"
    if requested is None and not chosen:
        if not on_cpu:
            return None, False, "no mixed precision (Accelerate's default; pass --mixed-precision bf16 or fp16)"
        support = cpu_bf16_support()
        requested, why = ("bf16" if support.native else "no"), support.reason
    mode = requested or chosen
    if not on_cpu:
        return requested, False, f"{mode} {why}"
    if mode == "bf16":
        note = "" if cpu_bf16_support().native else "; this CPU has no native bf16, so expect it SLOWER than fp32"
        return requested, True, f"bf16 autocast + channels-last on the CPU ({why}{note})"
    return requested, False, f"fp32 on the CPU ({why}; --mixed-precision bf16 forces bf16 autocast)"


def format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


HISTORY_NAME = "training_history.json"


def run_history(trainer: Trainer, init_from: str | None) -> dict[str, Any]:
    """Card fields for a model trained over several runs: the runs so far (read from `init_from`'s
    `training_history.json` when it has one), this run added, and the total steps and hours."""
    earlier = Path(_registry_folder(init_from)) / HISTORY_NAME if init_from else None
    history = json.loads(earlier.read_text()) if earlier is not None and earlier.is_file() else []
    # A run resumed after its export was bundled is already in the bundle's history: its new record replaces it.
    history = [h for h in history if h["run"] != str(trainer.output_dir)]
    history.append({"run": str(trainer.output_dir), "steps": trainer.state.step,
                    "hours": round(trainer.state.train_seconds / 3600, 3), "init_from": init_from,
                    "hardware": trainer.hardware()})
    return {"history": history, "total_steps": sum(h["steps"] for h in history),
            "total_hours": round(sum(h["hours"] for h in history), 2)}


def _registry_folder(name_or_path: str) -> str:
    """A bundled model's folder for its short name (`--init-from deblur-unet`), else the argument itself."""
    from ganzoo.registry import MODELS

    entry = MODELS.get(str(name_or_path))
    return str(entry.bundled_path) if entry is not None and entry.is_bundled else str(name_or_path)


def write_history(folder: Path | None, history: list[dict[str, Any]]) -> None:
    """Keep the run history beside an export, so a later `--init-from` run continues it."""
    if folder is not None:
        (folder / HISTORY_NAME).write_text(json.dumps(history, indent=2) + "\n")


# -- where a model starts: new, --init-from a trained model, or --init-from-checkpoint ----------------

def resolve_architecture(args: argparse.Namespace, defaults: dict[str, Any], loaded: GanzooModel | None = None,
                         config_names: dict[str, str] | None = None) -> dict[str, Any]:
    """Constructor arguments from architecture flags that default to None.

    A new model takes each flag given, else `defaults[key]`. A model loaded with --init-from keeps its own
    config: a flag given with another value is an error, never silently overridden. The result also goes
    into `args`, so the card's list of arguments says what was trained. `config_names` maps a flag's
    name to its constructor/config name where they differ (train_adain's `vgg_seed` is `encoder_seed`).
    """
    config = (loaded._hub_mixin_config or {}) if loaded is not None else {}
    config_names = config_names or {}
    resolved = {}
    for key, default in defaults.items():
        name = config_names.get(key, key)
        given = getattr(args, key)
        if loaded is None:
            value = default if given is None else given
        elif given is not None and given != config.get(name):
            raise SystemExit(f"--{key.replace('_', '-')} {given} conflicts with --init-from {args.init_from}: its "
                             f"config has {name}={config.get(name)!r}, and the loaded model's config decides the "
                             "architecture (drop the flag)")
        else:
            value = config.get(name)
        setattr(args, key, value)
        resolved[name] = value
    return resolved


def load_checkpoint_weights(model: nn.Module, checkpoint: str | os.PathLike) -> nn.Module:
    """`model` with the weights of the first model in a train script's checkpoint folder
    (`<output-dir>/checkpoints/checkpoint-N`, Accelerate's `save_state` layout), loaded strictly."""
    path = Path(checkpoint) / SAFE_WEIGHTS_NAME
    if not path.is_file():
        raise SystemExit(f"--init-from-checkpoint {checkpoint}: no {SAFE_WEIGHTS_NAME} there; give a "
                         "checkpoints/checkpoint-N folder of a run of this script")
    load_state_dict_strict(model, load_file(path), source=str(path))
    return model


def initial_model(args: argparse.Namespace, model_class: type[GanzooModel], defaults: dict[str, Any],
                  accepted: tuple[type[GanzooModel], ...] | None = None,
                  config_names: dict[str, str] | None = None) -> GanzooModel:
    """The model a run starts from: the trained one --init-from names (one of `accepted`, by default
    `model_class`; its config decides the architecture), else a new `model_class` built from the architecture
    flags, with the weights of --init-from-checkpoint when given (a script without that flag: never)."""
    from ganzoo.registry import load

    if args.init_from is None:
        model = model_class(**resolve_architecture(args, defaults, config_names=config_names))
        checkpoint = getattr(args, "init_from_checkpoint", None)
        return load_checkpoint_weights(model, checkpoint) if checkpoint else model
    model = load(args.init_from)
    accepted = accepted or (model_class,)
    if not isinstance(model, accepted):
        names = " or ".join(cls.__name__ for cls in accepted)
        raise SystemExit(f"--init-from must be a {names}, got {type(model).__name__}")
    resolve_architecture(args, defaults, model, config_names)
    return model


def sr_callbacks(trainer: Trainer, args: argparse.Namespace, generator: nn.Module, bank: ImageBank
                 ) -> tuple[Callable[[int], torch.Tensor], Callable[[int], dict[str, float]] | None]:
    """Sample comparisons (bicubic | output | HR) and Set5-style validation, shared by both SR scripts."""
    unwrap = trainer.accelerator.unwrap_model
    fixed_hr = bank.random_crops(4, args.crop_size, torch.Generator().manual_seed(1234))
    fixed_lr = degrade_bicubic(fixed_hr, args.scale)

    def sample(step: int) -> torch.Tensor:
        with trainer.accelerator.autocast():
            sr = unwrap(generator)(fixed_lr).float().clamp(0, 1)
        return torch.cat([imresize(fixed_lr, scale=args.scale).clamp(0, 1), sr, fixed_hr])

    def validate(step: int) -> dict[str, float]:
        scores = evaluate_sr(lambda lr: unwrap(generator)(lr.to(trainer.device)).float(), args.val_dir,
                             args.scale, progress=False)
        return {k: v for k, v in scores.items() if k in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")}

    return sample, (validate if args.val_dir else None)
