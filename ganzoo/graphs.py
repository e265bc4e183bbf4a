"""Replay a CUDA graph of a fixed-shape tensor function, one graph per input shape: the default CUDA path.

A small image network at 512 x 512 spends much of its time launching kernels (deblur-unet: 160 images/s eager,
333 replayed as a graph on an H200; ../shared/gpu-runs/h200-2026-12-04). A graph needs static shapes, so
`ShapeGraphs` keeps one per input shape (and dtype), at most `max_graphs`, the least recently used dropped.

What a call costs: the first call of a shape runs eagerly (no capture on a one-off image size); the second
captures (one warm-up on a side stream, then the capture: about two eager calls); later ones replay. So no
call ever costs more than about two eager calls, and `warm_up` moves even that off a user's first click for the
shapes known at load (a tile size). Replays are serialised by a lock and return a copy of the static output.
A shape whose capture fails runs eagerly from then on (the reason is kept in `failures`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["ShapeGraphs", "cuda_graph", "graphable"]

TensorFn = Callable[[torch.Tensor], torch.Tensor]
Key = tuple[tuple[int, ...], torch.dtype, torch.device]


@dataclass
class _Graph:
    replay: Callable[[], None]
    static_in: torch.Tensor
    static_out: torch.Tensor


def graphable(x: torch.Tensor) -> bool:
    """Whether a call on `x` may use a graph: a CUDA tensor, outside autograd."""
    return x.device.type == "cuda" and not (torch.is_grad_enabled() and not torch.is_inference_mode_enabled())


def cuda_graph(fn: TensorFn, static_in: torch.Tensor) -> tuple[Callable[[], None], torch.Tensor]:
    """Capture `fn(static_in)` (after the warm-up a capture needs: lazy initialisation, cuDNN plans) ->
    (replay, static output)."""
    stream = torch.cuda.Stream(static_in.device)
    stream.wait_stream(torch.cuda.current_stream(static_in.device))
    with torch.cuda.stream(stream):
        fn(static_in)
    torch.cuda.current_stream(static_in.device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = fn(static_in)
    return graph.replay, static_out


class ShapeGraphs:
    """`fn` as a function of its input, replayed from a CUDA graph per input shape once a shape repeats."""

    def __init__(self, fn: TensorFn, max_graphs: int = 4) -> None:
        self.fn, self.max_graphs = fn, max_graphs
        self.graphs: OrderedDict[Key, _Graph] = OrderedDict()
        self.seen: set[Key] = set()
        self.failures: dict[Key, str] = {}
        self._lock = threading.Lock()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not graphable(x):
            return self.fn(x)  # graphs are for inference on CUDA only
        key = (tuple(x.shape), x.dtype, x.device)
        with self._lock, torch.inference_mode():
            entry = self.graphs.get(key)
            if entry is None:
                if key not in self.seen or key in self.failures:
                    self.seen.add(key)
                    return self.fn(x)
                entry = self._capture(key, x)
                if entry is None:
                    return self.fn(x)
            self.graphs.move_to_end(key)
            entry.static_in.copy_(x)
            entry.replay()
            return entry.static_out.clone()

    def warm_up(self, x: torch.Tensor) -> None:
        """Run `x`'s shape until its graph exists (two calls), so that no later call of that shape captures."""
        with torch.inference_mode():
            for _ in range(2):
                self(x)

    def _capture(self, key: Key, x: torch.Tensor) -> _Graph | None:
        static_in = x.clone()
        try:
            replay, static_out = cuda_graph(self.fn, static_in)
        except Exception as err:  # noqa: BLE001 - any capture failure falls back to eager for this shape
            self.failures[key] = f"{type(err).__name__}: {err}"
            return None
        self.graphs[key] = _Graph(replay, static_in, static_out)
        while len(self.graphs) > self.max_graphs:
            self.graphs.popitem(last=False)
        return self.graphs[key]
