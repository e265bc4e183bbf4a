import json
from pathlib import Path

import pytest
import torch

from ganzoo import benchmark, pipelines
from ganzoo.cli import main
from ganzoo.models.srgan import SRResNet

LATENCY_KEYS = {"median", "p10", "p90", "iqr", "min"}
PATH_KEYS = {"name", "status", "settings", "setup_s", "latency_ms", "images_per_s", "output_mpix_per_s",
             "peak_mem_mb", "ratio", "max_abs_diff", "matches", "tflop_per_s"}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-srresnet")
    SRResNet(scale=4, num_blocks=1, channels=8).save_pretrained(folder)
    return folder


def test_benchmark_json_has_every_cpu_path(tiny_dir, capsys):
    threads = torch.get_num_threads()
    code = main(["benchmark", "--model", str(tiny_dir), "--size", "16", "--repeats", "2", "--warmup", "1",
                 "--no-compile", "--threads", "1", "--thread-sweep", "1", "--json", "--device", "cpu"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and torch.get_num_threads() == threads  # the thread setting does not leak
    assert {"model", "size", "batch", "device", "threads", "torch_version", "flops", "paths"} <= set(result)
    assert result["size"] == 16 and result["batch"] == 1 and result["device"] == "cpu"
    assert result["flops"] > 0 and result["torch_version"] == torch.__version__
    paths = {row["name"]: row for row in result["paths"]}
    needed = {"baseline", "inference_mode", "channels_last", "exact rewrites", "exact rewrites + channels_last",
              "default (pipelines)", "onnxruntime", "channels_last, 1 thread"}
    assert needed <= set(paths) and not any("compile" in name for name in paths)
    for name in needed:
        row = paths[name]
        assert row["status"] == "ok" and PATH_KEYS <= set(row) and set(row["latency_ms"]) == LATENCY_KEYS
        assert row["max_abs_diff"] < 1e-4 and row["matches"] and row["ratio"] > 0 and row["images_per_s"] > 0
    assert paths["baseline"]["ratio"] == 1.0 and paths["baseline"]["max_abs_diff"] == 0.0
    assert paths["channels_last, 1 thread"]["settings"]["threads"] == 1
    assert paths["baseline"]["settings"]["rewrites"] == "none"
    assert paths["default (pipelines)"]["settings"]["rewrites"].startswith("folded batch norms")
    assert result["fastest_matching"] in paths


def test_benchmark_table(tiny_dir, capsys):
    code = main(["benchmark", "--model", str(tiny_dir), "--size", "8", "--repeats", "1", "--warmup", "0",
                 "--no-compile", "--no-onnx", "--threads", "1", "--thread-sweep", "none", "--tiled", "40",
                 "--tiled-size", "48", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    assert "baseline" in out and "channels_last" in out and "onnxruntime" not in out
    assert "tiled 40 (overlap 16)" in out and "fastest path within 0.001" in out


def test_a_failing_path_is_reported_not_raised(monkeypatch):
    def broken(model, **kwargs):
        raise RuntimeError("no compiler here\nmore detail")
    monkeypatch.setattr(torch, "compile", broken)
    model = SRResNet(scale=2, num_blocks=1, channels=4)
    settings = benchmark.BenchmarkSettings(size=8, repeats=1, warmup=0, onnx=False, thread_sweep=None, threads=1,
                                           device="cpu")
    result = benchmark.run_benchmark(model, settings)
    compiled = [row for row in result["paths"] if "compile" in row["name"]]
    assert compiled and all(row["status"] == "unavailable: RuntimeError: no compiler here" for row in compiled)
    assert result["fastest_matching"] != compiled[0]["name"]


def test_tiling_is_compared_with_the_untiled_default_path():
    model = SRResNet(scale=2, num_blocks=1, channels=4)
    tiling = benchmark.benchmark_tiling(model, tile=40, size=56, batch=1, device=torch.device("cpu"),
                                        repeats=1, warmup=0)
    untiled, tiled = tiling["paths"]
    assert untiled["ratio"] == 1.0 and untiled["max_abs_diff"] == 0.0 and tiled["ratio"] > 0
    assert tiled["max_abs_diff"] < 1e-5  # a receptive field of 10 pixels lies inside the overlap of 16


def test_bad_arguments_are_one_error_line(tiny_dir, capsys):
    assert main(["benchmark", "--model", str(tiny_dir), "--size", "8", "--tiled", "32", "--device", "cpu"]) == 2
    assert capsys.readouterr().err.startswith("error: the tile must be more than 32")


@pytest.mark.parametrize("field, value, message", [
    ("size", 0, "size must be a whole number at least 1, got 0"),
    ("repeats", 2.0, "repeats must be a whole number at least 1, got 2.0"),
    ("warmup", -1, "warmup must be a whole number at least 0, got -1"),
    ("threads", True, "threads must be a whole number at least 1, got True"),
    ("tiled", 32, "the tile must be more than 32 "),
    ("device", "nonsense", "unknown device 'nonsense'"),
])
def test_settings_are_checked_when_made(field, value, message):
    with pytest.raises(ValueError, match=message):
        benchmark.BenchmarkSettings(**{field: value})


def test_settings_are_frozen_with_the_device_resolved(tmp_path):
    settings = benchmark.BenchmarkSettings(device="cpu", tiled=33)
    assert settings.device == torch.device("cpu") and settings.tiled == 33
    with pytest.raises(AttributeError):
        settings.size = 8
    with pytest.raises(ValueError, match="must not include the reference set"):
        benchmark.BenchmarkSettings(device="cpu", calibration_data=tmp_path, reference_data=tmp_path / "Set5")
    benchmark.BenchmarkSettings(device="cpu", calibration_data=tmp_path / "train", reference_data=tmp_path / "Set5")


def test_default_pipeline_path_matches_the_baseline():
    torch.manual_seed(0)
    model, lr = SRResNet(scale=2, num_blocks=2, channels=8).eval(), torch.rand(1, 3, 20, 17)
    with torch.no_grad():
        expected = model(lr).clamp(0, 1)
    got = pipelines.sr_upscaler(model, device=torch.device("cpu"))(lr)
    assert got.is_contiguous() and (got - expected).abs().max() < 1e-5


def test_peak_tflops_only_for_known_gpus():
    assert benchmark.peak_tflops(torch.device("cpu")) is None


def test_low_precision_rows_state_their_tolerance_and_psnr_delta(tiny_dir, tmp_path, capsys):
    from PIL import Image
    from skimage import data

    train, reference = tmp_path / "train", tmp_path / "Set5-like"
    for folder, image in ((train, data.astronaut()), (reference, data.coffee()[:64, :96])):
        folder.mkdir()
        Image.fromarray(image).save(folder / "a.png")
    code = main(["benchmark", "--model", str(tiny_dir), "--size", "16", "--repeats", "1", "--warmup", "0",
                 "--no-compile", "--threads", "1", "--thread-sweep", "none", "--json", "--device", "cpu",
                 "--calibration-data", str(train), "--reference-data", str(reference)])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["reference"]["metric"] == "psnr_y" and result["reference"]["baseline"] > 0
    assert result["cpu_bf16"]["auto_precision"] == "fp32"  # tiny weights were never gated: fp32 on any CPU
    paths = {row["name"]: row for row in result["paths"]}
    for name, precision in ((benchmark.DEFAULT_BF16, "bf16"), ("bf16 autocast + channels_last", "bf16"),
                            (benchmark.INT8, "int8"), ("baseline", "fp32")):
        row = paths[name]
        assert row["status"] == "ok" and (PATH_KEYS | {"mean_abs_diff", "psnr_delta_db"}) <= set(row)
        assert row["settings"]["precision"] == precision
        assert row["settings"]["tolerance"] == ({"max_abs_diff": benchmark.TOLERANCE} if precision == "fp32" else
                                                {"mean_abs_diff": benchmark.LOW_PRECISION_TOLERANCE})
    assert paths["baseline"]["psnr_delta_db"] == 0.0
    assert 0 < paths[benchmark.DEFAULT_BF16]["mean_abs_diff"] < benchmark.LOW_PRECISION_TOLERANCE
    assert paths[benchmark.INT8]["max_abs_diff"] > 0
    assert paths[result["fastest_matching"]]["settings"]["precision"] == "fp32"


def test_calibration_must_not_include_the_reference_set(tiny_dir, capsys):
    data = Path(__file__).parent
    assert main(["benchmark", "--model", str(tiny_dir), "--size", "8", "--calibration-data", str(data),
                 "--reference-data", str(data / "sub"), "--device", "cpu"]) == 2
    assert "must not include the reference set" in capsys.readouterr().err


def test_only_times_the_chosen_paths_and_the_default_is_summarised(tiny_dir, capsys, cpu_bf16):
    """Ungated weights run fp32 under auto on either kind of CPU; --precision bf16 is bf16 on both."""
    code = main(["benchmark", "--model", str(tiny_dir), "--size", "16", "--repeats", "1", "--warmup", "2",
                 "--no-compile", "--no-onnx", "--threads", "1", "--thread-sweep", "none", "--json", "--device", "cpu",
                 "--only", "default"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["cpu_bf16"]["native"] is cpu_bf16
    assert [row["name"] for row in result["paths"]] == ["baseline", benchmark.DEFAULT, benchmark.DEFAULT_BF16]
    auto, bf16 = result["default"]["auto"], result["default"]["bf16"]
    assert auto["precision"] == "fp32" and bf16["precision"] == "bf16"
    assert len(auto["first_calls_ms"]) == 2 and auto["ratio"] > 0 and "mfu" not in auto  # no peak known for a CPU
    assert "cuda_graphs" not in result["paths"][1]  # graphs are for CUDA only


def summarised(difference: float, precision: str) -> dict:
    """A row whose output differs from the reference by `difference` in one of its 4 values."""
    from ganzoo.benchmark.paths import path_settings
    from ganzoo.benchmark.timing import summarise

    spec = benchmark.PathSpec("p", autocast=torch.bfloat16 if precision == "bf16" else None)
    row = {"times_s": [0.5], "settings": path_settings(spec, torch.device("cpu"), 1, None)}
    reference = torch.zeros(1, 1, 2, 2)
    summarise(row, reference + torch.tensor([difference, 0, 0, 0]).view(1, 1, 2, 2), reference, flops=10**12,
              batch=1, base_ips=4.0, peaks=None)
    return row


@pytest.mark.parametrize("difference, precision, matches", [
    (0.0009, "fp32", True),   # exact paths: the largest difference, 1e-3 at most
    (0.0011, "fp32", False),
    (0.0150, "bf16", True),   # bf16: the mean difference (0.0150 / 4 values = 0.00375) under 1/255
    (0.0160, "bf16", False),  # 0.004 > 1/255 = 0.00392
])
def test_a_row_matches_within_its_own_tolerance(difference, precision, matches):
    row = summarised(difference, precision)
    assert row["matches"] is matches
    assert row["images_per_s"] == 2.0 and row["ratio"] == 0.5 and row["tflop_per_s"] == 2.0


def test_the_fastest_exact_path_ignores_faster_low_precision_and_failing_rows():
    from ganzoo.benchmark.report import fastest

    def row(name: str, ips: float, matches: bool, exact: bool) -> dict:
        tolerance = {"max_abs_diff": 1e-3} if exact else {"mean_abs_diff": 1 / 255}
        return {"name": name, "status": "ok", "images_per_s": ips, "matches": matches,
                "settings": {"tolerance": tolerance}}
    rows = [row("slow exact", 1.0, True, True), row("fast bf16", 3.0, True, False),
            row("fast but wrong", 5.0, False, True), row("faster bf16, off", 9.0, False, False),
            {"name": "broken", "status": "unavailable: no compiler"}]
    assert fastest(rows) == {"fastest_matching": "slow exact", "fastest_matching_any_precision": "fast bf16"}
