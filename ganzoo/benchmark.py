"""Time every inference path of an image-to-image model on one machine: `ganzoo benchmark`.

Each path runs the same fixed input `warmup` times untimed and `repeats`
times timed (synchronising CUDA around each call), then once more to measure
memory. Its output is compared with the naive baseline's (fp32, NCHW, eager,
`torch.no_grad`); a path that cannot run here (no compiler for
`torch.compile`, no ONNX Runtime, ...) is reported as "unavailable: <reason>".

Exact paths (fp32) match when their largest difference from the baseline is at most `TOLERANCE`; the
lower-precision ones (bf16, fp16, int8) when their mean absolute difference is under `LOW_PRECISION_TOLERANCE`
(1/255, the style networks' bf16 bar); each row states which. With a reference data set (`reference_data`:
HR images for super-resolution, blurred/sharp pairs for deblurring), each path that takes any input size also
reports its PSNR there minus the baseline's (`psnr_delta_db`). The int8 row (`ganzoo.int8`) is calibrated on
crops of `calibration_data`, training images that must not include the reference set.

Memory: on the CPU, the rise of the process RSS (sampled every millisecond in
a thread) during the one extra call, above its level before that call; on
CUDA, `torch.cuda.max_memory_allocated` from the start of the path's setup
(so compile workspaces and CUDA-graph pools count) above the level before it.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import os
import re
import resource
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ganzoo import imaging, pipelines
from ganzoo.graphs import ShapeGraphs
from ganzoo.inference import for_inference
from ganzoo.precision import cpu_bf16_support

__all__ = ["TOLERANCE", "BenchmarkSettings", "PathSpec", "count_flops", "default_paths", "peak_tflops", "run_benchmark",
           "table_rows"]

TOLERANCE = 1e-3  # max abs difference from the baseline for an exact (fp32) path to count as matching
LOW_PRECISION_TOLERANCE = 1 / 255  # mean abs difference for a bf16, fp16 or int8 path
BASELINE = "baseline"
DEFAULT = "default (pipelines)"
DEFAULT_BF16 = "default, --precision bf16 (pipelines)"
INT8 = "onnxruntime int8 (static, calibrated on training crops)"
REWRITES = "exact rewrites"

# Dense peak TFLOP/s per precision; the first name contained in the device name wins.
PEAK_TFLOPS: list[tuple[str, dict[str, float]]] = [
    ("H200", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    ("H100 PCIe", {"bf16": 756.5, "fp16": 756.5, "tf32": 378.0, "fp32": 51.2}),
    ("H100 NVL", {"bf16": 835.5, "fp16": 835.5, "tf32": 417.8, "fp32": 60.0}),
    ("H100", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),  # SXM
    ("A100", {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}),
]


@dataclass(frozen=True)
class PathSpec:
    """One way of running the model."""

    name: str
    grad_mode: str = "inference_mode"  # or "no_grad"
    channels_last: bool = False
    autocast: torch.dtype | None = None
    compile: bool = False
    compile_mode: str | None = None  # torch.compile's mode, e.g. "reduce-overhead" (inductor with CUDA graphs)
    cuda_graph: bool = False
    threads: int | None = None  # CPU intra-op threads for this path only
    onnx: bool = False
    rewritten: bool = False  # run `inference.for_inference(model)`: folded batch norms, SRResNet's sub-pixel tail
    pipeline: bool = False  # the function `pipelines.upscale` uses (clamped output)
    precision: str = "auto"  # the pipeline's `precision` argument
    int8: bool = False  # with onnx: static int8 (`ganzoo.int8`)
    settings: dict[str, Any] = field(default_factory=dict)


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


def default_paths(device: torch.device, compile: bool = True, onnx: bool = True,
                  thread_sweep: list[int] | None = None) -> list[PathSpec]:
    """The baseline and every optimised path that makes sense on `device`."""
    paths = [PathSpec(BASELINE, grad_mode="no_grad"), PathSpec("inference_mode"),
             PathSpec("channels_last", channels_last=True), PathSpec(REWRITES, rewritten=True),
             PathSpec(f"{REWRITES} + channels_last", channels_last=True, rewritten=True),
             PathSpec(DEFAULT, pipeline=True), PathSpec(DEFAULT_BF16, pipeline=True, precision="bf16")]
    if device.type == "cuda":
        paths += [PathSpec("bf16 autocast + channels_last", channels_last=True, autocast=torch.bfloat16),
                  PathSpec("fp16 autocast + channels_last", channels_last=True, autocast=torch.float16),
                  PathSpec(f"{REWRITES} + bf16 + channels_last", channels_last=True, autocast=torch.bfloat16,
                           rewritten=True)]
        if compile:
            paths += [PathSpec("torch.compile + channels_last", channels_last=True, compile=True),
                      PathSpec("torch.compile + bf16 + channels_last", channels_last=True, compile=True,
                               autocast=torch.bfloat16),
                      PathSpec(f"torch.compile reduce-overhead + {REWRITES} + bf16 + channels_last",
                               channels_last=True, compile=True, compile_mode="reduce-overhead",
                               autocast=torch.bfloat16, rewritten=True)]
        paths += [PathSpec("cuda graph + channels_last", channels_last=True, cuda_graph=True),
                  PathSpec("cuda graph + bf16 + channels_last", channels_last=True, cuda_graph=True,
                           autocast=torch.bfloat16),
                  PathSpec(f"cuda graph + {REWRITES} + bf16 + channels_last", channels_last=True,
                           cuda_graph=True, autocast=torch.bfloat16, rewritten=True)]
    else:
        paths.append(PathSpec("bf16 autocast + channels_last", channels_last=True, autocast=torch.bfloat16))
        if compile:
            paths += [PathSpec("torch.compile", compile=True),
                      PathSpec("torch.compile + channels_last", channels_last=True, compile=True),
                      PathSpec(f"torch.compile + {REWRITES} + channels_last", channels_last=True, compile=True,
                               rewritten=True)]
        paths += [PathSpec(f"channels_last, {n} thread{'s' if n > 1 else ''}", channels_last=True, threads=n)
                  for n in thread_sweep or []]
    if onnx:
        paths.append(PathSpec("onnxruntime", onnx=True))
        if device.type == "cpu":
            paths.append(PathSpec(INT8, onnx=True, int8=True))
    return paths


def auto_thread_sweep(threads: int) -> list[int]:
    """1 and all usable CPUs, without the count every other path already uses."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return sorted({1, cpus} - {threads})


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward pass on `x` (FlopCounterMode: convolutions and matmuls, 2 per MAC),
    counted on the meta device so nothing is computed; falls back to a real pass."""
    for target in ("meta", None):
        try:
            m = copy.deepcopy(model).to(target) if target else model
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                m(x.to(target) if target else x)
            return int(counter.get_total_flops())
        except Exception:  # some ops have no meta kernel: count on the real device
            if target is None:
                raise
    raise AssertionError("unreachable")


def peak_tflops(device: torch.device) -> dict[str, float] | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peaks for key, peaks in PEAK_TFLOPS if key in name), None)


# -- measuring ------------------------------------------------------------------------------------------

def _rss() -> int:
    try:
        import psutil
        return psutil.Process().memory_info().rss
    except ImportError:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _PeakRSS:
    """Peak process RSS while the block runs, sampled in a thread."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval, self.start, self.peak = interval, 0, 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> None:
        self.start = self.peak = _rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def delta_mb(self) -> float:
        return (self.peak - self.start) / 2**20


@contextlib.contextmanager
def _num_threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reason(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"unavailable: {type(err).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")


# -- building one path ------------------------------------------------------------------------------------

def _tensor_function(spec: PathSpec, model: nn.Module, device: torch.device, workdir: str, threads: int,
                     calibration_data: str | os.PathLike | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model as a function of its input, run the way `spec` says (ONNX paths return CPU tensors)."""
    if spec.onnx:
        from ganzoo.export import export_onnx, onnx_session, run_onnx

        if spec.int8:
            from ganzoo.int8 import calibration_inputs, quantize_onnx

            if calibration_data is None:
                raise ValueError("int8 needs training images to calibrate on (--calibration-data)")
            path = quantize_onnx(model, os.path.join(workdir, "model-int8.onnx"),
                                 calibration_inputs(model, calibration_data))
        else:
            path = export_onnx(model, os.path.join(workdir, "model.onnx"))
        if device.type == "cuda":
            import onnxruntime as ort
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeError("onnxruntime has no CUDAExecutionProvider")
            session = onnx_session(path, providers=["CUDAExecutionProvider"])
        else:
            session = onnx_session(path, threads=threads)
        return lambda x: run_onnx(session, x)
    if spec.pipeline:
        fn = pipelines.model_function(copy.deepcopy(model), device, spec.precision)

        def run_default(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return fn(x)
        run_default.graphs = fn if isinstance(fn, ShapeGraphs) else None  # type: ignore[attr-defined]
        return run_default

    m = for_inference(model) if spec.rewritten else copy.deepcopy(model)
    if spec.channels_last:
        m = m.to(memory_format=torch.channels_last)
    forward = torch.compile(m, dynamic=False, mode=spec.compile_mode) if spec.compile else m
    grad_mode = torch.inference_mode if spec.grad_mode == "inference_mode" else torch.no_grad
    memory_format = torch.channels_last if spec.channels_last else torch.contiguous_format

    def run(x: torch.Tensor) -> torch.Tensor:
        # CUDA graphs must not reuse autocast's cast-weight cache across capture and replay.
        with grad_mode(), torch.autocast(device.type, dtype=spec.autocast or torch.float32,
                                         enabled=spec.autocast is not None, cache_enabled=not spec.cuda_graph):
            return forward(x.contiguous(memory_format=memory_format))
    return run


def _build(spec: PathSpec, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
           device: torch.device) -> Callable[[], torch.Tensor]:
    """A no-argument function that runs `fn` on `x` (replaying a CUDA graph of it if `spec` says so)."""
    if spec.onnx:
        x_cpu = x.cpu()  # on CUDA this includes the copies to and from the device
        return lambda: fn(x_cpu)
    if not spec.cuda_graph:
        return lambda: fn(x)
    if device.type != "cuda":
        raise RuntimeError("CUDA graphs need a CUDA device")
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn(x)
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = fn(x)  # `x` is fixed, so it is its own static input

    def replay() -> torch.Tensor:
        graph.replay()
        return static_out
    return replay


def _measure(spec: PathSpec, build: Callable[[], Callable[[], torch.Tensor]], device: torch.device,
             repeats: int, warmup: int) -> tuple[dict[str, Any], torch.Tensor | None]:
    """Timings and memory of the function `build` returns, and its output (None when it could not run)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        gpu_before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    row: dict[str, Any] = {"name": spec.name, "status": "ok"}
    with _num_threads(spec.threads):
        try:
            start = time.perf_counter()
            call = build()
            row["build_s"] = time.perf_counter() - start
            row["first_calls_ms"] = []
            for _ in range(max(warmup, 1)):
                call_start = time.perf_counter()
                out = call()
                _sync(device)
                row["first_calls_ms"].append((time.perf_counter() - call_start) * 1e3)
            row["setup_s"] = time.perf_counter() - start
        except Exception as err:  # any failure makes the path unavailable, not the run
            if spec.name == BASELINE:
                raise
            row["status"] = _reason(err)
            return row, None
        times = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            out = call()
            _sync(device)
            times.append(time.perf_counter() - start)
        if device.type == "cuda":
            call()
            _sync(device)
            row["peak_mem_mb"] = (torch.cuda.max_memory_allocated(device) - gpu_before) / 2**20
        else:
            rss = _PeakRSS()
            with rss:
                call()
            row["peak_mem_mb"] = rss.delta_mb
    row["times_s"] = times
    return row, out.detach().float().cpu().clone()


def _settings(spec: PathSpec, device: torch.device, threads: int, model: nn.Module) -> dict[str, Any]:
    settings: dict[str, Any] = {"grad_mode": spec.grad_mode, "channels_last": spec.channels_last,
                                "precision": _precision(spec, device), "compile": spec.compile,
                                "cuda_graph": spec.cuda_graph, "rewrites": _rewrites(spec, device)}
    if device.type == "cpu":
        settings["threads"] = spec.threads or threads
    if spec.onnx:
        settings = {"runtime": "onnxruntime", "graph_optimization": "ORT_ENABLE_ALL",
                    "provider": "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider",
                    "precision": "fp32", **({"threads": threads} if device.type == "cpu" else {})}
        if spec.int8:
            settings.update(precision="int8", quantization="static QDQ, int8 weights per channel, uint8 "
                            "activations (onnxruntime.quantization.quantize_static, ganzoo.int8)")
    if spec.pipeline:
        settings = {"grad_mode": "inference_mode", "memory_format": str(pipelines.memory_format_for(device)),
                    "rewrites": _rewrites(spec, device), "precision_argument": spec.precision,
                    "precision": _precision(spec, device, model), "output": "clamped to [0, 1]",
                    "cuda_graph": pipelines.uses_cuda_graphs(device)}
    exact = settings["precision"] in ("fp32", "tf32")
    settings["tolerance"] = {"max_abs_diff": TOLERANCE} if exact else {"mean_abs_diff": LOW_PRECISION_TOLERANCE}
    return settings


def _rewrites(spec: PathSpec, device: torch.device) -> str:
    on = spec.rewritten or (spec.pipeline and pipelines.memory_format_for(device) == torch.channels_last)
    return "folded batch norms, sub-pixel tail (ganzoo.inference.for_inference)" if on else "none"


def _precision(spec: PathSpec, device: torch.device, model: nn.Module | None = None) -> str:
    if spec.pipeline and model is not None and pipelines.model_precision(model, device, spec.precision) == "bf16":
        return "bf16"
    if spec.autocast is not None:
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}[spec.autocast]
    return "tf32" if device.type == "cuda" and torch.backends.cudnn.allow_tf32 else "fp32"


def _summarise(row: dict[str, Any], out: torch.Tensor, reference: torch.Tensor, flops: int, batch: int,
               base_ips: float | None, peaks: dict[str, float] | None) -> None:
    times = np.asarray(row.pop("times_s"))
    p10, p25, median, p75, p90 = np.percentile(times, [10, 25, 50, 75, 90])
    row["latency_ms"] = {"median": median * 1e3, "p10": p10 * 1e3, "p90": p90 * 1e3,
                         "iqr": (p75 - p25) * 1e3, "min": times.min() * 1e3}
    row["images_per_s"] = batch / median
    row["output_mpix_per_s"] = out.shape[0] * out.shape[-2] * out.shape[-1] / median / 1e6
    row["ratio"] = row["images_per_s"] / base_ips if base_ips else 1.0
    same_shape = out.shape == reference.shape
    row["max_abs_diff"] = float((out - reference).abs().max()) if same_shape else float("inf")
    row["mean_abs_diff"] = float((out - reference).abs().mean()) if same_shape else float("inf")
    tolerance = row["settings"].get("tolerance", {"max_abs_diff": TOLERANCE})
    row["matches"] = all(row[key] <= bound for key, bound in tolerance.items())
    row["tflop_per_s"] = flops / median / 1e12
    precision = row["settings"].get("precision")
    if peaks and precision in peaks:
        row["mfu"] = row["tflop_per_s"] / peaks[precision]


# -- the run ------------------------------------------------------------------------------------------------

def run_benchmark(model: nn.Module, settings: BenchmarkSettings | None = None) -> dict[str, Any]:
    """Benchmark every path of `model` as `settings` say (the defaults when None); a JSON-ready dict."""
    settings = BenchmarkSettings() if settings is None else settings
    if settings.reference_data is not None:
        _reference_metric(model)  # fails early for a model with no reference metric
    with _num_threads(settings.threads):
        return _run(model, settings, torch.get_num_threads())


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


def _exact(row: dict[str, Any]) -> bool:
    return "max_abs_diff" in row["settings"]["tolerance"]


def _run(model: nn.Module, settings: BenchmarkSettings, threads: int) -> dict[str, Any]:
    """`run_benchmark` with `threads` CPU threads set."""
    size, batch, repeats, warmup = settings.size, settings.batch, settings.repeats, settings.warmup
    device, thread_sweep, tiled = settings.device, settings.thread_sweep, settings.tiled
    calibration_data, reference_data = settings.calibration_data, settings.reference_data
    if thread_sweep == "auto":
        thread_sweep = auto_thread_sweep(threads)
    model = copy.deepcopy(model).to(device).eval()
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    flops = count_flops(model, x)
    peaks = peak_tflops(device)
    result: dict[str, Any] = {
        "model": settings.model_name or type(model).__name__, "size": size, "batch": batch, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "threads": threads, "torch_version": torch.__version__, "onnxruntime_version": _ort_version(),
        "flops": flops, "repeats": repeats, "warmup": warmup, "tolerance": TOLERANCE,
        "low_precision_tolerance": LOW_PRECISION_TOLERANCE,
        "memory": "cuda max_memory_allocated" if device.type == "cuda" else "process RSS rise, sampled",
        "paths": [],
    }
    if device.type == "cpu":
        support = cpu_bf16_support()
        result["cpu_bf16"] = {"native": support.native, "reason": support.reason,
                              "auto_precision": pipelines.model_precision(model, device, "auto")}
    if calibration_data is not None:
        result["calibration_data"] = str(calibration_data)
    if device.type == "cuda":
        result["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        if peaks:
            result["peak_tflops"] = peaks
    specs = default_paths(device, compile=settings.compile, onnx=settings.onnx, thread_sweep=thread_sweep or [])
    if settings.only is not None:
        specs = [spec for spec in specs if spec.name == BASELINE or re.search(settings.only, spec.name)]
    reference, base_ips, base_score = None, None, None
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as workdir:
        for spec in specs:
            functions = []

            def build(spec: PathSpec = spec) -> Callable[[], torch.Tensor]:
                functions.append(_tensor_function(spec, model, device, workdir, threads, calibration_data))
                return _build(spec, functions[-1], x, device)
            row, out = _measure(spec, build, device, repeats, warmup)
            row["settings"] = _settings(spec, device, threads, model)
            graphs = getattr(functions[-1], "graphs", None) if functions else None
            if graphs is not None:  # the default path on CUDA: did its graphs capture?
                row["cuda_graphs"] = {"captured": len(graphs.graphs), "failures": list(graphs.failures.values())}
            if out is not None:
                if reference is None:
                    reference = out
                _summarise(row, out, reference.clamp(0, 1) if spec.pipeline else reference, flops, batch,
                           base_ips, peaks)
                base_ips = base_ips or row["images_per_s"]
                if reference_data is not None and not (spec.compile or spec.cuda_graph):
                    score = _reference_score(functions[-1], model, reference_data, device)
                    base_score = score if base_score is None else base_score
                    row["psnr_delta_db"] = score - base_score
            result["paths"].append(row)
            if spec.compile:
                torch._dynamo.reset()
    if reference_data is not None:
        result["reference"] = {"data": str(reference_data), "metric": _reference_metric(model),
                               "baseline": base_score}
    result["default"] = _default_summary(result["paths"])
    ok = [r for r in result["paths"] if r["status"] == "ok" and r["matches"]]
    result["fastest_matching"] = max([r for r in ok if _exact(r)], key=lambda r: r["images_per_s"])["name"]
    result["fastest_matching_any_precision"] = max(ok, key=lambda r: r["images_per_s"])["name"]
    if tiled is not None:
        result["tiling"] = benchmark_tiling(model, tiled, settings.tiled_size or max(size, 2 * tiled), batch,
                                            device, repeats, warmup)
    return result


def _default_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the default path (`precision="auto"`) and its `--precision bf16` form achieve: ratio to the naive
    baseline, MFU where the peak is known, PSNR difference where scored, precision and first calls."""
    keys = ("ratio", "images_per_s", "mfu", "psnr_delta_db", "mean_abs_diff", "max_abs_diff", "first_calls_ms")
    summary = {}
    for label, name in (("auto", DEFAULT), ("bf16", DEFAULT_BF16)):
        row = next((r for r in rows if r["name"] == name and r["status"] == "ok"), None)
        if row is not None:
            summary[label] = {"precision": row["settings"]["precision"],
                              **{key: row[key] for key in keys if key in row}}
    return summary


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
        row, out = _measure(PathSpec(name), lambda call=call: call, device, repeats, warmup)
        if out is None:
            raise RuntimeError(f"{name}: {row['status']}")
        row["settings"] = {"tile": tile_size, "overlap": overlap, "input": f"{batch}x3x{size}x{size}"}
        outputs.append(out)
        _summarise(row, out, outputs[0], flops, batch, rows[0]["images_per_s"] if rows else None, None)
        rows.append(row)
    return {"tile": tile, "overlap": overlap, "size": size, "flops_untiled": flops, "paths": rows}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def _ort_version() -> str | None:
    try:
        import onnxruntime
        return onnxruntime.__version__
    except ImportError:
        return None


def table_rows(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the readable table (`ganzoo benchmark` without --json)."""
    header = ["path", "median ms", "p10-p90 ms", "img/s", "out MP/s", "TFLOP/s", "peak MB", "x base",
              "max |diff|", "mean |diff|"]
    if "reference" in result:
        header.append("PSNR delta dB")
    if any("mfu" in row for row in result["paths"]):
        header.append("MFU")
    rows = []
    for row in result["paths"] + result.get("tiling", {}).get("paths", []):
        if row["status"] != "ok":
            rows.append([row["name"], row["status"]] + [""] * (len(header) - 2))
            continue
        lat = row["latency_ms"]
        exact = "max_abs_diff" in row["settings"].get("tolerance", {"max_abs_diff": TOLERANCE})
        cells = [row["name"], f"{lat['median']:.2f}", f"{lat['p10']:.2f}-{lat['p90']:.2f}",
                 f"{row['images_per_s']:.3g}", f"{row['output_mpix_per_s']:.3g}", f"{row['tflop_per_s']:.3g}",
                 f"{row['peak_mem_mb']:.1f}", f"{row['ratio']:.2f}",
                 f"{row['max_abs_diff']:.1e}" + ("" if row["matches"] or not exact else " !"),
                 f"{row['mean_abs_diff']:.1e}" + ("" if row["matches"] or exact else " !")]
        if "reference" in result:
            cells.append(f"{row['psnr_delta_db']:+.3f}" if "psnr_delta_db" in row else "")
        if len(header) > len(cells):
            cells.append(f"{100 * row['mfu']:.1f}%" if "mfu" in row else "")
        rows.append(cells)
    return header, rows
