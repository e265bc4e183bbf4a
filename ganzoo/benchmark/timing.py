"""Timing and memory of one built path, and the numbers derived from them.

`measure` runs a path's function `warmup` times untimed (each first call timed on its own: what a user's first
click costs), `repeats` times timed (synchronising CUDA around each call), then once more for memory: on the
CPU the rise of the process RSS (sampled every millisecond in a thread) during that call, above its level
before it; on CUDA `torch.cuda.max_memory_allocated` from the start of the path's setup (so compile workspaces
and CUDA-graph pools count) above the level before it. `summarise` turns the times into latency percentiles,
images/s, the ratio to the baseline, TFLOP/s (`count_flops`) and MFU (`peak_tflops`), and compares the output
with the baseline's.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ganzoo.benchmark.paths import BASELINE, TOLERANCE, PathSpec

__all__ = ["PEAK_TFLOPS", "count_flops", "measure", "num_threads", "peak_tflops", "summarise", "sync"]

# Dense peak TFLOP/s per precision; the first name contained in the device name wins.
PEAK_TFLOPS: list[tuple[str, dict[str, float]]] = [
    ("H200", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    ("H100 PCIe", {"bf16": 756.5, "fp16": 756.5, "tf32": 378.0, "fp32": 51.2}),
    ("H100 NVL", {"bf16": 835.5, "fp16": 835.5, "tf32": 417.8, "fp32": 60.0}),
    ("H100", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),  # SXM
    ("A100", {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}),
]


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


def measure(spec: PathSpec, build: Callable[[], Callable[[], torch.Tensor]], device: torch.device,
             repeats: int, warmup: int) -> tuple[dict[str, Any], torch.Tensor | None]:
    """Timings and memory of the function `build` returns, and its output (None when it could not run)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        gpu_before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    row: dict[str, Any] = {"name": spec.name, "status": "ok"}
    with num_threads(spec.threads):
        try:
            start = time.perf_counter()
            call = build()
            row["build_s"] = time.perf_counter() - start
            row["first_calls_ms"] = []
            for _ in range(max(warmup, 1)):
                call_start = time.perf_counter()
                out = call()
                sync(device)
                row["first_calls_ms"].append((time.perf_counter() - call_start) * 1e3)
            row["setup_s"] = time.perf_counter() - start
        except Exception as err:  # any failure makes the path unavailable, not the run
            if spec.name == BASELINE:
                raise
            row["status"] = _reason(err)
            return row, None
        times = []
        for _ in range(repeats):
            sync(device)
            start = time.perf_counter()
            out = call()
            sync(device)
            times.append(time.perf_counter() - start)
        if device.type == "cuda":
            call()
            sync(device)
            row["peak_mem_mb"] = (torch.cuda.max_memory_allocated(device) - gpu_before) / 2**20
        else:
            rss = _PeakRSS()
            with rss:
                call()
            row["peak_mem_mb"] = rss.delta_mb
    row["times_s"] = times
    return row, out.detach().float().cpu().clone()


def summarise(row: dict[str, Any], out: torch.Tensor, reference: torch.Tensor, flops: int, batch: int,
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
def num_threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reason(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"unavailable: {type(err).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")
