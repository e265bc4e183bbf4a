"""The training loop through the train scripts: batching, smoke runs, exact resume, multi-process launch."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import nn

import ganzoo
import ganzoo.training as training
from ganzoo.models import DigitClassifier, DigitDiscriminator, DigitGenerator
from ganzoo.precision import OVERRIDE_ENV
from ganzoo.training import Trainer, add_training_args

from app_server import free_port
from conftest import REPO_ROOT, TRAIN_SCRIPTS, reset_accelerate_state

LAUNCH_TIMEOUT_S = int(os.environ.get("GANZOO_TEST_LAUNCH_TIMEOUT_S", "120"))
TINY = ["--batch-size", "8", "--base-channels", "4", "--report-to", "none", "--cpu"]  # on the CPU on any host


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


def loop_args(tmp_path: Path, *argv: str) -> argparse.Namespace:
    parser = add_training_args(argparse.ArgumentParser(), max_steps=2, batch_size=2)
    return parser.parse_args(["--output-dir", str(tmp_path / "run"), "--report-to", "none", *argv])


@pytest.fixture
def make_trainer(tmp_path):
    """Build Trainers as fresh processes would: Accelerate's singletons are cleared before and after."""
    def make(*argv: str) -> Trainer:
        reset_accelerate_state()
        return Trainer(loop_args(tmp_path, *argv), "test")

    yield make
    reset_accelerate_state()


# -- precision ---------------------------------------------------------------------------------------------

def test_accelerate_picks_up_ACCELERATE_MIXED_PRECISION(make_trainer, monkeypatch):
    monkeypatch.setenv(OVERRIDE_ENV, "0")  # the CPU's own answer must not matter when the launcher chose
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    assert make_trainer().accelerator.mixed_precision == "bf16"
    assert make_trainer("--mixed-precision", "no").accelerator.mixed_precision == "no"  # the flag wins
    monkeypatch.setenv(OVERRIDE_ENV, "1")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    assert make_trainer().accelerator.mixed_precision == "no"


@pytest.mark.parametrize("native", [True, False], ids=["native-bf16", "no-bf16"])
def test_cpu_default_is_bf16_autocast_with_channels_last_only_where_native(make_trainer, monkeypatch, capsys, native):
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    monkeypatch.setenv(OVERRIDE_ENV, "1" if native else "0")
    trainer = make_trainer("--cpu")
    assert trainer.accelerator.mixed_precision == ("bf16" if native else "no")
    assert trainer.channels_last is native
    log = capsys.readouterr().out
    why = f"({OVERRIDE_ENV}={int(native)}"
    assert (f"precision: bf16 autocast + channels-last on the CPU {why}" if native else
            f"precision: fp32 on the CPU {why}; --mixed-precision bf16 forces bf16 autocast)") in log
    model = trainer.prepare(nn.Conv2d(3, 4, 3))
    x = torch.rand(2, 3, 8, 8)
    out = model(x)  # Accelerate hands autocast outputs back in fp32: their values show the precision
    conv = trainer.accelerator.unwrap_model(model)
    assert torch.equal(out, out.bfloat16().float()) is native
    assert torch.allclose(out, nn.functional.conv2d(x, conv.weight, conv.bias), atol=1e-6) is not native
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) is native


def test_forced_bf16_on_a_cpu_without_it_warns_that_it_is_slower(make_trainer, monkeypatch, capsys):
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    monkeypatch.setenv(OVERRIDE_ENV, "0")
    trainer = make_trainer("--cpu", "--mixed-precision", "bf16")
    assert trainer.accelerator.mixed_precision == "bf16" and trainer.channels_last
    log = capsys.readouterr().out
    assert "from --mixed-precision; this CPU has no native bf16, so expect it SLOWER than fp32" in log


@pytest.mark.parametrize("native", [True, False], ids=["bf16-simulated", "fp32-fallback"])
def test_two_step_srresnet_run_in_cpu_bf16_and_fp32(run_script, tmp_path, monkeypatch, capsys, native):
    from PIL import Image

    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    monkeypatch.setenv(OVERRIDE_ENV, "1" if native else "0")
    data = tmp_path / "hr"
    data.mkdir()
    for i in range(2):
        Image.fromarray(torch.randint(0, 256, (40, 40, 3), dtype=torch.uint8).numpy()).save(data / f"{i}.png")
    out = tmp_path / "run"
    run_script("train_srresnet", ["--train-dirs", data, "--output-dir", out, "--max-steps", "2", "--batch-size", "2",
                                  "--crop-size", "32", "--num-blocks", "1", "--channels", "8", "--report-to", "none",
                                  "--sample-every", "2", "--cpu"])
    assert ("bf16 autocast + channels-last on the CPU" if native else "fp32 on the CPU") in capsys.readouterr().out
    record = json.loads((out / "final.run.json").read_text())
    assert record["steps"] == 2 and record["hardware"].endswith(f"mixed precision: {'bf16' if native else 'no'}")
    losses = [json.loads(line)["loss"] for line in (out / "log.jsonl").read_text().splitlines() if "loss" in line]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    weights = safetensors.torch.load_file(out / "final" / "model.safetensors")
    assert all(w.dtype == torch.float32 for w in weights.values() if w.is_floating_point())  # fp32 either way
    assert ganzoo.load(out / "final")(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)


# -- resume ------------------------------------------------------------------------------------------------

def classifier_run(run_script, data: Path, out: Path, *extra) -> Path:
    run_script("train_mnist_classifier", ["--data-dir", data, "--output-dir", out, *TINY, "--max-steps", "4",
                                          "--checkpoint-every", "2", "--checkpoints-total-limit", "3", *extra])
    return out


def test_resume_from_a_checkpoint_path_or_name_continues_exactly(run_script, fake_mnist, tmp_path, capsys):
    straight = classifier_run(run_script, fake_mnist, tmp_path / "straight")
    checkpoint = straight / "checkpoints" / "checkpoint-2"
    resumed = classifier_run(run_script, fake_mnist, tmp_path / "resumed", "--resume-from-checkpoint", checkpoint)
    assert f"resumed from {checkpoint} (step 2)" in capsys.readouterr().out
    expected = safetensors.torch.load_file(straight / "final" / "model.safetensors")
    got = safetensors.torch.load_file(resumed / "final" / "model.safetensors")
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    # a bare checkpoint name is looked up in --output-dir's checkpoints; `latest` there is checkpoint-4
    classifier_run(run_script, fake_mnist, straight, "--resume-from-checkpoint", "checkpoint-2", "--max-steps", "2")
    assert "resumed from" in capsys.readouterr().out
    classifier_run(run_script, fake_mnist, straight, "--resume-from-checkpoint", "latest")
    assert "checkpoint-4 (step 4)" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="not a checkpoint-N folder"):
        classifier_run(run_script, fake_mnist, tmp_path / "bad", "--resume-from-checkpoint", tmp_path / "nope")


# -- trackers ----------------------------------------------------------------------------------------------

def test_report_to_a_tracker_that_is_absent_is_a_clear_error(make_trainer, monkeypatch):
    monkeypatch.setitem(training.TRACKERS, "wandb", lambda: False)
    with pytest.raises(ValueError, match="--report-to wandb: wandb is not installed"):
        make_trainer("--report-to", "wandb")
    monkeypatch.setitem(training.TRACKERS, "tensorboard", lambda: False)
    with pytest.raises(ValueError, match="--report-to all: neither tensorboard nor wandb is installed"):
        make_trainer("--report-to", "all")


def test_report_to_all_uses_the_installed_trackers(make_trainer, monkeypatch, tmp_path):
    pytest.importorskip("tensorboard")
    monkeypatch.setitem(training.TRACKERS, "wandb", lambda: False)
    trainer = make_trainer("--report-to", "all")
    assert [type(t).__name__ for t in trainer.accelerator.trackers] == ["TensorBoardTracker"]
    trainer.log({"loss": 1.0}, step=1)
    trainer.end()
    assert list((tmp_path / "run" / "logs").rglob("events.out.tfevents.*"))


# -- push to the Hub ---------------------------------------------------------------------------------------

class FakeHfApi:
    """Records calls the way `HfApi` receives them; `upload_folder` also snapshots the folder's files."""
    calls: list[tuple[str, dict]] = []

    def create_repo(self, repo_id: str, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return type("RepoUrl", (), {"repo_id": repo_id if "/" in repo_id else f"me/{repo_id}"})()

    def upload_folder(self, *, repo_id: str, folder_path, **kwargs):
        files = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
        self.calls.append(("upload_folder", {"repo_id": repo_id, "folder_path": Path(folder_path), "files": files,
                                             **kwargs}))
        return f"https://huggingface.co/{repo_id}/tree/main"


@pytest.fixture
def fake_hub(monkeypatch):
    FakeHfApi.calls = []
    monkeypatch.setattr(training, "HfApi", FakeHfApi)
    return FakeHfApi.calls


def test_push_to_hub_uploads_the_exported_folder_with_its_card(run_script, fake_mnist, tmp_path, fake_hub):
    out = tmp_path / "my-classifier"
    run_script("train_mnist_classifier", ["--data-dir", fake_mnist, "--output-dir", out, *TINY, "--max-steps", "2",
                                          "--push-to-hub", "--hub-model-id", "someone/tiny-digits"])
    assert [name for name, _ in fake_hub] == ["create_repo", "upload_folder"]
    assert fake_hub[0][1] == {"repo_id": "someone/tiny-digits", "exist_ok": True}
    upload = fake_hub[1][1]
    assert upload["repo_id"] == "someone/tiny-digits" and upload["folder_path"] == out / "final"
    assert sorted(upload["files"]) == ["README.md", "config.json", "model.safetensors"]
    card = upload["files"]["README.md"].decode()
    assert card == (out / "final" / "README.md").read_text() and "library_name: ganzoo" in card
    assert "2 steps" in upload["commit_message"]


def test_push_to_hub_defaults_to_the_output_dir_name_and_creates_the_repo_before_training(
        make_trainer, fake_hub, tmp_path):
    trainer = make_trainer("--push-to-hub")
    assert fake_hub == [("create_repo", {"repo_id": "run", "exist_ok": True})]
    assert trainer.hub_repo_id == "me/run" and not (tmp_path / "run" / "log.jsonl").exists()
    trainer.end()  # nothing exported: nothing to upload
    assert len(fake_hub) == 1


# -- sample accelerate configs -----------------------------------------------------------------------------

CONFIGS = Path(__file__).resolve().parent.parent / "train_scripts" / "accelerate_configs"


@pytest.mark.parametrize("name, distributed, processes, cpu", [("cpu", "NO", 1, True), ("single_gpu", "NO", 1, False),
                                                                ("multi_gpu", "MULTI_GPU", 4, False)])
def test_sample_accelerate_configs_load_in_accelerate(name, distributed, processes, cpu):
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(CONFIGS / f"{name}.yaml")  # refuses unknown keys and values
    assert (config.distributed_type.value, config.num_processes, config.use_cpu) == (distributed, processes, cpu)
    assert config.mixed_precision == ("no" if cpu else "bf16")


def test_accelerate_launch_with_the_cpu_config_passes_its_precision_to_the_loop(fake_mnist, tmp_path):
    """`accelerate launch` sets ACCELERATE_MIXED_PRECISION; the loop must use it, not a default of its own."""
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    env = {**os.environ, OVERRIDE_ENV: "0", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(CONFIGS.parent.parent)}
    env.pop("ACCELERATE_MIXED_PRECISION", None)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / "cpu.yaml"),
               "--mixed_precision", "bf16", str(CONFIGS.parent / "train_mnist_classifier.py"),
               "--data-dir", str(fake_mnist), "--output-dir", str(out), *TINY, "--max-steps", "1"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bf16 autocast + channels-last on the CPU (from the launcher" in result.stdout + result.stderr
    assert json.loads((out / "final.run.json").read_text())["hardware"].endswith("mixed precision: bf16")


def test_throughput_leaves_out_the_warm_up_step(tmp_path):
    from conftest import load_train_script

    measure = load_train_script("measure_training_throughput")
    rows = [{"step": 1, "time": 9.0}, {"step": 2, "time": 10.0, "loss": 1.0}, {"step": 3, "time": 12.0}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert measure.crops_per_second(tmp_path, crops_per_step=4) == pytest.approx(4 * 2 / 3.0)
    (tmp_path / "log.jsonl").write_text(json.dumps(rows[0]) + "\n")
    with pytest.raises(ValueError, match="at least 2 logged steps"):
        measure.crops_per_second(tmp_path, 4)
    assert set(measure.family_commands(Path("data"))) == {"mnist-dcgan", "srresnet-x4", "deblurgan", "style", "adain"}


@pytest.mark.parametrize("script,old_flag,required", [
    ("train_mnist_gan", "--base-channels", ["--data-dir", "mnist"]),
    ("train_mnist_classifier", "--base-channels", ["--data-dir", "mnist"]),
    ("train_deblur_unet", "--width", ["--train-dirs", "sharp"]),
    ("train_adain", "--width", ["--style-dirs", "styles"]),
])
def test_the_width_flag_is_channels_and_its_old_name_still_works(script, old_flag, required):
    from conftest import load_train_script

    module = load_train_script(script)
    for flag in ("--channels", old_flag):
        assert module.parse_args([*required, "--output-dir", "run", flag, "7"]).channels == 7


def test_add_vgg_args_gives_the_weights_choice_and_optionally_a_weights_file():
    from ganzoo.training import add_vgg_args

    parser = argparse.ArgumentParser()
    add_vgg_args(parser)
    assert vars(parser.parse_args([])) == {"vgg_weights": "imagenet", "vgg_weights_path": None, "vgg_pool": "max"}
    assert parser.parse_args(["--vgg-pool", "avg"]).vgg_pool == "avg"
    assert parser.parse_args(["--vgg-weights", "random", "--vgg-weights-path", "w.pth"]).vgg_weights_path == "w.pth"
    with pytest.raises(SystemExit):
        parser.parse_args(["--vgg-weights", "vgg16"])
    encoder_only = argparse.ArgumentParser()  # train_adain: the encoder is rebuilt from the config, not a file
    add_vgg_args(encoder_only, loss_network=False, weights_help="the encoder")
    assert vars(encoder_only.parse_args(["--vgg-weights", "random"])) == {"vgg_weights": "random"}
    with pytest.raises(SystemExit):
        encoder_only.parse_args(["--vgg-weights-path", "w.pth"])


def test_resolve_architecture_maps_flag_names_to_config_names_and_refuses_conflicts():
    from types import SimpleNamespace

    from ganzoo.models import AdaINStyleTransfer
    from ganzoo.training import resolve_architecture

    defaults, names = {"channels": 64, "vgg_seed": 0}, {"vgg_seed": "encoder_seed"}
    args = SimpleNamespace(channels=None, vgg_seed=None, init_from=None)
    assert resolve_architecture(args, defaults, config_names=names) == {"channels": 64, "encoder_seed": 0}
    assert (args.channels, args.vgg_seed) == (64, 0)  # the card's argument list says what was built
    loaded = AdaINStyleTransfer(channels=4, encoder_weights="random", encoder_seed=3)
    args = SimpleNamespace(channels=None, vgg_seed=None, init_from="start")
    assert resolve_architecture(args, defaults, loaded, names) == {"channels": 4, "encoder_seed": 3}
    assert args.vgg_seed == 3
    args = SimpleNamespace(channels=None, vgg_seed=5, init_from="start")
    with pytest.raises(SystemExit, match="--vgg-seed 5 conflicts with --init-from start: its config has encoder_seed=3"):
        resolve_architecture(args, defaults, loaded, names)


def test_run_history_continues_a_bundled_model_named_by_its_short_name(tmp_path):
    from types import SimpleNamespace

    from ganzoo.registry import MODELS
    from ganzoo.training import HISTORY_NAME, run_history

    bundled = json.loads((MODELS["deblur-unet"].bundled_path / HISTORY_NAME).read_text())
    trainer = SimpleNamespace(output_dir=tmp_path / "run", state=SimpleNamespace(step=7, train_seconds=360.0),
                              hardware=lambda: "1 x CPU")
    fields = run_history(trainer, "deblur-unet")
    assert fields["history"][:-1] == bundled and fields["history"][-1]["init_from"] == "deblur-unet"
    assert fields["total_steps"] == sum(h["steps"] for h in bundled) + 7
    assert run_history(trainer, str(tmp_path / "no-history"))["total_steps"] == 7  # a folder without one: this run


def test_run_history_counts_a_resumed_run_once(tmp_path):
    """--resume of a run whose export became the --init-from model: its record is replaced, not added twice."""
    from types import SimpleNamespace

    from ganzoo.training import HISTORY_NAME, run_history

    run, bundle = tmp_path / "run", tmp_path / "bundle"
    bundle.mkdir()
    earlier = [{"run": "runs/first", "steps": 100, "hours": 1.0, "init_from": None, "hardware": "cpu"},
               {"run": str(run), "steps": 50, "hours": 0.5, "init_from": "runs/first", "hardware": "cpu"}]
    (bundle / HISTORY_NAME).write_text(json.dumps(earlier))
    trainer = SimpleNamespace(output_dir=run, state=SimpleNamespace(step=80, train_seconds=2880.0),
                              hardware=lambda: "1 x CPU")
    fields = run_history(trainer, str(bundle))
    assert [h["run"] for h in fields["history"]] == ["runs/first", str(run)]
    assert fields["total_steps"] == 180 and fields["total_hours"] == 1.8


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


def entry_count(folder: Path) -> int:
    """How many entries `folder` holds; 0 once the run has renamed or removed it (it races this poll)."""
    try:
        return sum(1 for _ in folder.iterdir())
    except FileNotFoundError:
        return 0


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
                writing = [p for p in tmps if p.name.startswith(".tmp-checkpoint-")]
                if during_write and writing and (count := entry_count(writing[0])):
                    proc.send_signal(signal.SIGKILL)
                    seen = f"killed while writing {writing[0].name} ({count} entries seen)"
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


def test_train_scripts_share_code_through_the_package_not_each_other():
    """What two scripts share (e.g. the SR data helpers) lives in ganzoo/, so each script runs on its own."""
    import ast

    from conftest import TRAIN_SCRIPTS

    scripts = {path.stem: path for path in TRAIN_SCRIPTS.glob("*.py")}
    for name, path in scripts.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not imported & set(scripts), (name, imported & set(scripts))
