"""Time every inference path of an image-to-image model on one machine: `ganzoo benchmark`.

Each path runs the same fixed input `warmup` times untimed and `repeats` times timed (synchronising CUDA
around each call), then once more to measure memory. Its output is compared with the naive baseline's
(fp32, NCHW, eager, `torch.no_grad`); a path that cannot run here (no compiler for `torch.compile`, no ONNX
Runtime, ...) is reported as "unavailable: <reason>". The result says, under "default", what the default
path (`pipelines.model_function`, `--precision auto`) and its `--precision bf16` form achieve: ratio to the
baseline, MFU where the device's peak is known, PSNR difference where scored, and the cost of the first calls.

Four files, one idea each:

- `paths`: the ways of running a model (`PathSpec`, `default_paths`) and how each becomes a function;
- `timing`: timing and memory of one built path, and the numbers derived from them (latency, ratio, MFU);
- `report`: the verdicts (fastest matching path, the default path's summary) and the readable table;
- `run`: the run itself (`BenchmarkSettings`, `run_benchmark`), reference scores and tiling.
"""

from ganzoo.benchmark.paths import (
    BASELINE,
    DEFAULT,
    DEFAULT_BF16,
    INT8,
    LOW_PRECISION_TOLERANCE,
    REWRITES,
    TOLERANCE,
    PathSpec,
    auto_thread_sweep,
    default_paths,
)
from ganzoo.benchmark.report import table_rows
from ganzoo.benchmark.run import BenchmarkSettings, benchmark_tiling, run_benchmark
from ganzoo.benchmark.timing import count_flops, peak_tflops

__all__ = ["BASELINE", "DEFAULT", "DEFAULT_BF16", "INT8", "LOW_PRECISION_TOLERANCE", "REWRITES", "TOLERANCE",
           "BenchmarkSettings", "PathSpec", "auto_thread_sweep", "benchmark_tiling", "count_flops", "default_paths",
           "peak_tflops", "run_benchmark", "table_rows"]
