"""Parameter counts, MAC/FLOP counts (torch.utils.flop_counter) and latency measurement."""

from __future__ import annotations

import statistics
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
    try:
        counter = _counted(model, *inputs)
    finally:
        model.train(was_training)
    if by_operator:
        return {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return int(counter.get_total_flops())


def _counted(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> FlopCounterMode:
    counter = FlopCounterMode(display=False)
    with counter:
        fn(*args, **kwargs)
    return counter


def count_call_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """FLOPs of one call of any callable (a training step with its backward pass, a sampler, a
    proxy score), counted like :func:`count_flops` (convolutions and matrix products, forward and
    backward; elementwise ops and work outside torch, e.g. numpy or gensim, are not counted). The
    call really runs: pass copies of anything it must not change."""
    return int(_counted(fn, *args, **kwargs).get_total_flops())


def count_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass (= FLOPs / 2)."""
    return count_flops(model, *inputs) // 2


def measure_latency(fn: Callable[[], Any], *, warmup: int = 3, repeats: int = 20,
                    min_time_s: float = 0.0, label: str = "", sub_label: str = "",
                    description: str = "") -> dict[str, float]:
    """Latency of ``fn()`` in milliseconds via ``torch.utils.benchmark.Timer.blocked_autorange``
    (which handles CUDA synchronisation and picks the number of calls per block).

    Runs ``warmup`` calls first, then blocks until at least ``repeats`` blocks and ``min_time_s``
    have been timed; returns the median and p10/p90 over blocks (per call) and the thread count.
    """
    m = measurement(fn, warmup=warmup, repeats=repeats, min_time_s=min_time_s, label=label,
                    sub_label=sub_label, description=description)
    times = sorted(t * 1000.0 for t in m.times)
    q = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
    return {"median_ms": statistics.median(times), "p10_ms": q[0], "p90_ms": q[-1],
            "repeats": float(len(times)), "threads": float(torch.get_num_threads())}


def measurement(fn: Callable[[], Any], *, warmup: int = 3, repeats: int = 20, min_time_s: float = 0.0,
                label: str = "", sub_label: str = "", description: str = ""):
    """The raw :class:`torch.utils.benchmark.Measurement` behind :func:`measure_latency`
    (per-call block times; feed several to :func:`compare_table`)."""
    from torch.utils import benchmark

    for _ in range(warmup):
        fn()
    _sync()
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads(),
                            label=label or "latency", sub_label=sub_label, description=description)
    m = timer.blocked_autorange(min_run_time=max(min_time_s, 1e-3))
    while len(m.times) < repeats:
        more = timer.blocked_autorange(min_run_time=max(min_time_s, 1e-3) / 4)
        m = benchmark.Measurement.merge([m, more])[0]
    return m


def compare_table(measurements: list[Any]) -> str:
    """Side-by-side table of :func:`measurement` results (``torch.utils.benchmark.Compare``)."""
    from torch.utils import benchmark

    compare = benchmark.Compare(list(measurements))
    compare.trim_significant_figures()
    return str(compare)


def matmul_peak_flops(size: int = 1024, min_time_s: float = 0.3, device: str | torch.device = "cpu",
                      dtype: torch.dtype = torch.float32) -> float:
    """The machine's measured float32 matrix-multiply throughput (FLOP/s) with the current thread
    count: the practical limit a model's arithmetic could reach on this device."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    ms = measure_latency(lambda: torch.mm(a, b), warmup=2, repeats=5, min_time_s=min_time_s)["median_ms"]
    return 2.0 * size**3 / (ms / 1000.0)


def limit_fraction(flops: float, latency_ms: float, peak_flops: float) -> float:
    """Achieved FLOP/s of one call (``flops`` in ``latency_ms``) as a fraction of ``peak_flops``."""
    return (flops / (latency_ms / 1000.0)) / peak_flops if latency_ms > 0 and peak_flops > 0 else float("nan")


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def latency_ratio(fn: Callable[[], Any], baseline: Callable[[], Any], *, rounds: int = 3,
                  **kw: Any) -> dict[str, float]:
    """Interleave method and baseline measurements (``rounds`` times) so machine noise hits both;
    returns medians and ``ratio = method / baseline`` (below 1 means the method is faster)."""
    ours, theirs = [], []
    for _ in range(rounds):  # interleaved: a slow spell of the machine hits both
        ours.append(measure_latency(fn, **kw)["median_ms"])
        theirs.append(measure_latency(baseline, **kw)["median_ms"])
    m, b = statistics.median(ours), statistics.median(theirs)
    return {"method_ms": m, "baseline_ms": b, "ratio": m / b, "threads": float(torch.get_num_threads())}


def add_limit_fraction(rows: list[dict[str, Any]], peak_flops: float, *, flops_key: str = "flops",
                       ms_key: str = "median_ms", out_key: str = "limit_fraction") -> list[dict[str, Any]]:
    """For every row holding ``flops_key`` (FLOPs of one timed call) and ``ms_key`` (its latency),
    add ``out_key``: the achieved FLOP/s as a fraction of ``peak_flops`` (e.g. from
    :func:`matmul_peak_flops` measured in the same run), rounded to 4 digits. Near 1 means
    compute-bound; a few percent means the time goes to overhead, memory traffic or elementwise
    work. Rows without both numbers are left as they are. Returns ``rows`` (changed in place)."""
    for row in rows:
        flops, ms = row.get(flops_key), row.get(ms_key)
        if isinstance(flops, (int, float)) and isinstance(ms, (int, float)):
            row[out_key] = round(limit_fraction(float(flops), float(ms), peak_flops), 4)
    return rows
