"""ganzoo.graphs: when a shape is captured, replayed, dropped or left eager; capture itself is faked on the CPU
(`graphable` and `cuda_graph` are the only CUDA-specific parts; the GPU check script runs the real ones)."""

import pytest
import torch

from ganzoo import graphs


class Counting:
    """A tensor function that counts its calls (eager and captured alike)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x * 2


@pytest.fixture()
def fake_cuda(monkeypatch):
    """CPU tensors count as graphable; a 'capture' calls fn twice (warm-up and capture), a replay once more."""
    captures = []

    def capture(fn, static_in):
        fn(static_in)
        static_out = fn(static_in)
        captures.append(tuple(static_in.shape))

        def replay() -> None:
            static_out.copy_(fn(static_in))
        return replay, static_out
    monkeypatch.setattr(graphs, "graphable", lambda x: not torch.is_grad_enabled())
    monkeypatch.setattr(graphs, "cuda_graph", capture)
    return captures


def test_a_shape_runs_eagerly_once_then_is_captured_and_replayed(fake_cuda):
    fn = Counting()
    runner = graphs.ShapeGraphs(fn)
    x = torch.rand(1, 3, 4, 4)
    with torch.inference_mode():
        first = runner(x)
        assert fn.calls == 1 and fake_cuda == []  # a one-off shape never pays for a capture
        second = runner(x + 1)
        assert fake_cuda == [(1, 3, 4, 4)] and fn.calls == 4  # eager, then warm-up + capture + replay
        third = runner(x + 2)
        assert fake_cuda == [(1, 3, 4, 4)] and fn.calls == 5
        assert torch.equal(first, x * 2) and torch.equal(second, (x + 1) * 2) and torch.equal(third, (x + 2) * 2)
        third.zero_()  # callers get a copy: the next replay must not see (or overwrite) what they hold
        assert torch.equal(runner(x), x * 2) and third.abs().sum() == 0


def test_warm_up_captures_so_the_first_real_call_replays(fake_cuda):
    fn = Counting()
    runner = graphs.ShapeGraphs(fn)
    runner.warm_up(torch.zeros(2, 3, 8, 8))
    calls = fn.calls
    with torch.inference_mode():
        runner(torch.ones(2, 3, 8, 8))
    assert fake_cuda == [(2, 3, 8, 8)] and fn.calls == calls + 1


def test_least_recently_used_graphs_are_dropped(fake_cuda):
    runner = graphs.ShapeGraphs(Counting(), max_graphs=2)
    with torch.inference_mode():
        for size in (4, 5, 4, 6):
            for _ in range(2):
                runner(torch.rand(1, 3, size, size))
    assert [key[0][-1] for key in runner.graphs] == [4, 6]


def test_a_failed_capture_leaves_that_shape_eager(monkeypatch, fake_cuda):
    def broken(fn, static_in):
        raise RuntimeError("operation not permitted when stream is capturing")
    monkeypatch.setattr(graphs, "cuda_graph", broken)
    fn = Counting()
    runner = graphs.ShapeGraphs(fn)
    x = torch.rand(1, 3, 4, 4)
    with torch.inference_mode():
        results = [runner(x) for _ in range(3)]
    assert all(torch.equal(r, x * 2) for r in results) and fn.calls == 3 and not runner.graphs
    assert "stream is capturing" in next(iter(runner.failures.values()))


def test_autograd_and_cpu_tensors_stay_eager(fake_cuda):
    fn = Counting()
    runner = graphs.ShapeGraphs(fn)
    for _ in range(3):
        runner(torch.rand(1, 3, 4, 4))  # grad mode on: never captured
    assert fake_cuda == [] and fn.calls == 3


def test_real_graphable_refuses_cpu_tensors():
    with torch.inference_mode():
        assert not graphs.graphable(torch.zeros(1))
