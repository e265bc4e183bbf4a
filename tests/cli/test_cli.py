from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from ganzoo import cli
from ganzoo.cli import main
from ganzoo.cli import main as cli_main
from ganzoo.models.digits import DigitClassifier, DigitGenerator

from conftest import write_png

SR_KEYS = {"n", "psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "grid", "detail", "images", "model", "data", "scale", "precision"}
DIGIT_KEYS = {"fid", "fid_real_floor", "class_accuracy", "class_accuracy_per_class", "classifier_test_accuracy",
              "n", "model", "classifier", "data"}


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("generator")
    DigitGenerator(channels=4).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("classifier")
    DigitClassifier(channels=2, feature_dim=8).save_pretrained(folder)
    return folder


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_json_lists_the_registry(capsys):
    code, out, _ = _run(capsys, "models", "--json")
    entries = json.loads(out)
    assert code == 0 and "mnist-dcgan" in {e["name"] for e in entries}
    assert set(entries[0]) == {"name", "task", "repo_id", "bundled", "description"}


def test_sample_is_byte_identical_per_seed(tmp_path, capsys, generator_dir):
    def sample(name: str, seed: int) -> bytes:
        path = tmp_path / name
        assert _run(capsys, "sample", "-o", str(path), "--model", str(generator_dir), "--n", "6", "--nrow", "3",
                    "--seed", str(seed), "--device", "cpu")[0] == 0
        return path.read_bytes()

    first = sample("a.png", 1)
    assert first == sample("b.png", 1)
    assert first != sample("c.png", 2)
    assert Image.open(tmp_path / "a.png").size == (3 * 30 + 2, 2 * 30 + 2)


def test_upscale_reports_a_bad_file_and_finishes_the_rest(tmp_path, capsys):
    inputs, output = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(inputs / f"{i}.png")
    (inputs / "bad.png").write_text("not an image")
    code, _, err = _run(capsys, "upscale", str(inputs), "-o", str(output), "--model", "bicubic", "--device", "cpu")
    assert code == 1
    assert sorted(p.name for p in output.iterdir()) == ["0.png", "1.png"]
    assert Image.open(output / "0.png").size == (20, 24)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(inputs / "bad.png") in errors[0] and "not an image" in errors[0]


def test_evaluate_sr_bicubic_json(tmp_path, capsys):
    for name, crop in (("astronaut", data.astronaut()[100:164, 150:214]), ("coffee", data.coffee()[:48, :64])):
        Image.fromarray(crop).save(tmp_path / f"{name}.png")
    code, out, _ = _run(capsys, "evaluate", "sr", "--model", "bicubic", "--data", str(tmp_path), "--scale", "4",
                        "--json", "--device", "cpu")
    result = json.loads(out)
    assert code == 0 and set(result) == SR_KEYS
    assert result["n"] == 2 and result["scale"] == 4 and result["model"] == "bicubic"
    assert [row["image"] for row in result["images"]] == ["astronaut", "coffee"]
    assert 15 < result["psnr_y"] < 45 and 0 < result["ssim_y"] < 1
    assert result["psnr_rgb"] < result["psnr_y"] + 5 and 0 < result["ssim_rgb"] < 1


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # an untrained tiny classifier has dead features
def test_evaluate_digits_json(capsys, generator_dir, classifier_dir, fake_mnist):
    code, out, _ = _run(capsys, "evaluate", "digits", "--model", str(generator_dir), "--classifier",
                        str(classifier_dir), "--data", str(fake_mnist), "--samples-per-class", "3", "--json",
                        "--device", "cpu")
    result = json.loads(out)
    assert code == 0 and set(result) == DIGIT_KEYS
    assert result["n"] == 30 and len(result["class_accuracy_per_class"]) == 10
    assert np.isfinite(result["fid"]) and 0 <= result["class_accuracy"] <= 1


def test_unknown_model_is_one_error_line(tmp_path, capsys):
    code, _, err = _run(capsys, "sample", "-o", str(tmp_path / "x.png"), "--model", "no-such-model", "--device", "cpu")
    assert code == 2 and err.startswith("error: ") and "no-such-model" in err and len(err.splitlines()) == 1


def test_wrong_kind_of_model_is_an_error(tmp_path, capsys, classifier_dir):
    code, _, err = _run(capsys, "sample", "-o", str(tmp_path / "x.png"), "--model", str(classifier_dir), "--device",
                        "cpu")
    assert code == 2 and "DigitClassifier, not a DigitGenerator" in err


def test_console_entry_point_exits_2_without_traceback(tmp_path):
    run = subprocess.run([sys.executable, "-m", "ganzoo.cli", "evaluate", "sr", "--model", "bicubic", "--data",
                          str(tmp_path / "missing"), "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip() == f"error: {tmp_path / 'missing'}: not a folder"


@pytest.mark.parametrize("command", [["upscale", "x.png", "-o", "out"], ["deblur", "x.png", "-o", "out"],
                                     ["stylize", "x.png", "-o", "out", "--style", "mosaic"],
                                     ["evaluate", "sr", "--data", "d"], ["evaluate", "deblur", "--data", "d"]])
def test_a_tile_too_small_for_the_overlap_is_a_usage_error(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--tile", "32"])
    assert exit_info.value.code == 2
    assert "--tile must be more than 32 (tiles overlap by 16 pixels on each side), got 32" in capsys.readouterr().err


def test_cli_upscale_writes_4x_images(tiny_model_dir, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_png(inputs / "a.png", 13, 17, seed=0)
    Image.fromarray(data.camera()[:20, :24]).save(inputs / "grey.jpg")
    out = tmp_path / "out"
    assert cli_main(["upscale", str(inputs), "-o", str(out), "--model", str(tiny_model_dir), "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "grey.png"]
    assert Image.open(out / "a.png").size == (68, 52)
    assert Image.open(out / "grey.png").size == (96, 80)


def test_sets_are_deterministic_by_seed(photos, tmp_path, capsys):
    def build(name, seed):
        out = tmp_path / name
        assert cli.main(["make-blur-set", "--images", str(photos), "--first", "2", "-o", str(out), "--kernels", "2",
                         "--sizes", "9", "15", "--seed", str(seed)]) == 0
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.png"))}

    first, again, other = build("a", 0), build("b", 0), build("c", 1)
    assert first == again and len(first) == 2 + 4 + 2  # sharp, blurred, kernels
    assert sorted(first) == ["blurred/astronaut_kernel_01.png", "blurred/astronaut_kernel_02.png",
                             "blurred/chelsea_kernel_01.png", "blurred/chelsea_kernel_02.png",
                             "kernels/kernel_01.png", "kernels/kernel_02.png", "sharp/astronaut.png", "sharp/chelsea.png"]
    assert first != other
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["sizes"] == [9, 15]
    assert cli.main(["make-blur-set", "--images", str(photos), "-o", str(tmp_path / "a"), "--lengths", "5", "9"]) == 2
    assert "not empty" in capsys.readouterr().err


def test_speed_variation_changes_the_kernels_and_is_recorded(photos, tmp_path, capsys):
    def kernels(name, *extra):
        out = tmp_path / name
        assert cli.main(["make-blur-set", "--images", str(photos), "--first", "1", "-o", str(out), "--kernels", "2",
                         "--sizes", "9", "15", "--seed", "0", *extra]) == 0
        return out, [p.read_bytes() for p in sorted((out / "kernels").iterdir())]

    _, constant = kernels("constant")
    varied_dir, varied = kernels("varied", "--speed-variation", "1")
    assert varied != constant
    assert json.loads((varied_dir / "manifest.json").read_text())["speed_variation"] == 1.0
    assert cli.main(["make-blur-set", "--images", str(photos), "-o", str(tmp_path / "bad"), "--sizes", "9", "15",
                     "--speed-variation", "-1"]) == 2
    assert "--speed-variation must be at least 0" in capsys.readouterr().err
