"""Where srresnet-x4's CPU time goes, and what the sub-pixel tail rewrite saves (README, Performance).

    python benchmarks/profile_srresnet.py --size 256 --repeats 5

1. `torch.profiler` over one channels-last call of the bundled model: self time per operator and input
   shape, with the share of the call.
2. The last step alone, on the features it actually receives: the 9x9 conv to 3 channels on the
   full-size grid, the same conv padded to 16 output channels (all-zero extra filters), and
   `inference.subpixel_conv` on the half-size grid followed by PixelShuffle.
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile

from ganzoo.inference import subpixel_conv
from ganzoo.registry import load


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args(argv)

    cl = torch.channels_last
    model = load("srresnet-x4").eval().to(memory_format=cl)
    lr = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).contiguous(
        memory_format=cl)
    with torch.inference_mode():
        model(lr)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_flops=True) as prof:
            model(lr)
        events = prof.key_averages(group_by_input_shape=True)
        total = sum(e.self_cpu_time_total for e in events)
        top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:args.top]
        print(f"{'operator':28s} {'calls':>5s} {'self ms':>8s} {'share':>6s} {'TFLOP/s':>7s}  input, weight shapes")
        for e in top:
            # The profiler counts FLOPs on the aten::conv2d parent of each mkldnn_convolution.
            flops = next((f.flops for f in events
                          if f.key == "aten::conv2d" and f.input_shapes[:2] == e.input_shapes[:2] and f.flops), 0)
            rate = f"{flops / e.self_cpu_time_total / 1e6:7.2f}" if flops else ""
            print(f"{e.key:28s} {e.count:5d} {e.self_cpu_time_total / 1e3:8.1f} "
                  f"{100 * e.self_cpu_time_total / total:5.1f}% {rate:>7s}  {e.input_shapes[:2]}")

        head = model.head(lr * 2 - 1)
        features = model.upsample[:-2](head + model.body_tail(model.blocks(head)))  # into the last PixelShuffle
        shuffle, prelu, tail = model.upsample[-2], model.upsample[-1], model.tail
        full = prelu(shuffle(features)).contiguous(memory_format=cl)
        padded = nn.Conv2d(tail.in_channels, 16, tail.kernel_size, padding=tail.padding).to(memory_format=cl)
        padded.weight.zero_()
        padded.weight[:3] = tail.weight
        moved = subpixel_conv(tail, shuffle.upscale_factor).to(memory_format=cl)
        half = prelu(features)
        expected = tail(full)
        times = {
            "9x9 conv 64->3, full size": median_ms(lambda: tail(full), args.repeats),
            "9x9 conv 64->16 (zero-padded), full size": median_ms(lambda: padded(full), args.repeats),
            "sub-pixel 5x5 conv 256->12, half size, + PixelShuffle":
                median_ms(lambda: F.pixel_shuffle(moved(half), shuffle.upscale_factor), args.repeats),
        }
        diff = (F.pixel_shuffle(moved(half), shuffle.upscale_factor) - expected).abs().max().item()
    print(json.dumps({"size": args.size, "threads": torch.get_num_threads(), "tail_ms": times,
                      "subpixel_max_abs_diff": diff}, indent=1))


if __name__ == "__main__":
    main()
