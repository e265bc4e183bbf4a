"""Which number format a device computes fast: bf16 where the hardware has it natively, fp32 elsewhere.

Training (`training.Trainer`) and inference (`pipelines`) both ask `cpu_bf16_support()` so that
one rule decides for both. On a CPU without native bf16 (no AVX512-BF16, no AMX), bf16 is emulated
and slower than fp32, so "auto" means fp32 there. A CUDA GPU computes bf16 natively from compute
capability 8.0 (Ampere) on (`cuda_bf16_support`). Whether a given model's weights may run in bf16 under
"auto" is the quality gate's per-model, per-device record (`pipelines.model_precision`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

import torch

__all__ = ["PRECISIONS", "Bf16Support", "cpu_bf16_support", "cpu_flags", "cuda_bf16_support", "resolve_cpu_precision"]

PRECISIONS = ("auto", "fp32", "bf16")
# Set to 0 or 1 to override detection (tests simulate either kind of CPU with it).
OVERRIDE_ENV = "GANZOO_CPU_BF16"


@dataclass(frozen=True)
class Bf16Support:
    native: bool
    reason: str  # what the decision rests on, for logs and cards


def _cpuinfo_field(name: str) -> str | None:
    """The first `name` line of /proc/cpuinfo, after its colon (None where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str]:
    """This CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    return set((_cpuinfo_field("flags") or "").split())


def cpu_name() -> str:
    """This CPU's model name, as benchmarks and cards name the machine a number came from."""
    import platform

    return _cpuinfo_field("model name") or platform.processor() or platform.machine() or "unknown"


@cache
def _detect() -> Bf16Support:
    checks = []
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(torch.cpu, name, None)
        if check is not None:
            try:
                if check():
                    return Bf16Support(True, f"torch.cpu.{name}() is true")
                checks.append(f"torch.cpu.{name}() is false")
            except RuntimeError:
                pass
    flags = cpu_flags() & {"avx512_bf16", "amx_bf16"}
    if flags:
        return Bf16Support(True, "CPU flags " + ", ".join(sorted(flags)))
    capability = torch.backends.cpu.get_cpu_capability()
    detail = "; ".join(checks) or "no avx512_bf16/amx_bf16 CPU flag"
    return Bf16Support(False, f"no native bf16 ({detail}; ATen capability {capability})")


def cpu_bf16_support() -> Bf16Support:
    """Whether this CPU computes bf16 natively, and why we think so; GANZOO_CPU_BF16=0/1 overrides."""
    override = os.environ.get(OVERRIDE_ENV, "").strip()
    if override in ("0", "1"):
        return Bf16Support(override == "1", f"{OVERRIDE_ENV}={override}")
    if override:
        raise ValueError(f"{OVERRIDE_ENV} must be 0 or 1, got {override!r}")
    return _detect()


def cuda_bf16_support(device: torch.device) -> Bf16Support:
    """Whether the CUDA device computes bf16 natively (compute capability 8.0 or later)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return Bf16Support(False, f"{device} is not an available CUDA device")
    major, minor = torch.cuda.get_device_capability(device)
    name = torch.cuda.get_device_name(device)
    return Bf16Support(major >= 8, f"{name}, compute capability {major}.{minor}")


def resolve_cpu_precision(precision: str = "auto") -> str:
    """'auto' -> 'bf16' on a CPU with native bf16, else 'fp32'; explicit choices pass through."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    return "bf16" if cpu_bf16_support().native else "fp32"
