"""Where srresnet-x4's CPU time goes, and what the last step's rewrite saves (docs/performance.md, Exact rewrites).

    python benchmarks/profile_srresnet.py --size 256 --repeats 5 --precision bf16

1. `torch.profiler` over one channels-last call of the bundled model, as it is (batch norms folded, so that
   only the last step differs) and rewritten by `inference.for_inference`: self time per operator and input
   shape, with the share of the call and the convolutions' TFLOP/s.
2. The last step alone, on the features it actually receives: x2 bilinear upsampling, 3x3 conv, PReLU and the
   9x9 tail to 3 channels at full size, against `inference.ResizeConvTail` on the half-size grid.

`--precision bf16` runs both in the pipeline's bf16 form (`inference.to_bf16`); it is emulated, and slow, on a
CPU without native bf16.
"""

import argparse
import copy
import json
import statistics
import time

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from ganzoo.inference import ResizeConvTail, fold_batch_norms, for_inference, to_bf16
from ganzoo.precision import cpu_bf16_support, cpu_name
from ganzoo.registry import load


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def print_profile(name: str, model: nn.Module, lr: torch.Tensor, top: int) -> None:
    model(lr)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_flops=True) as prof:
        model(lr)
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"\n{name}: {total / 1e3:.0f} ms (profiled)")
    print(f"{'operator':28s} {'calls':>5s} {'self ms':>8s} {'share':>6s} {'TFLOP/s':>7s}  input, weight shapes")
    for e in sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]:
        # The profiler counts FLOPs on the aten::conv2d parent of each mkldnn_convolution.
        flops = next((f.flops for f in events
                      if f.key == "aten::conv2d" and f.input_shapes[:2] == e.input_shapes[:2] and f.flops), 0)
        rate = f"{flops / e.self_cpu_time_total / 1e6:7.2f}" if flops else ""
        print(f"{e.key:28s} {e.count:5d} {e.self_cpu_time_total / 1e3:8.1f} "
              f"{100 * e.self_cpu_time_total / total:5.1f}% {rate:>7s}  {e.input_shapes[:2]}")


def _output_conv_in_fp32(model: nn.Module, conv: str) -> nn.Module:
    """A copy of `model` with its submodule `conv` back in fp32 (`to_bf16`'s hook casts that conv's input)."""
    copied = copy.deepcopy(model)
    copied.get_submodule(conv).float()
    return copied


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    args = parser.parse_args(argv)

    cl = torch.channels_last
    model = fold_batch_norms(load("srresnet-x4").eval())
    if not isinstance(model.upsample[-3], nn.Upsample):
        raise SystemExit("this profile is of the resize-convolution srresnet-x4 (upsample='bilinear')")
    rewritten = for_inference(model)
    if args.precision == "bf16":
        model, rewritten = to_bf16(model), to_bf16(rewritten)
    model, rewritten = model.to(memory_format=cl), rewritten.to(memory_format=cl)
    forms = {"full model as trained": model, "full model rewritten": rewritten}
    if args.precision == "bf16":  # the bf16 form before: the output convolution kept in fp32
        forms["as trained, output conv in fp32"] = _output_conv_in_fp32(model, "tail")
        forms["rewritten, output conv in fp32"] = _output_conv_in_fp32(rewritten, "tail.tail")
    lr = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).contiguous(
        memory_format=cl)
    support = cpu_bf16_support()
    print(f"CPU: {cpu_name()}, native bf16: {support.native}; {torch.get_num_threads()} threads; {args.precision}")
    with torch.inference_mode():
        print_profile("as trained (batch norms folded)", model, lr, args.top)
        print_profile("rewritten (for_inference)", rewritten, lr, args.top)

        head = model.head(lr * 2 - 1)
        features = model.upsample[:-3](head + model.body_tail(model.blocks(head)))  # into the last upsampling
        upsample, conv, prelu = model.upsample[-3:]
        tail = rewritten.tail
        assert isinstance(tail, ResizeConvTail)
        times = {
            "x2 bilinear, 3x3 conv, PReLU, 9x9 conv 64->3, at full size":
                median_ms(lambda: model.tail(prelu(conv(upsample(features)))), args.repeats),
            "ResizeConvTail: 3x3 conv 64->256, PReLU, 5x5 conv 256->12 at half size, PixelShuffle":
                median_ms(lambda: tail(features), args.repeats),
            **{name: median_ms(lambda form=form: form(lr), args.repeats) for name, form in forms.items()},
        }
        diff = (tail(features).float() - model.tail(prelu(conv(upsample(features)))).float()).abs().max().item()
    print(json.dumps({"size": args.size, "precision": args.precision, "threads": torch.get_num_threads(),
                      "median_ms": times, "last_step_max_abs_diff": diff}, indent=1))


if __name__ == "__main__":
    main()
