"""bf16 on the CPU: the choice of precision, the bf16 form of a model, the quality gate, and --precision."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

import ganzoo
from ganzoo import pipelines, precision, quality_gate
from ganzoo.cli import main
from ganzoo.inference import for_inference, output_conv, to_bf16
from ganzoo.models import DeblurGANGenerator, TransformerNet
from ganzoo.models.srgan import SRResNet

CPU = torch.device("cpu")


@pytest.fixture
def tiny_sr() -> SRResNet:
    torch.manual_seed(0)
    return SRResNet(scale=4, num_blocks=1, channels=8).eval()


def write_gate(path: Path, model: torch.nn.Module, passed: bool) -> Path:
    path.write_text(json.dumps({"tiny": {"weights_sha256": quality_gate.weights_sha256(model), "passed": passed}}))
    return path


# -- which precision runs ------------------------------------------------------------------------------

def test_auto_is_fp32_without_native_bf16(monkeypatch, tiny_sr, tmp_path):
    monkeypatch.setenv(precision.OVERRIDE_ENV, "0")
    monkeypatch.setattr(quality_gate, "GATE_FILE", write_gate(tmp_path / "gate.json", tiny_sr, True))
    assert pipelines.model_precision(tiny_sr, CPU) == "fp32"
    assert pipelines.model_precision(tiny_sr, CPU, "bf16") == "bf16"  # explicit: emulated, slow, but asked for


def test_auto_is_bf16_on_a_bf16_cpu_only_for_weights_that_passed_the_gate(monkeypatch, tiny_sr, tmp_path):
    monkeypatch.setenv(precision.OVERRIDE_ENV, "1")
    monkeypatch.setattr(quality_gate, "GATE_FILE", tmp_path / "missing.json")
    assert pipelines.model_precision(tiny_sr, CPU) == "fp32"  # never gated
    monkeypatch.setattr(quality_gate, "GATE_FILE", write_gate(tmp_path / "failed.json", tiny_sr, False))
    assert pipelines.model_precision(tiny_sr, CPU) == "fp32"
    monkeypatch.setattr(quality_gate, "GATE_FILE", write_gate(tmp_path / "passed.json", tiny_sr, True))
    assert pipelines.model_precision(tiny_sr, CPU) == "bf16"
    assert pipelines.model_precision(tiny_sr, CPU, "fp32") == "fp32"
    assert pipelines.model_precision(tiny_sr, torch.device("meta")) == "fp32"  # unmeasured off the CPU
    with torch.no_grad():
        tiny_sr.tail.bias.add_(1e-3)  # other weights: the gate's verdict no longer applies
    assert pipelines.model_precision(tiny_sr, CPU) == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        pipelines.model_precision(tiny_sr, CPU, "int8")


# -- the bf16 form -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", [SRResNet(scale=4, num_blocks=1, channels=8), DeblurGANGenerator(8, 1),
                                   TransformerNet(channels=4, num_blocks=1)], ids=lambda m: type(m).__name__)
def test_to_bf16_keeps_only_the_output_conv_in_fp32(model):
    torch.manual_seed(0)
    for parameter in model.parameters():  # DeblurGAN's tail starts at zero: give every layer some weight
        torch.nn.init.normal_(parameter, std=0.1)
    model.eval()
    assert output_conv(model).out_channels == 3  # the last conv registered is the one that makes the image
    fast = to_bf16(for_inference(model))
    convs = [m for m in fast.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.weight.dtype for c in convs] == [torch.bfloat16] * (len(convs) - 1) + [torch.float32]
    x = torch.rand(1, 3, 24, 24)
    with torch.inference_mode():
        reference, out = model(x), fast(x)
    assert out.dtype == torch.float32 and out.shape == reference.shape
    diff = (out - reference).abs()
    assert diff.max() > 0 and diff.mean() < 0.01  # bf16 did run (not fp32), and stayed near fp32
    assert next(model.parameters()).dtype == torch.float32  # the original is untouched


def test_pipeline_bf16_upscale_is_close_to_fp32(tiny_sr):
    photo = Image.fromarray(data.astronaut()[:40, :48])
    fp32, bf16 = (np.asarray(pipelines.upscale(photo, tiny_sr, precision=p), dtype=float) for p in ("fp32", "bf16"))
    assert fp32.shape == bf16.shape == (160, 192, 3)
    assert 0 < np.abs(fp32 - bf16).mean() < 1.0  # grey levels


# -- the quality bar, on a small fixture with the bundled weights -----------------------------------------

def crops(folder: Path, size: int, count: int = 2) -> Path:
    folder.mkdir(parents=True)
    for i, image in enumerate([data.astronaut(), data.coffee(), data.chelsea()][:count]):
        Image.fromarray(np.ascontiguousarray(image[100:100 + size, 100:100 + size])).save(folder / f"{i}.png")
    return folder


def test_bundled_srresnet_passes_the_bf16_bar_on_small_crops(tmp_path):
    model = ganzoo.load("srresnet-x4")
    result = quality_gate.gate_sr(model, [crops(tmp_path / "hr", 64)])["hr"]
    assert result["passed"] and result["n"] == 2
    assert abs(result["delta"]["psnr_y"]) <= quality_gate.BAR["psnr_db"]
    assert abs(result["delta"]["ssim_y"]) <= quality_gate.BAR["ssim"]
    assert result["delta"]["psnr_y"] != 0.0  # the bf16 run really was bf16


def test_bundled_style_network_passes_the_bf16_bar_on_small_crops(tmp_path):
    result = quality_gate.gate_style(ganzoo.load("style-mosaic"), crops(tmp_path / "content", 48))["content"]
    assert result["passed"] and 0 < result["mean_abs_diff"] < 1 / 255


def test_the_gate_fails_a_model_whose_bf16_form_is_off(monkeypatch, tmp_path, tiny_sr):
    def noisy(model):
        form = to_bf16(model)
        form.register_forward_hook(lambda module, args, out: out + 0.05)
        return form
    monkeypatch.setattr(pipelines, "to_bf16", noisy)
    result = quality_gate.gate_sr(tiny_sr, [crops(tmp_path / "hr", 32)])["hr"]
    assert not result["passed"] and abs(result["delta"]["psnr_y"]) > quality_gate.BAR["psnr_db"]


def test_gate_records_are_found_by_weights_and_written_by_main(monkeypatch, tmp_path, tiny_sr):
    monkeypatch.setattr(quality_gate, "gate_model", lambda model, data_dir: {
        "weights_sha256": quality_gate.weights_sha256(model), "passed": True})
    gate = tmp_path / "gate.json"
    assert quality_gate.main(["--models", "tiny", "--write", "--gate-file", str(gate)], load=lambda name: tiny_sr) == 0
    record = json.loads(gate.read_text())["tiny"]
    assert record["command"].startswith("python -m ganzoo.quality_gate --models tiny")
    assert quality_gate.bf16_passed(tiny_sr, gate)
    assert not quality_gate.bf16_passed(SRResNet(scale=4, num_blocks=1, channels=8), gate)


def test_the_bundled_gate_file_is_consistent():
    records = json.loads(quality_gate.GATE_FILE.read_text())
    for record in records.values():
        assert record["passed"] == all(r["passed"] for r in record["results"].values())
        assert record["command"].startswith("python -m ganzoo.quality_gate")
    # the key is stable across loads: the bundled srresnet-x4 is found by its weights
    assert records["srresnet-x4"]["weights_sha256"] == quality_gate.weights_sha256(ganzoo.load("srresnet-x4"))


# -- --precision on the commands ----------------------------------------------------------------------

@pytest.fixture
def model_dirs(tmp_path: Path) -> dict[str, Path]:
    # each model seeded on its own, so that a change in one constructor's initialisation leaves the others' weights
    dirs = {"sr": tmp_path / "sr", "deblur": tmp_path / "deblur", "style": tmp_path / "style"}
    for kind, build in (("sr", lambda: SRResNet(scale=4, num_blocks=1, channels=8)),
                        ("deblur", lambda: DeblurGANGenerator(8, 1)),
                        ("style", lambda: TransformerNet(channels=4, num_blocks=1))):
        torch.manual_seed(0)
        build().save_pretrained(dirs[kind])
    return dirs


@pytest.mark.parametrize("command", ["upscale", "deblur", "stylize"])
def test_precision_option_on_each_image_command(command, model_dirs, tmp_path, capsys):
    images = crops(tmp_path / "in", 24, count=1)
    kind = {"upscale": "sr", "deblur": "deblur", "stylize": "style"}[command]
    model = ["--style" if command == "stylize" else "--model", str(model_dirs[kind])]
    outputs = {}
    for choice in ("fp32", "bf16", "auto"):
        assert main([command, str(images), "-o", str(tmp_path / choice), *model, "--precision", choice]) == 0
        outputs[choice] = np.asarray(Image.open(tmp_path / choice / "0.png"), dtype=float)
    # a sanity bound for tiny random weights (bf16 keeps ~3 significant digits); the quality bar for trained
    # models is the gate's, tested above
    assert np.abs(outputs["fp32"] - outputs["bf16"]).mean() < 3.0
    assert np.array_equal(outputs["auto"], outputs["fp32"]) or precision.cpu_bf16_support().native
    with pytest.raises(SystemExit):
        main([command, str(images), "-o", str(tmp_path / "x"), *model, "--precision", "fp16"])
    assert "invalid choice" in capsys.readouterr().err


def test_evaluate_json_reports_the_precision_that_ran(monkeypatch, model_dirs, tmp_path, capsys):
    hr = crops(tmp_path / "hr", 32)
    monkeypatch.setenv(precision.OVERRIDE_ENV, "0")
    for choice, expected in (("auto", "fp32"), ("fp32", "fp32"), ("bf16", "bf16")):
        assert main(["evaluate", "sr", "--model", str(model_dirs["sr"]), "--data", str(hr), "--json",
                     "--precision", choice]) == 0
        assert json.loads(capsys.readouterr().out)["precision"] == expected
    monkeypatch.setenv(precision.OVERRIDE_ENV, "1")
    monkeypatch.setattr(quality_gate, "bf16_passed", lambda model, path=None: True)
    assert main(["evaluate", "sr", "--model", str(model_dirs["sr"]), "--data", str(hr), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "bf16"
    assert main(["evaluate", "deblur", "--model", str(model_dirs["deblur"]), "--data", str(hr), "--trajectories",
                 "1", "--no-reference", "--json", "--precision", "fp32"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "fp32"


def test_adain_refuses_bf16():
    from ganzoo.models.style import AdaINStyleTransfer

    with pytest.raises(ValueError, match="AdaIN runs in fp32"):
        pipelines.stylizer(AdaINStyleTransfer.__new__(AdaINStyleTransfer), style=torch.rand(1, 3, 8, 8),
                           precision="bf16")
