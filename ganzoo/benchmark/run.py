"""The run of `ganzoo benchmark`: every path of `paths.default_paths` in turn on one fixed input.

`BenchmarkSettings` says what is measured and how; `run_benchmark` builds each path, has `timing.measure` time
it, and collects the rows with a header (device, threads, versions, FLOPs) and the verdicts of `report`. With
a reference data set (`reference_data`: HR images for super-resolution, blurred/sharp pairs for deblurring),
each path that takes any input size also reports its PSNR there minus the baseline's (`psnr_delta_db`); the
int8 path is calibrated on `calibration_data`, training images that must not include the reference set.
`benchmark_tiling` compares the default path untiled and in tiles.
"""

from __future__ import annotations

import copy
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo import imaging, pipelines
from ganzoo.benchmark.paths import (
    BASELINE,
    LOW_PRECISION_TOLERANCE,
    TOLERANCE,
    PathSpec,
    auto_thread_sweep,
    build_call,
    default_paths,
    path_settings,
    tensor_function,
)
from ganzoo.benchmark.report import default_summary, fastest
from ganzoo.benchmark.timing import count_flops, measure, num_threads, peak_tflops, summarise
from ganzoo.precision import cpu_bf16_support, cpu_name

__all__ = ["BenchmarkSettings", "benchmark_tiling", "run_benchmark"]


@dataclass(frozen=True)
class BenchmarkSettings:
    """What `run_benchmark` measures and how; checked when made.

    Every path runs on a [batch,3,size,size] input in [0,1], `warmup` times untimed, then `repeats` times timed.
    `threads` sets torch's (and ONNX Runtime's) CPU threads for the whole run (None: torch's); `thread_sweep`
    ("auto", thread counts, or None) adds channels-last paths at other thread counts on the CPU. With `tiled`,
    the default pipeline path is also timed untiled and in tiles of that size on a `tiled_size` input.
    `calibration_data` (training images) calibrates the int8 path; with `reference_data` every path that takes
    any input size is also scored there (`psnr_delta_db`, see the module docstring).
    """

    size: int = 256
    batch: int = 1
    repeats: int = 10
    warmup: int = 2
    threads: int | None = None
    device: str | torch.device | None = None  # None: CUDA when available; always a torch.device once made
    compile: bool = True
    onnx: bool = True
    thread_sweep: Sequence[int] | str | None = "auto"
    tiled: int | None = None
    tiled_size: int | None = None
    model_name: str | None = None
    calibration_data: str | os.PathLike | None = None
    reference_data: str | os.PathLike | None = None
    only: str | None = None  # a regular expression: time only the paths whose name it finds (and the baseline)

    def __post_init__(self) -> None:
        for name, low in (("size", 1), ("batch", 1), ("repeats", 1), ("warmup", 0)):
            pipelines.check_whole_number(name, getattr(self, name), low)
        object.__setattr__(self, "device", pipelines.pick_device(self.device))
        if self.threads is not None:
            pipelines.check_whole_number("threads", self.threads, 1)
        imaging.check_tile(self.tiled, pipelines.TILE_OVERLAP, "the tile")
        if self.calibration_data is not None and self.reference_data is not None and \
                _overlap(Path(self.calibration_data), Path(self.reference_data)):
            raise ValueError(f"the calibration images ({self.calibration_data}) must not include the reference set "
                             f"({self.reference_data})")


def run_benchmark(model: nn.Module, settings: BenchmarkSettings | None = None) -> dict[str, Any]:
    """Benchmark every path of `model` as `settings` say (the defaults when None); a JSON-ready dict."""
    settings = BenchmarkSettings() if settings is None else settings
    if settings.reference_data is not None:
        _reference_metric(model)  # fails early for a model with no reference metric
    with num_threads(settings.threads):
        return _run(model, settings, torch.get_num_threads())


def _run(model: nn.Module, settings: BenchmarkSettings, threads: int) -> dict[str, Any]:
    """`run_benchmark` with `threads` CPU threads set."""
    device = settings.device
    model = copy.deepcopy(model).to(device).eval()
    x = torch.rand(settings.batch, 3, settings.size, settings.size,
                   generator=torch.Generator().manual_seed(0)).to(device)
    result = _header(model, settings, threads, count_flops(model, x))
    result["paths"] = _time_paths(model, x, settings, threads, result)
    result["default"] = default_summary(result["paths"])
    result.update(fastest(result["paths"]))
    if settings.tiled is not None:
        result["tiling"] = benchmark_tiling(model, settings.tiled, settings.tiled_size or max(settings.size,
                                            2 * settings.tiled), settings.batch, device, settings.repeats,
                                            settings.warmup)
    return result


def _header(model: nn.Module, settings: BenchmarkSettings, threads: int, flops: int) -> dict[str, Any]:
    """What was measured where: model, input, device, threads, versions, FLOPs, tolerances, the precision rule."""
    device = settings.device
    result: dict[str, Any] = {
        "model": settings.model_name or type(model).__name__, "size": settings.size, "batch": settings.batch,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": threads, "torch_version": torch.__version__, "onnxruntime_version": _ort_version(),
        "flops": flops, "repeats": settings.repeats, "warmup": settings.warmup, "tolerance": TOLERANCE,
        "low_precision_tolerance": LOW_PRECISION_TOLERANCE,
        "memory": "cuda max_memory_allocated" if device.type == "cuda" else "process RSS rise, sampled",
    }
    if device.type == "cpu":
        support = cpu_bf16_support()
        result["cpu_bf16"] = {"native": support.native, "reason": support.reason,
                              "auto_precision": pipelines.model_precision(model, device, "auto")}
    if settings.calibration_data is not None:
        result["calibration_data"] = str(settings.calibration_data)
    if device.type == "cuda":
        result["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        if peak_tflops(device):
            result["peak_tflops"] = peak_tflops(device)
    return result


def _specs(settings: BenchmarkSettings, threads: int) -> list[PathSpec]:
    """The paths to time: every one that makes sense on the device, or those `settings.only` finds (and the
    baseline)."""
    sweep = auto_thread_sweep(threads) if settings.thread_sweep == "auto" else list(settings.thread_sweep or [])
    specs = default_paths(settings.device, compile=settings.compile, onnx=settings.onnx, thread_sweep=sweep)
    if settings.only is None:
        return specs
    return [spec for spec in specs if spec.name == BASELINE or re.search(settings.only, spec.name)]


def _time_paths(model: nn.Module, x: torch.Tensor, settings: BenchmarkSettings, threads: int,
                result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per path, the baseline first; with reference data, `result["reference"]` too."""
    device, peaks, flops = settings.device, peak_tflops(settings.device), result["flops"]
    rows: list[dict[str, Any]] = []
    reference, base_ips, base_score = None, None, None
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as workdir:
        for spec in _specs(settings, threads):
            functions = []

            def build(spec: PathSpec = spec) -> Callable[[], torch.Tensor]:
                functions.append(tensor_function(spec, model, device, workdir, threads, settings.calibration_data))
                return build_call(spec, functions[-1], x, device)
            row, out = measure(spec, build, device, settings.repeats, settings.warmup)
            row["settings"] = path_settings(spec, device, threads, model)
            _note_graphs(row, functions)
            if out is not None:
                reference = out if reference is None else reference
                summarise(row, out, reference.clamp(0, 1) if spec.pipeline else reference, flops, settings.batch,
                          base_ips, peaks)
                base_ips = base_ips or row["images_per_s"]
                if settings.reference_data is not None and not (spec.compile or spec.cuda_graph):
                    score = _reference_score(functions[-1], model, settings.reference_data, device)
                    base_score = score if base_score is None else base_score
                    row["psnr_delta_db"] = score - base_score
            rows.append(row)
            if spec.compile:
                torch._dynamo.reset()
    if settings.reference_data is not None:
        result["reference"] = {"data": str(settings.reference_data), "metric": _reference_metric(model),
                               "baseline": base_score}
    return rows


def _note_graphs(row: dict[str, Any], functions: list[Callable[[torch.Tensor], torch.Tensor]]) -> None:
    """For the default path on CUDA: how many CUDA graphs it captured, and why any capture failed."""
    graphs = getattr(functions[-1], "graphs", None) if functions else None
    if graphs is not None:
        row["cuda_graphs"] = {"captured": len(graphs.graphs), "failures": list(graphs.failures.values())}


def benchmark_tiling(model: nn.Module, tile: int, size: int, batch: int, device: torch.device, repeats: int,
                     warmup: int) -> dict[str, Any]:
    """The default pipeline path untiled and tiled (`pipelines.TILE_OVERLAP` overlap) on a size x size input."""
    overlap = pipelines.TILE_OVERLAP
    imaging.check_tile(tile, overlap, "the tile")
    model = copy.deepcopy(model).to(device).eval()
    scale = pipelines.image_model_scale(model)
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    fn = pipelines.model_function(model, device)
    flops = count_flops(model, x)
    rows, outputs = [], []
    for name, tile_size in ((f"untiled {size}x{size}", None), (f"tiled {tile} (overlap {overlap})", tile)):
        def call(tile_size: int | None = tile_size) -> torch.Tensor:
            with torch.inference_mode():
                return pipelines.apply_checked(fn, x, scale, tile_size, overlap)
        row, out = measure(PathSpec(name), lambda call=call: call, device, repeats, warmup)
        if out is None:
            raise RuntimeError(f"{name}: {row['status']}")
        row["settings"] = {"tile": tile_size, "overlap": overlap, "input": f"{batch}x3x{size}x{size}"}
        outputs.append(out)
        summarise(row, out, outputs[0], flops, batch, rows[0]["images_per_s"] if rows else None, None)
        rows.append(row)
    return {"tile": tile, "overlap": overlap, "size": size, "flops_untiled": flops, "paths": rows}


def _overlap(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or a in b.parents or b in a.parents


def _reference_metric(model: nn.Module) -> str:
    from ganzoo.models import DEBLURRING_MODELS

    if hasattr(model, "scale"):
        return "psnr_y"
    if isinstance(model, DEBLURRING_MODELS):
        return "psnr"
    raise ValueError(f"a reference data set scores super-resolution and deblurring models, not "
                     f"{type(model).__name__}")


def _reference_score(fn: Callable[[torch.Tensor], torch.Tensor], model: nn.Module, data: str | os.PathLike,
                     device: torch.device) -> float:
    """Mean PSNR of `fn` on `data` by `ganzoo evaluate`'s protocol (Y channel for super-resolution)."""
    from ganzoo import evaluate

    def call(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return fn(x.to(device)).float().clamp(0.0, 1.0).cpu()
    metric = _reference_metric(model)
    if metric == "psnr_y":
        return evaluate.evaluate_sr(call, data, pipelines.sr_scale(model), progress=False)[metric]
    return evaluate.evaluate_deblur(call, data, reference=False, progress=False)[metric]


def _ort_version() -> str | None:
    try:
        import onnxruntime
        return onnxruntime.__version__
    except ImportError:
        return None
