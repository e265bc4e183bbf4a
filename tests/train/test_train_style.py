"""train_style.py and train_adain.py: tiny smoke runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

import ganzoo
from ganzoo.models import AdaINStyleTransfer, TransformerNet

from conftest import tiny_net


@pytest.fixture(scope="module")
def image_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("style-data")
    for folder, images in (("content", [data.astronaut(), data.chelsea(), data.coffee()]),
                           ("styles", [data.rocket(), data.colorwheel()[..., :3]])):
        (root / folder).mkdir()
        for i, array in enumerate(images):
            Image.fromarray(array).resize((64, 48)).save(root / folder / f"{i}.png")
    return {"content": root / "content", "styles": root / "styles"}


def test_train_style_smoke(run_script, image_dirs, tmp_path):
    out = tmp_path / "run"
    run_script("train_style", [
        "--style-image", image_dirs["styles"] / "0.png", "--style-name", "rocket", "--style-credit", "skimage.data",
        "--content-dirs", image_dirs["content"], "--crop-size", "32", "--style-size", "48", "--batch-size", "2",
        "--channels", "4", "--num-blocks", "1", "--vgg-weights", "random", "--max-steps", "2",
        "--sample-every", "2", "--output-dir", out, "--report-to", "none", "--cpu", "--tv-weight", "0.1"])
    model = ganzoo.load(out / "final")
    assert isinstance(model, TransformerNet)
    card = (out / "final" / "README.md").read_text()
    assert "fixed random weights" in card and "skimage.data" in card and "rocket" in card
    assert (out / "final" / "style.jpg").is_file() and (out / "samples" / "step_0000002.png").is_file()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(row["loss"]) for row in log if "loss" in row)


def test_train_adain_smoke(run_script, image_dirs, tmp_path):
    out = tmp_path / "run"
    run_script("train_adain", [
        "--content-dirs", image_dirs["content"], "--style-dirs", image_dirs["styles"], "--crop-size", "32",
        "--resize", "40", "--batch-size", "2", "--channels", "4", "--vgg-weights", "random", "--max-steps", "2",
        "--sample-every", "2", "--output-dir", out, "--report-to", "none", "--cpu", "--identity-weight", "5"])
    model = ganzoo.load(out / "final")
    assert isinstance(model, AdaINStyleTransfer) and model._hub_mixin_config["encoder_weights"] == "random"
    card = (out / "final" / "README.md").read_text()
    assert "Encoder: VGG19 (relu1_1, relu2_1, relu3_1, relu4_1) with fixed random weights" in card
    assert "2 style images" in card and (out / "samples" / "step_0000002.png").is_file()
    assert "5.0 x the identity loss" in card
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all(row["identity"] > 0 for row in log if "loss" in row)


def test_train_adain_continues_with_init_from_whose_config_decides_the_encoder(run_script, image_dirs, tmp_path):
    common = ["--content-dirs", image_dirs["content"], "--style-dirs", image_dirs["styles"], "--crop-size", "32",
              "--resize", "40", "--batch-size", "2", "--max-steps", "1", "--report-to", "none", "--cpu"]
    first = tmp_path / "first"
    run_script("train_adain", [*common, "--channels", "4", "--vgg-weights", "random", "--vgg-seed", "3",
                               "--output-dir", first])
    second = tmp_path / "second"
    run_script("train_adain", [*common, "--init-from", first / "final", "--identity-weight", "5",
                               "--output-dir", second])
    start, model = ganzoo.load(first / "final"), ganzoo.load(second / "final")
    assert model._hub_mixin_config == {"channels": 4, "encoder_weights": "random", "encoder_seed": 3,
                                       "upsample": "nearest"}
    assert any((a != b).any() for a, b in zip(start.decoder.parameters(), model.decoder.parameters()))
    history = json.loads((second / "final" / "training_history.json").read_text())
    assert [h["steps"] for h in history] == [1, 1] and history[1]["init_from"] == str(first / "final")
    card = (second / "final" / "README.md").read_text()
    assert "All runs behind these weights: **2 steps" in card and f"Continued from `{first / 'final'}`" in card
    with pytest.raises(SystemExit, match="--vgg-seed 0 conflicts with --init-from"):  # never silently replaced
        run_script("train_adain", [*common, "--init-from", first / "final", "--vgg-seed", "0",
                                   "--output-dir", tmp_path / "conflict"])
    third = tmp_path / "third"  # upsampling has no weights: switching it keeps the decoder (lr 0: unchanged)
    run_script("train_adain", [*common, "--init-from", second / "final", "--upsample", "bilinear", "--lr", "0",
                               "--output-dir", third])
    switched = ganzoo.load(third / "final")
    assert switched._hub_mixin_config["upsample"] == "bilinear"
    assert all(m.mode == "bilinear" for m in switched.decoder.modules() if isinstance(m, torch.nn.Upsample))
    assert all(torch.equal(a, b) for a, b in zip(model.decoder.parameters(), switched.decoder.parameters()))



def test_bundle_model_puts_adain_style_scores_on_the_card(run_script, image_dirs, tmp_path, monkeypatch, capsys):
    from conftest import load_train_script
    from ganzoo.cli import main as cli_main

    out = tmp_path / "run"
    run_script("train_adain", ["--content-dirs", image_dirs["content"], "--style-dirs", image_dirs["styles"],
                               "--crop-size", "32", "--resize", "40", "--batch-size", "2", "--channels", "4",
                               "--vgg-weights", "random", "--max-steps", "1", "--report-to", "none", "--cpu",
                               "--output-dir", out])
    capsys.readouterr()
    results = {}
    for name, extra in (("reconstruction", ["--reconstruct"]), ("mosaic", ["--style", image_dirs["styles"] / "0.png"])):
        assert cli_main(["evaluate", "style", "--model", str(out / "final"), "--data", str(image_dirs["content"]),
                         *map(str, extra), "--max-size", "48", "--json", "--device", "cpu"]) == 0
        results[name] = tmp_path / f"{name}.json"
        results[name].write_text(capsys.readouterr().out)
    bundle = load_train_script("bundle_model")
    monkeypatch.setattr(bundle, "PRETRAINED_DIR", tmp_path / "pretrained")
    bundle.main(["--export", str(out / "final"), "--name", "adain-test", "--card", "adain.md",
                 *[f"--style-json={name}={file}" for name, file in results.items()]])
    card = (tmp_path / "pretrained" / "adain-test" / "README.md").read_text()
    scores = json.loads(results["reconstruction"].read_text())
    assert f"| reconstruction (3 images) | {scores['grid']:.2f} |" in card
    pinned = f"--device cpu --precision {scores['precision']}"  # the card's command reproduces the measured precision anywhere
    assert (f"`ganzoo evaluate style --model adain-test --data {image_dirs['content']} --reconstruct --max-size 48 "
            f"{pinned} --json`") in card
    assert f"--style {image_dirs['styles'] / '0.png'} --max-size 48 {pinned} --json`" in card


def test_train_style_with_multiscale_features_and_init_from(run_script, image_dirs, tmp_path):
    start = tmp_path / "start"
    tiny_net().save_pretrained(start)
    out = tmp_path / "run"
    run_script("train_style", [
        "--style-image", image_dirs["styles"] / "0.png", "--content-dirs", image_dirs["content"],
        "--crop-size", "32", "--style-size", "48", "--batch-size", "2", "--init-from", start,
        "--upsample", "bilinear", "--features", "multiscale", "--vgg-seed", "5", "--max-steps", "2",
        "--sample-every", "2", "--output-dir", out, "--report-to", "none", "--cpu"])
    model = ganzoo.load(out / "final")
    assert model._hub_mixin_config == {"channels": 4, "num_blocks": 1, "upsample": "bilinear"}
    card = (out / "final" / "README.md").read_text()
    assert "multi-scale random features" in card and "seed 5" in card and "k3s2" in card
    history = json.loads((out / "final" / "training_history.json").read_text())
    assert [(h["steps"], h["init_from"]) for h in history] == [(2, str(start))]
    with pytest.raises(SystemExit, match="--channels 8 conflicts with --init-from"):  # never silently replaced
        run_script("train_style", [
            "--style-image", image_dirs["styles"] / "0.png", "--content-dirs", image_dirs["content"],
            "--crop-size", "32", "--style-size", "48", "--init-from", start, "--channels", "8",
            "--features", "multiscale", "--output-dir", tmp_path / "conflict", "--report-to", "none", "--cpu"])


def test_bundle_model_sums_a_history_written_beside_the_export(run_script, image_dirs, tmp_path, monkeypatch):
    """A model whose earlier runs predate `training_history.json` gets them added by hand; the bundle sums them."""
    from conftest import load_train_script

    out = tmp_path / "run"
    run_script("train_style", [
        "--style-image", image_dirs["styles"] / "0.png", "--content-dirs", image_dirs["content"], "--crop-size", "32",
        "--style-size", "48", "--batch-size", "2", "--channels", "4", "--num-blocks", "1", "--vgg-weights", "random",
        "--max-steps", "1", "--output-dir", out, "--report-to", "none", "--cpu"])
    earlier = [{"run": "runs/a", "steps": 600, "hours": 0.13, "init_from": None, "hardware": "1 x CPU"},
               {"run": "runs/b", "steps": 100, "hours": 0.08, "init_from": "x", "hardware": "1 x CPU"}]
    (out / "final" / "training_history.json").write_text(json.dumps(earlier))
    bundle = load_train_script("bundle_model")
    monkeypatch.setattr(bundle, "PRETRAINED_DIR", tmp_path / "pretrained")
    bundle.main(["--export", str(out / "final"), "--name", "style-test", "--card", "style.md"])
    card = (tmp_path / "pretrained" / "style-test" / "README.md").read_text()
    assert "All runs behind these weights: **700 steps, 0.21 h**" in card and "`runs/b`: 100 steps" in card
    assert json.loads((tmp_path / "pretrained" / "style-test" / "training_history.json").read_text()) == earlier
