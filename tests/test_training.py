"""The training loop through the train scripts: batching, smoke runs, exact resume, multi-process launch."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from app_server import free_port
import safetensors.torch
import torch
from conftest import REPO_ROOT, TRAIN_SCRIPTS, reset_accelerate_state

import ganzoo
from ganzoo.data import epoch_batch_indices
from ganzoo.models import DigitClassifier, DigitDiscriminator, DigitGenerator
from ganzoo.training import Trainer, add_training_args

LAUNCH_TIMEOUT_S = int(os.environ.get("GANZOO_TEST_LAUNCH_TIMEOUT_S", "120"))
TINY = ["--batch-size", "8", "--base-channels", "4", "--report-to", "none"]


# -- epoch_batch_indices -------------------------------------------------------------------------------

@pytest.mark.parametrize("n,batch_size,world_size", [(64, 8, 1), (64, 8, 2), (100, 7, 1), (100, 6, 4), (10, 3, 3)])
def test_epoch_batches_cover_the_epoch_without_repeats(n, batch_size, world_size):
    steps = n // (batch_size * world_size)
    for epoch in range(2):
        seen = torch.cat([epoch_batch_indices(n, batch_size, epoch * steps + s, seed=3, rank=r, world_size=world_size)
                          for s in range(steps) for r in range(world_size)])
        assert len(seen) == steps * batch_size * world_size
        assert len(set(seen.tolist())) == len(seen), "an index repeats within an epoch"
        assert 0 <= seen.min() and seen.max() < n
        if n % (batch_size * world_size) == 0:
            assert sorted(seen.tolist()) == list(range(n))


@pytest.mark.parametrize("world_size", [2, 3])
def test_rank_slices_are_disjoint_and_make_up_the_global_batch(world_size):
    n, batch_size = 120, 5
    for step in range(10):
        parts = [epoch_batch_indices(n, batch_size, step, seed=1, rank=r, world_size=world_size)
                 for r in range(world_size)]
        assert all(len(p) == batch_size for p in parts)
        flat = torch.cat(parts).tolist()
        assert len(set(flat)) == len(flat), f"ranks overlap at step {step}"
        # world_size processes see exactly what one process with the global batch would.
        assert flat == epoch_batch_indices(n, batch_size * world_size, step, seed=1).tolist()


def test_epoch_batches_are_a_pure_function_of_their_arguments():
    a = epoch_batch_indices(50, 4, 7, seed=2)
    assert torch.equal(a, epoch_batch_indices(50, 4, 7, seed=2))
    assert not torch.equal(a, epoch_batch_indices(50, 4, 7, seed=3))
    steps = 50 // 4
    first, second = (torch.cat([epoch_batch_indices(50, 4, e * steps + s, seed=2) for s in range(steps)])
                     for e in range(2))
    assert not torch.equal(first, second), "every epoch should reshuffle"


# -- helpers -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory) -> Path:
    """A saved, untrained tiny DigitClassifier for the GAN's --classifier (evaluation during training)."""
    folder = tmp_path_factory.mktemp("classifier") / "final"
    torch.manual_seed(0)
    DigitClassifier(channels=4, feature_dim=8).eval().save_pretrained(folder)
    return folder


def gan_args(data: Path, out: Path, *extra) -> list:
    return ["--data-dir", data, "--output-dir", out, *TINY, *extra]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(folder / "model.safetensors")


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"{a} and {b} differ in {different}"


def log_lines(run: Path) -> list[dict]:
    lines = (run / "log.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def checkpoint_names(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir())


# -- smoke runs ----------------------------------------------------------------------------------------

def test_classifier_smoke_run(fake_mnist, tmp_path, run_script):
    out = tmp_path / "run"
    run_script("train_mnist_classifier", ["--data-dir", fake_mnist, "--output-dir", out, *TINY,
                                          "--max-steps", "2", "--eval-every", "2"])
    model = ganzoo.load(out / "final")
    assert isinstance(model, DigitClassifier)
    assert sorted(p.name for p in (out / "final").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    logs = log_lines(out)
    assert logs and logs[-1]["step"] == 2
    assert any("loss" in line for line in logs) and any("eval/test_accuracy" in line for line in logs)
    assert checkpoint_names(out) == ["checkpoint-2"]
    card = (out / "final" / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: ganzoo" in card


def test_gan_smoke_run(fake_mnist, tmp_path, run_script, tiny_classifier):
    out = tmp_path / "run"
    run_script("train_mnist_gan", gan_args(fake_mnist, out, "--max-steps", "2", "--classifier", tiny_classifier,
                                           "--eval-every", "2", "--eval-samples-per-class", "4"))
    generator = ganzoo.load(out / "final")
    assert isinstance(generator, DigitGenerator) and generator.sample(torch.tensor([1, 2])).shape == (2, 1, 28, 28)
    assert isinstance(ganzoo.load(out / "discriminator"), DigitDiscriminator)
    assert list((out / "samples").glob("*.png"))
    logs = log_lines(out)
    assert logs and all(line["step"] <= 2 for line in logs)
    assert any("g_loss" in line and "d_loss" in line for line in logs)
    assert any("eval/class_accuracy" in line and "eval/fid" in line for line in logs)
    card = (out / "final" / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: ganzoo" in card
    assert "class_accuracy" not in card or "%" in card  # metrics rendered, not left as template code
    assert "{{" not in card and "{%" not in card


# -- checkpoints and resume ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gan_straight_run(fake_mnist, tmp_path_factory) -> Path:
    """GAN run A: straight to 4 steps (checkpointing only at the end)."""
    from conftest import run_train_script

    out = tmp_path_factory.mktemp("gan-a") / "run"
    run_train_script("train_mnist_gan", gan_args(fake_mnist, out, "--max-steps", "4"))
    return out


def test_gan_resume_is_bitwise_identical(fake_mnist, tmp_path, run_script, gan_straight_run):
    out = tmp_path / "run"
    run_script("train_mnist_gan", gan_args(fake_mnist, out, "--max-steps", "2", "--checkpoint-every", "2"))
    assert checkpoint_names(out) == ["checkpoint-2"]
    shutil.rmtree(out / "final")
    shutil.rmtree(out / "discriminator")
    run_script("train_mnist_gan", gan_args(fake_mnist, out, "--max-steps", "4", "--checkpoint-every", "2", "--resume"))
    assert_same_weights(gan_straight_run / "final", out / "final")
    assert_same_weights(gan_straight_run / "discriminator", out / "discriminator")
    assert [line["step"] for line in log_lines(out)] == [2, 4]
    assert checkpoint_names(out) == ["checkpoint-2", "checkpoint-4"]


def test_half_written_checkpoint_is_ignored_by_resume(fake_mnist, tmp_path, run_script, gan_straight_run):
    out = tmp_path / "run"
    run_script("train_mnist_gan", gan_args(fake_mnist, out, "--max-steps", "2", "--checkpoint-every", "2"))
    # A run killed while saving step 3 leaves this behind: newer than checkpoint-2, and broken.
    partial = out / "checkpoints" / ".tmp-checkpoint-3"
    shutil.copytree(out / "checkpoints" / "checkpoint-2", partial)
    for file in partial.rglob("*.safetensors"):
        file.write_bytes(b"truncated")
    (partial / "random_states_0.pkl").unlink(missing_ok=True)
    run_script("train_mnist_gan", gan_args(fake_mnist, out, "--max-steps", "4", "--checkpoint-every", "2", "--resume"))
    assert_same_weights(gan_straight_run / "final", out / "final")
    assert "checkpoint-4" in checkpoint_names(out)


def test_completed_checkpoints_leave_no_tmp_folder_and_respect_the_limit(fake_mnist, tmp_path, run_script):
    out = tmp_path / "run"
    run_script("train_mnist_classifier", ["--data-dir", fake_mnist, "--output-dir", out, *TINY, "--max-steps", "3",
                                          "--checkpoint-every", "1", "--checkpoints-total-limit", "2"])
    assert checkpoint_names(out) == ["checkpoint-2", "checkpoint-3"]


def test_a_resumed_run_clears_folders_a_kill_left_mid_write_or_mid_delete(fake_mnist, tmp_path, run_script):
    out = tmp_path / "run"
    common = ["--data-dir", fake_mnist, "--output-dir", out, *TINY, "--checkpoint-every", "1",
              "--checkpoints-total-limit", "2"]
    run_script("train_mnist_classifier", [*common, "--max-steps", "3"])
    shutil.rmtree(out / "checkpoints" / "checkpoint-3")  # "killed" after checkpoint-2, leaving these behind:
    shutil.rmtree(out / "final")
    for name in (".tmp-delete-checkpoint-1", ".tmp-checkpoint-3"):
        (out / "checkpoints" / name).mkdir()
        (out / "checkpoints" / name / "model.safetensors").write_bytes(b"partial")
    run_script("train_mnist_classifier", [*common, "--max-steps", "3", "--resume"])
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-3"]


def test_trainer_lists_only_complete_checkpoints(tmp_path):
    parser = add_training_args(argparse.ArgumentParser(), max_steps=4, batch_size=2)
    args = parser.parse_args(["--output-dir", str(tmp_path / "run"), "--report-to", "none", "--cpu"])
    reset_accelerate_state()
    try:
        trainer = Trainer(args, "probe")
        for name in ("checkpoint-2", "checkpoint-10", ".tmp-checkpoint-12", "checkpoint-x", "checkpoint-7.old"):
            (tmp_path / "run" / "checkpoints" / name).mkdir(parents=True)
        (tmp_path / "run" / "checkpoints" / "checkpoint-11").write_text("a file, not a folder")
        assert [p.name for p in trainer.checkpoints()] == ["checkpoint-2", "checkpoint-10"]
    finally:
        reset_accelerate_state()


def test_classifier_resume_is_bitwise_identical(fake_mnist, tmp_path, run_script):
    """The classifier has a OneCycle schedule over --max-steps and dropout drawn from the global RNG:
    both must come back from the checkpoint. Run B is 'killed' after checkpoint-2 (later state removed)."""
    common = ["--data-dir", fake_mnist, *TINY, "--max-steps", "4"]
    run_script("train_mnist_classifier", [*common, "--output-dir", tmp_path / "a"])
    b = tmp_path / "b"
    run_script("train_mnist_classifier", [*common, "--output-dir", b, "--checkpoint-every", "2"])
    shutil.rmtree(b / "checkpoints" / "checkpoint-4")
    shutil.rmtree(b / "final")
    run_script("train_mnist_classifier", [*common, "--output-dir", b, "--checkpoint-every", "2", "--resume"])
    assert_same_weights(tmp_path / "a" / "final", b / "final")


def test_resume_without_checkpoint_starts_from_scratch(fake_mnist, tmp_path, run_script, gan_straight_run):
    out = tmp_path / "run"
    run_script("train_mnist_gan", gan_args(fake_mnist, out, "--max-steps", "4", "--resume"))
    assert_same_weights(gan_straight_run / "final", out / "final")


def test_bad_loop_arguments_are_refused(fake_mnist, tmp_path, run_script):
    with pytest.raises(ValueError, match="--max-steps"):
        run_script("train_mnist_gan", gan_args(fake_mnist, tmp_path / "run", "--max-steps", "0"))


# -- several processes ---------------------------------------------------------------------------------

def kill_process_tree(pid: int) -> None:
    """End a process we started and every process it started, each by its id."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(fake_mnist, tmp_path, tiny_classifier):
    """Two CPU processes (gloo) through `accelerate launch`, then a two-process --resume.

    Note: `accelerate launch --cpu --num_processes 2` starts ONE process in accelerate 1.x (with --cpu
    the launcher only fans out through mpirun). `--multi_gpu` makes it use torchrun, and the script's
    own `--cpu` keeps each process on the CPU, so this also works on a machine with GPUs.
    """
    out = tmp_path / "run"
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}

    def launch(*extra: str) -> None:
        command = [
            sys.executable, "-m", "accelerate.commands.launch",
            "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", "--main_process_port", str(free_port()),
            str(TRAIN_SCRIPTS / "train_mnist_gan.py"), "--cpu", "--checkpoint-every", "2",
            *map(str, gan_args(fake_mnist, out, "--classifier", tiny_classifier, "--eval-every", "2",
                               "--eval-samples-per-class", "4", *extra)),
        ]
        log = tmp_path / f"launch-{len(list(tmp_path.glob('launch-*.log')))}.log"
        with open(log, "w") as stdout:  # a file, not a pipe: a stuck worker cannot block the read
            process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=stdout, stderr=subprocess.STDOUT)
            try:
                process.wait(timeout=LAUNCH_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                kill_process_tree(process.pid)  # torchrun puts each worker in a session of its own
                pytest.fail(f"accelerate launch did not finish in {LAUNCH_TIMEOUT_S} s:\n{log.read_text()[-5000:]}")
        output = log.read_text()
        assert process.returncode == 0, f"exit {process.returncode}\n{output[-6000:]}"

    launch("--max-steps", "2")
    assert isinstance(ganzoo.load(out / "final"), DigitGenerator)
    assert "2 x CPU" in (out / "final" / "README.md").read_text(), "expected two processes"
    assert checkpoint_names(out) == ["checkpoint-2"]
    # both processes saved their RNG state into the one checkpoint
    assert {p.name for p in (out / "checkpoints" / "checkpoint-2").glob("random_states_*.pkl")} == {
        "random_states_0.pkl", "random_states_1.pkl"}
    assert [line["step"] for line in log_lines(out) if "g_loss" in line] == [2]

    launch("--max-steps", "3", "--resume")
    assert checkpoint_names(out) == ["checkpoint-2", "checkpoint-3"]
    assert [line["step"] for line in log_lines(out) if "g_loss" in line] == [2, 3]
    assert isinstance(ganzoo.load(out / "final"), DigitGenerator)
