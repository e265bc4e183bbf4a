"""The training loop's diffusers-style options: precision from the launcher (and CPU bf16 where native),
--resume-from-checkpoint, --report-to and --push-to-hub (against a stand-in for the Hub API)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
from conftest import reset_accelerate_state
from torch import nn

import ganzoo
import ganzoo.training as training
from ganzoo.precision import OVERRIDE_ENV
from ganzoo.training import Trainer, add_training_args

TINY = ["--batch-size", "8", "--base-channels", "4", "--report-to", "none"]


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
    assert vars(parser.parse_args([])) == {"vgg_weights": "imagenet", "vgg_weights_path": None}
    assert parser.parse_args(["--vgg-weights", "random", "--vgg-weights-path", "w.pth"]).vgg_weights_path == "w.pth"
    with pytest.raises(SystemExit):
        parser.parse_args(["--vgg-weights", "vgg16"])
    encoder_only = argparse.ArgumentParser()  # train_adain: the encoder is rebuilt from the config, not a file
    add_vgg_args(encoder_only, weights_path=False, weights_help="the encoder")
    assert vars(encoder_only.parse_args(["--vgg-weights", "random"])) == {"vgg_weights": "random"}
    with pytest.raises(SystemExit):
        encoder_only.parse_args(["--vgg-weights-path", "w.pth"])
