"""train_srresnet.py and train_srgan.py: tiny smoke runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import ganzoo
from ganzoo.models import SRGANDiscriminator, SRResNet

from conftest import TINY_SRRESNET, load_train_script, tiny_srresnet, write_png


SMOKE = ["--max-steps", "2", "--batch-size", "2", "--crop-size", "32", "--report-to", "none",
         "--eval-every", "2", "--sample-every", "2", "--cpu"]


@pytest.fixture(scope="module")
def sr_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sr-data")
    train, val = root / "train", root / "val"
    train.mkdir()
    val.mkdir()
    for i in range(3):
        write_png(train / f"t{i}.png", 48 + 8 * i, 56, seed=10 + i)
    write_png(val / "v0.png", 32, 40, seed=20)
    write_png(val / "v1.png", 36, 28, seed=21)
    return {"train": train, "val": val}


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def srresnet_run(tmp_path_factory: pytest.TempPathFactory, sr_data) -> Path:
    from conftest import run_train_script

    out = tmp_path_factory.mktemp("srresnet-run")
    run_train_script("train_srresnet", ["--train-dirs", sr_data["train"], "--val-dir", sr_data["val"],
                                        "--output-dir", out, "--num-blocks", "1", "--channels", "8", *SMOKE])
    return out


def test_srresnet_smoke_run(srresnet_run):
    model = ganzoo.load(srresnet_run / "final")
    assert isinstance(model, SRResNet) and model.scale == 4 and len(model.blocks) == 1
    evals = [row for row in read_log(srresnet_run) if "eval/psnr_y" in row]
    assert evals and evals[-1]["step"] == 2 and np.isfinite(evals[-1]["eval/psnr_y"])
    assert {"eval/ssim_y", "eval/psnr_rgb", "eval/ssim_rgb"} <= set(evals[-1])
    assert any("loss" in row for row in read_log(srresnet_run))
    assert (srresnet_run / "samples" / "step_0000002.png").is_file()
    assert (srresnet_run / "final" / "README.md").is_file()
    assert json.loads((srresnet_run / "final.run.json").read_text())["steps"] == 2


@pytest.mark.parametrize("content", [["--content-loss", "vgg22", "--vgg-weights", "random", "--lattice-weight", "10"],
                                     ["--content-loss", "dfm"]], ids=["vgg22-random-lattice", "dfm"])
def test_srgan_smoke_run(content, srresnet_run, sr_data, tmp_path, run_script):
    out = tmp_path / "srgan"
    run_script("train_srgan", ["--train-dirs", sr_data["train"], "--val-dir", sr_data["val"], "--output-dir", out,
                               "--init-from", srresnet_run / "final", *content, *SMOKE])
    generator = ganzoo.load(out / "final")
    assert isinstance(generator, SRResNet) and len(generator.blocks) == 1
    assert isinstance(ganzoo.load(out / "discriminator"), SRGANDiscriminator)
    initial = ganzoo.load(srresnet_run / "final")
    assert any(not torch.equal(a, b) for a, b in zip(generator.state_dict().values(),
                                                     initial.state_dict().values()))  # it trained
    rows = read_log(out)
    assert any("eval/psnr_y" in row and np.isfinite(row["eval/psnr_y"]) for row in rows)
    assert any({"d_loss", "g_adv", "content"} <= set(row) for row in rows)
    lattice = [row["lattice"] for row in rows if "lattice" in row]
    assert lattice and all(value > 0 for value in lattice) == ("--lattice-weight" in content)
    card = (out / "final" / "README.md").read_text()
    assert ("fixed random weights" in card) if content[1] == "vgg22" else ("feature matching" in card)


def test_srgan_rejects_a_non_sr_init(sr_data, tmp_path, run_script):
    folder = tmp_path / "x2"
    tiny_srresnet(2).save_pretrained(folder)
    with pytest.raises(SystemExit, match="SRResNet x4"):
        run_script("train_srgan", ["--train-dirs", sr_data["train"], "--output-dir", tmp_path / "run",
                                   "--init-from", folder, "--content-loss", "dfm", *SMOKE])


def test_srresnet_init_from_continues_the_model_and_its_history(srresnet_run, sr_data, tmp_path, run_script):
    out = tmp_path / "continued"
    run_script("train_srresnet", ["--train-dirs", sr_data["train"], "--output-dir", out, "--init-from",
                                  srresnet_run / "final", "--lattice-weight", "10", "--frequency-weight", "1",
                                  *SMOKE])
    model = ganzoo.load(out / "final")
    assert isinstance(model, SRResNet) and len(model.blocks) == 1  # the architecture came from its config
    history = json.loads((out / "final" / "training_history.json").read_text())
    assert [h["steps"] for h in history] == [2, 2]  # the first run's record, then this one's
    assert history[0]["init_from"] is None and history[1]["init_from"] == str(srresnet_run / "final")
    assert any(row.get("lattice", 0) > 0 for row in read_log(out))
    card = (out / "final" / "README.md").read_text()
    assert "10 x lattice" in card and "1 x focal frequency" in card
    with pytest.raises(SystemExit, match="--channels 16 conflicts with --init-from"):
        run_script("train_srresnet", ["--train-dirs", sr_data["train"], "--output-dir", tmp_path / "bad",
                                      "--init-from", srresnet_run / "final", "--channels", "16", *SMOKE])


def test_trunk_from_gives_a_resize_convolution_model_the_trained_trunk_and_phase_averaged_filters():
    copy_trunk = load_train_script("train_srresnet").copy_trunk
    torch.manual_seed(0)
    source = SRResNet(scale=4, **TINY_SRRESNET).eval()
    for module in source.upsample:
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight)  # distinct phase filters, as after training
    model = SRResNet(scale=4, upsample="bilinear", **TINY_SRRESNET).eval()
    copy_trunk(source, model)
    target = model.state_dict()
    for name, value in source.state_dict().items():
        if not name.startswith("upsample."):
            assert torch.equal(target[name], value), name
    assert torch.allclose(model.upsample[1].weight, source.upsample[0].weight.unflatten(0, (-1, 4)).mean(1))
    assert torch.allclose(model.upsample[4].bias, source.upsample[3].bias.unflatten(0, (-1, 4)).mean(1))
    with pytest.raises(SystemExit, match="SRResNet x4"):
        copy_trunk(tiny_srresnet(2), model)


def test_export_checkpoint_bundles_an_earlier_step_with_its_own_record(sr_data, tmp_path, run_script, cpu_bf16):
    """On a CPU with native bf16 the loop trains with bf16 autocast by default, and the exported card says so."""
    from safetensors.torch import load_file

    run = tmp_path / "run"
    run_script("train_srresnet", ["--train-dirs", sr_data["train"], "--output-dir", run, "--num-blocks", "1",
                                  "--channels", "8", *SMOKE, "--checkpoint-every", "1"])
    out = tmp_path / "step1"
    run_script("export_checkpoint", ["--run", run, "--step", "1", "--why", "a test", "--card", "super-resolution.md",
                                     "--output", out])
    exported, final = ganzoo.load(out), ganzoo.load(run / "final")
    saved = load_file(run / "checkpoints" / "checkpoint-1" / "model.safetensors")
    assert all(torch.equal(v, saved[k]) for k, v in exported.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(exported.state_dict().values(), final.state_dict().values()))
    record = json.loads((tmp_path / "step1.run.json").read_text())
    assert record["steps"] == 1 and "which ran 2 steps: a test" in record["checkpoint_of"]
    assert record["hardware"].endswith(f"mixed precision: {'bf16' if cpu_bf16 else 'no'}")
    assert all(w.dtype == torch.float32 for w in saved.values() if w.is_floating_point())  # fp32 weights either way
    precision = "bf16" if cpu_bf16 else "no"
    assert f"Steps: 1 ({precision} mixed precision): the checkpoint at step 1 of" in (out / "README.md").read_text()
    with pytest.raises(SystemExit, match="past the run's end"):
        run_script("export_checkpoint", ["--run", run, "--step", "3", "--why", "x", "--card", "super-resolution.md",
                                         "--output", tmp_path / "step3"])
