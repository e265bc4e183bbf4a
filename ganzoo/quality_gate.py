"""Whether bf16 is close enough to fp32 for a model: the per-model gate behind `precision="auto"`.

    python -m ganzoo.quality_gate --models srresnet-x4 srgan-x4 deblurgan style-mosaic --write

runs each model through the pipelines twice, `precision="fp32"` and `"bf16"`, on its evaluation data, and
writes the results, keyed by a hash of the weights, to `bf16_gate.json` next to this file. A CPU without
native bf16 emulates it: slowly, and not bit for bit what a native CPU computes (Set5 31.477893 dB emulated,
31.477434 native), but within the bar, so the gate can be run on any CPU. `pipelines.model_precision` picks
bf16 under "auto" only for weights with a passing entry; other or retrained weights keep fp32 until the gate
has been run for them.

    python -m ganzoo.quality_gate --device cuda --models srresnet-x4 --sr-sets Set5 --write

runs the same comparison on a GPU (bf16 there is native, and not the CPU's numbers) and records it under the
model's `"cuda"` key, with `bf16_speedup`: the default path's fp32 time over its bf16 time at 512 x 512. On
CUDA, "auto" picks bf16 only for weights whose CUDA entry passed and was not slower in bf16.

The bar: super-resolution, Y-PSNR within 0.05 dB of fp32 on Set5 and on Set14 and Y-SSIM within 0.001;
deblurring, PSNR within 0.05 dB on the Levin set; fast style, a mean absolute difference under 1/255 on
the 10 content photos.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo import evaluate, imaging, pipelines
from ganzoo.gate_records import GATE_FILE, _records, bf16_passed, weights_sha256
from ganzoo.precision import cpu_bf16_support, cuda_bf16_support

__all__ = ["BAR", "GATE_FILE", "bf16_passed", "gate_model", "weights_sha256"]

BAR = {"psnr_db": 0.05, "ssim": 0.001, "style_mean_abs": 1 / 255}
COMMAND = "python -m ganzoo.quality_gate --models {models} --data-dir {data} --write"
CUDA_COMMAND = ("python -m ganzoo.quality_gate --device cuda --models {models} --data-dir {data} --sr-sets {sets} "
                "--write")
SR_SETS = ("Set5", "Set14")
SPEED_SIZE = 512  # the input size at which the CUDA entry times fp32 against bf16

# -- measuring ------------------------------------------------------------------------------------------

def _compare(fp32: dict[str, Any], bf16: dict[str, Any], keys: dict[str, float]) -> dict[str, Any]:
    """The means of both runs, their differences, and whether each difference is within its bar."""
    deltas = {key: bf16[key] - fp32[key] for key in keys}
    return {"fp32": {key: fp32[key] for key in keys}, "bf16": {key: bf16[key] for key in keys}, "delta": deltas,
            "passed": all(abs(deltas[key]) <= bar for key, bar in keys.items()), "n": fp32["n"]}


def gate_sr(model: nn.Module, data_dirs: list[Path], device: str = "cpu") -> dict[str, Any]:
    scale = pipelines.sr_scale(model)
    results = {}
    for folder in data_dirs:
        runs = [evaluate.evaluate_sr(pipelines.sr_upscaler(model, device=device, precision=precision), folder, scale,
                                     progress=False) for precision in ("fp32", "bf16")]
        results[folder.name] = _compare(*runs, {"psnr_y": BAR["psnr_db"], "ssim_y": BAR["ssim"]})
    return results


def gate_deblur(model: nn.Module, data_dir: Path, device: str = "cpu") -> dict[str, Any]:
    runs = [evaluate.evaluate_deblur(pipelines.deblurrer(model, device=device, precision=precision), data_dir,
                                     reference=False, progress=False) for precision in ("fp32", "bf16")]
    return {data_dir.name: _compare(*runs, {"psnr": BAR["psnr_db"]})}


def gate_style(model: nn.Module, content_dir: Path, device: str = "cpu") -> dict[str, Any]:
    """Mean and largest absolute difference of the 8-bit outputs, over the content photos at full size."""
    fp32, bf16 = (pipelines.stylizer(model, device=device, precision=p) for p in ("fp32", "bf16"))
    means, largest = [], 0.0
    for path in imaging.list_images(content_dir):
        x = imaging.image_to_tensor(imaging.load_image(path))[0]
        with torch.inference_mode():
            diff = (imaging.quantize(fp32(x)) - imaging.quantize(bf16(x))).abs()
        means.append(diff.mean().item())
        largest = max(largest, diff.max().item())
    mean = sum(means) / len(means)
    return {content_dir.name: {"mean_abs_diff": mean, "max_abs_diff": largest, "n": len(means),
                               "passed": mean < BAR["style_mean_abs"]}}


def gate_model(model: nn.Module, data_dir: Path, device: str = "cpu",
               sr_sets: tuple[str, ...] = SR_SETS) -> dict[str, Any]:
    """Run the bar for `model`'s task on the evaluation data under `data_dir` (the layout of ../shared/data),
    on `device`; on CUDA the record also holds the device's name and `bf16_speedup`."""
    from ganzoo.models import DEBLURRING_MODELS, TransformerNet

    if hasattr(model, "scale"):
        results = gate_sr(model, [data_dir / "sr/bench" / name for name in sr_sets], device)
    elif isinstance(model, DEBLURRING_MODELS):
        results = gate_deblur(model, data_dir / "blur/bench/levin", device)
    elif isinstance(model, TransformerNet):
        results = gate_style(model, data_dir / "style/content", device)
    else:
        raise ValueError(f"no bf16 quality bar for {type(model).__name__}")
    record = {"class": type(model).__name__, "weights_sha256": weights_sha256(model),
              "passed": all(r["passed"] for r in results.values()), "bar": BAR, "results": results,
              "torch_version": torch.__version__}
    if torch.device(device).type == "cuda":
        support = cuda_bf16_support(torch.device(device))
        record.update(bf16="native" if support.native else "not native", device_name=support.reason,
                      bf16_speedup=bf16_speedup(model, torch.device(device)))
    else:
        record["bf16"] = "native" if cpu_bf16_support().native else "emulated (close to native, slower)"
    return record


def bf16_speedup(model: nn.Module, device: torch.device, size: int = SPEED_SIZE, repeats: int = 10) -> float:
    """The default path's time in fp32 over its time in bf16 on a size x size input (graphs captured first)."""
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    seconds = {}
    for precision in ("fp32", "bf16"):
        fn = pipelines.model_function(model, device, precision)
        with torch.inference_mode():
            for _ in range(3):
                fn(x)
            torch.cuda.synchronize(device)
            start = time.perf_counter()
            for _ in range(repeats):
                fn(x)
            torch.cuda.synchronize(device)
        seconds[precision] = time.perf_counter() - start
    return seconds["fp32"] / seconds["bf16"]


def _merged(old: dict[str, Any], record: dict[str, Any], device_type: str) -> dict[str, Any]:
    """A model's entry with `record` as its CPU record or as its "cuda" entry, the other one kept."""
    if device_type == "cuda":
        return {**old, "cuda": record}
    return {**record, **({"cuda": old["cuda"]} if "cuda" in old else {})}


def main(argv: list[str] | None = None, load: Callable[[str], nn.Module] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, help="model names, folders or Hub repo ids")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"),
                        help="the evaluation data (default: ../shared/data)")
    parser.add_argument("--write", action="store_true", help=f"add the results to {GATE_FILE.name}")
    parser.add_argument("--gate-file", type=Path, default=GATE_FILE)
    parser.add_argument("--device", default="cpu", help="cpu (the default) or cuda: a CUDA run is recorded under "
                        "the model's \"cuda\" key, beside the CPU record")
    parser.add_argument("--sr-sets", nargs="+", default=list(SR_SETS), metavar="NAME",
                        help="super-resolution sets under DATA/sr/bench (default: Set5 Set14)")
    args = parser.parse_args(argv)
    device = pipelines.pick_device(args.device)
    if load is None:
        from ganzoo import load
    records = dict(_records(args.gate_file))
    for name in args.models:
        record = gate_model(load(name), args.data_dir, str(device), tuple(args.sr_sets))
        command = CUDA_COMMAND if device.type == "cuda" else COMMAND
        record["command"] = command.format(models=name, data=args.data_dir, sets=" ".join(args.sr_sets))
        records[name] = _merged(records.get(name, {}), record, device.type)
        print(json.dumps({name: record}, indent=2), flush=True)
        if args.write:
            args.gate_file.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            _records.cache_clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
