"""The ways of running a model that `ganzoo benchmark` compares, and how each becomes a function of its input.

A `PathSpec` names one way (grad mode, memory format, autocast, exact rewrites, `torch.compile`, a CUDA graph,
ONNX Runtime, the pipeline's own default); `default_paths` lists those that make sense on a device;
`tensor_function` and `build_call` turn one into the function that `timing.measure` calls; `path_settings`
records what it ran, with the tolerance its output must keep.

Exact paths (fp32) match when their largest difference from the baseline is at most `TOLERANCE`; the
lower-precision ones (bf16, fp16, int8) when their mean absolute difference is under `LOW_PRECISION_TOLERANCE`
(1/255, the style networks' bf16 bar). The int8 path (`ganzoo.int8`) is calibrated on crops of training images.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ganzoo import pipelines
from ganzoo.graphs import ShapeGraphs
from ganzoo.inference import for_inference

__all__ = ["BASELINE", "DEFAULT", "DEFAULT_BF16", "INT8", "LOW_PRECISION_TOLERANCE", "REWRITES", "TOLERANCE",
           "PathSpec", "auto_thread_sweep", "build_call", "default_paths", "path_settings", "tensor_function"]

TOLERANCE = 1e-3  # max abs difference from the baseline for an exact (fp32) path to count as matching
LOW_PRECISION_TOLERANCE = 1 / 255  # mean abs difference for a bf16, fp16 or int8 path
BASELINE = "baseline"
DEFAULT = "default (pipelines)"
DEFAULT_BF16 = "default, --precision bf16 (pipelines)"
INT8 = "onnxruntime int8 (static, calibrated on training crops)"
REWRITES = "exact rewrites"


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


def tensor_function(spec: PathSpec, model: nn.Module, device: torch.device, workdir: str, threads: int,
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


def build_call(spec: PathSpec, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
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


def path_settings(spec: PathSpec, device: torch.device, threads: int, model: nn.Module) -> dict[str, Any]:
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
