"""A training run SIGKILLed mid-run (between and during checkpoint writes) resumes to exactly the
weights of an uninterrupted run.

`train_scripts/train_mnist_gan.py` runs as a real subprocess on the tiny fake MNIST from conftest,
checkpointing every step; the test kills it with SIGKILL, checks what is left on disk, and resumes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import safetensors.torch
import torch
from conftest import REPO_ROOT, TRAIN_SCRIPTS

MAX_STEPS = 12
RUN_TIMEOUT_S = 120
CHECKPOINT_FILES = {"model.safetensors", "model_1.safetensors", "optimizer.bin", "optimizer_1.bin",
                    "random_states_0.pkl", "custom_checkpoint_0.pkl"}


def command(data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(TRAIN_SCRIPTS / "train_mnist_gan.py"), "--data-dir", str(data),
            "--output-dir", str(out), "--base-channels", "4", "--batch-size", "8", "--checkpoint-every", "1",
            "--max-steps", str(MAX_STEPS), "--report-to", "none", "--cpu", "--sample-every", "1000",
            "--log-every", "1", *extra]


def env(tmp_path: Path) -> dict[str, str]:
    # one thread: the same arithmetic in every run, and gentle on a shared machine
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "HF_HOME": str(tmp_path / "hf-home"), "PYTHONUNBUFFERED": "1"}


def run_to_end(cmd: list[str], tmp_path: Path, log: Path) -> str:
    with open(log, "w") as stdout:
        result = subprocess.run(cmd, check=False, cwd=REPO_ROOT, env=env(tmp_path), stdout=stdout,
                                stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_S)
    text = log.read_text()
    assert result.returncode == 0, f"exit {result.returncode}:\n{text[-4000:]}"
    return text


def checkpoint_steps(out: Path) -> list[int]:
    folder = out / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)))


def tmp_folders(out: Path) -> list[Path]:
    folder = out / "checkpoints"
    return sorted(folder.glob(".tmp-*")) if folder.is_dir() else []


def run_and_kill(cmd: list[str], tmp_path: Path, log: Path, during_write: bool, min_step: int) -> str:
    """Start the run and SIGKILL it once checkpoint `min_step` exists: either while a `.tmp-checkpoint-*`
    folder is being written (`during_write`), or at a moment when none is. Returns what was seen."""
    with open(log, "w") as stdout:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env(tmp_path), stdout=stdout, stderr=subprocess.STDOUT)
    out = Path(cmd[cmd.index("--output-dir") + 1])
    seen = "finished before the kill"
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            steps = checkpoint_steps(out)
            if steps and steps[-1] >= min_step:
                tmps = tmp_folders(out)
                if during_write and tmps and any(tmps[0].iterdir()):
                    proc.send_signal(signal.SIGKILL)
                    seen = f"killed while writing {tmps[0].name} ({len(list(tmps[0].iterdir()))} entries)"
                    break
                if not during_write and not tmps:
                    proc.send_signal(signal.SIGKILL)
                    seen = f"killed between checkpoint writes (latest checkpoint-{steps[-1]})"
                    break
            time.sleep(0.0005)
    finally:
        if proc.poll() is None and "killed" not in seen:
            proc.kill()
            seen = "killed at the deadline"
        proc.wait(timeout=30)
    return seen


def assert_checkpoints_complete(out: Path) -> None:
    """Every `checkpoint-N` folder holds all of a checkpoint's files, and each of them reads back."""
    for step in checkpoint_steps(out):
        folder = out / "checkpoints" / f"checkpoint-{step}"
        names = {p.name for p in folder.iterdir()}
        assert CHECKPOINT_FILES <= names, f"{folder.name} lacks {sorted(CHECKPOINT_FILES - names)}"
        for name in ("model.safetensors", "model_1.safetensors"):
            assert safetensors.torch.load_file(folder / name)
        for name in ("optimizer.bin", "optimizer_1.bin", "custom_checkpoint_0.pkl"):
            assert torch.load(folder / name, weights_only=True) is not None
        assert (folder / "random_states_0.pkl").stat().st_size > 0
        state = torch.load(folder / "custom_checkpoint_0.pkl", weights_only=True)
        assert state["step"] == step


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(folder / "model.safetensors")


@pytest.fixture(scope="module")
def straight_run(fake_mnist, tmp_path_factory) -> Path:
    """The uninterrupted reference run."""
    tmp = tmp_path_factory.mktemp("straight")
    out = tmp / "run"
    run_to_end(command(fake_mnist, out), tmp, tmp / "log.txt")
    assert checkpoint_steps(out)[-1] == MAX_STEPS
    return out


@pytest.mark.slow
def test_killed_twice_then_resumed_equals_an_uninterrupted_run(fake_mnist, tmp_path, straight_run):
    out = tmp_path / "run"
    seen = [run_and_kill(command(fake_mnist, out), tmp_path, tmp_path / "log-1.txt", during_write=False, min_step=3)]
    assert not (out / "final").exists(), f"the first run was not killed mid-run: {seen}"
    assert_checkpoints_complete(out)
    seen.append(run_and_kill(command(fake_mnist, out, "--resume"), tmp_path, tmp_path / "log-2.txt",
                             during_write=True, min_step=checkpoint_steps(out)[-1] + 2))
    assert not (out / "final").exists(), f"the second run was not killed mid-run: {seen}"
    assert_checkpoints_complete(out)
    latest = checkpoint_steps(out)[-1]
    stray = [p.name for p in tmp_folders(out)]
    text = run_to_end(command(fake_mnist, out, "--resume"), tmp_path, tmp_path / "log-3.txt")
    # the newest complete checkpoint was used, never a half-written .tmp one (even if it is newer)
    assert re.search(rf"resumed from \S*checkpoint-{latest} \(step {latest}\)", text), (seen, stray, text[-2000:])
    assert checkpoint_steps(out)[-1] == MAX_STEPS
    assert_checkpoints_complete(out)
    assert not tmp_folders(out), "a finished run left a temporary checkpoint folder"
    expected, actual = weights(straight_run / "final"), weights(out / "final")
    assert expected.keys() == actual.keys()
    different = [k for k in expected if not torch.equal(expected[k], actual[k])]
    assert not different, f"after {seen} (stray: {stray}) the final weights differ in {different}"
    d_expected, d_actual = weights(straight_run / "discriminator"), weights(out / "discriminator")
    assert all(torch.equal(d_expected[k], d_actual[k]) for k in d_expected)
    print(seen, "stray tmp folders at resume:", stray)
