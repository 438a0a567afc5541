"""Parameter counts, MAC/FLOP counts (torch.utils.flop_counter) and latency measurement."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_flops(model: nn.Module, *inputs: torch.Tensor, by_operator: bool = False) -> Any:
    """FLOPs of one forward pass, counted by PyTorch's FlopCounterMode (a multiply-add = 2 FLOPs).

    Covers convolutions and matrix products (the usual "MACs" of papers); elementwise ops are
    not counted, as in the papers' tables.
    """
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        model(*inputs)
    model.train(was_training)
    if by_operator:
        return {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return int(counter.get_total_flops())


def count_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass (= FLOPs / 2)."""
    return count_flops(model, *inputs) // 2


def measure_latency(fn: Callable[[], Any], *, warmup: int = 3, repeats: int = 20,
                    min_time_s: float = 0.0) -> dict[str, float]:
    """Median/p10/p90 wall-clock of ``fn()`` in milliseconds after ``warmup`` calls.

    Repeats at least ``repeats`` times and until ``min_time_s`` has elapsed. Records the torch
    thread count so numbers are comparable.
    """
    for _ in range(warmup):
        fn()
    _sync()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time_s:
        t0 = time.perf_counter()
        fn()
        _sync()
        times.append((time.perf_counter() - t0) * 1000.0)
    times.sort()
    q = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
    return {"median_ms": statistics.median(times), "p10_ms": q[0], "p90_ms": q[-1],
            "repeats": float(len(times)), "threads": float(torch.get_num_threads())}


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def latency_ratio(fn: Callable[[], Any], baseline: Callable[[], Any], *, rounds: int = 3,
                  **kw: Any) -> dict[str, float]:
    """Interleave method and baseline measurements (``rounds`` times) so machine noise hits both;
    returns medians and ``ratio = method / baseline`` (below 1 means the method is faster)."""
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(measure_latency(fn, **kw)["median_ms"])
        theirs.append(measure_latency(baseline, **kw)["median_ms"])
    m, b = statistics.median(ours), statistics.median(theirs)
    return {"method_ms": m, "baseline_ms": b, "ratio": m / b, "threads": float(torch.get_num_threads())}
