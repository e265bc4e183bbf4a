"""What each bf16 form converts per call, counted on any CPU (README, Performance):

    python benchmarks/count_bf16_casts.py --size 256 --models srresnet-x4 deblur-unet style-mosaic

On a CPU without native bf16 the forms cannot be timed fairly (bf16 is emulated), but the dtype
conversions they add are the same everywhere: every `aten.to` / `aten._to_copy` between fp32 and bf16 in one
channels-last call of the rewritten model, counted with a dispatch mode, with the bytes it writes.
`autocast` is `torch.autocast("cpu", torch.bfloat16)` around the whole model; `to_bf16` is the
pipeline's form (`ganzoo.inference.to_bf16`).
"""

import argparse
import json

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ganzoo.inference import for_inference, to_bf16
from ganzoo.registry import load


class CastCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.casts, self.bytes, self.weight_casts = 0, 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in (torch.ops.aten._to_copy.default, torch.ops.aten.to.dtype) and args[0].dtype != out.dtype:
            self.casts += 1
            self.bytes += out.numel() * out.element_size()
            self.weight_casts += args[0].dim() != 4 or args[0].shape[0] != 1  # not an activation
        return out


def count(fn, x: torch.Tensor) -> dict[str, float]:
    counter = CastCounter()
    with torch.inference_mode(), counter:
        fn(x)
    return {"casts": counter.casts, "weight_casts": counter.weight_casts, "mb_written": counter.bytes / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--models", nargs="+", default=["srresnet-x4", "deblur-unet", "style-mosaic"])
    args = parser.parse_args()
    x = torch.rand(1, 3, args.size, args.size).contiguous(memory_format=torch.channels_last)
    for name in args.models:
        model = for_inference(load(name)).to(memory_format=torch.channels_last)
        form = to_bf16(model).to(memory_format=torch.channels_last)

        def autocast(x, model=model):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return model(x).float()
        print(json.dumps({"model": name, "size": args.size, "autocast": count(autocast, x),
                          "to_bf16": count(form, x)}))


if __name__ == "__main__":
    main()
