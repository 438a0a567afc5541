"""Benchmark ``rainbow``: cost of one RM memory update vs a reservoir update on the same candidates.

The RM update scores every candidate (stream + old memory) with ``T = 12`` perturbed copies in
batched forward passes, then runs the per-class stride selection; the reservoir update only draws
random numbers. Also measured: batched scoring vs scoring one candidate at a time (T copies per
forward) and one perturbed copy per forward (the naive loop the batching replaces). The RM update
uses the vectorised ``shift_cutout_noise`` perturbation, so that the ratios isolate batching; the
default vote set ``vr_randaug`` makes each copy with Pillow and costs more (see docs/rainbow.md).
"""

from __future__ import annotations

import numpy as np
import torch

from reprozoo.rainbow.memory import RainbowPolicy, ReservoirPolicy, vote_uncertainty
from reprozoo.rainbow.models import rm_cnn_digits
from reprozoo.rainbow.strategies import Normalized
from reprozoo.runtime.profile import add_limit_fraction, count_flops, latency_ratio, matmul_peak_flops
from reprozoo.runtime.registry import register_benchmark

GOAL_SPEEDUP = 3.0  # batched scoring must be at least this much faster than one copy per forward


def _setup(n_candidates: int, capacity: int, seed: int = 0):
    from reprozoo.rainbow.data import digits_data

    data = digits_data(seed)
    x, y = data.x_train[:n_candidates], data.y_train[:n_candidates]
    with torch.random.fork_rng(devices=[]):  # seeded weights without touching the caller's RNG
        torch.manual_seed(seed)
        model = Normalized(rm_cnn_digits(), data.mean, data.std).eval()
    return model, x, y


@register_benchmark("rainbow", description="RM memory update (12-vote uncertainty scoring, batched) vs "
                    "reservoir update on the same candidates (digits CNN, CPU)")
def run(quick: bool = False) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small model: one thread is fastest and is not hurt by a busy machine
    try:
        return _run(quick)
    finally:
        torch.set_num_threads(threads)


def _run(quick: bool) -> dict:
    n, k = (300, 40) if quick else (1000, 200)
    model, x, y = _setup(n, k)
    classes = np.arange(10)
    # the vectorised perturbation, so the timings isolate batching (the default vr_randaug runs Pillow per copy)
    rm, res = RainbowPolicy("shift_cutout_noise", n_votes=12, batch_size=384), ReservoirPolicy()
    rng = np.random.default_rng(0)
    kw = {"warmup": 1, "repeats": 3 if quick else 10}

    def rm_update():
        rm.select(x, y, k, model=model, classes=classes, rng=rng)

    def reservoir_update():
        res.select(x, y, k, rng=rng)

    upd = latency_ratio(rm_update, reservoir_update, rounds=2 if quick else 3, **kw)
    one_x = x[: 30 if quick else 200]
    gen = torch.Generator()

    def batched():
        vote_uncertainty(model, one_x, rm.perturb, 12, 384, gen)

    def per_candidate():  # the 12 copies of one candidate per forward pass
        vote_uncertainty(model, one_x, rm.perturb, 12, 12, gen)

    @torch.no_grad()
    def per_copy():  # the naive loop: one perturbed copy per forward pass
        for i in range(len(one_x)):
            votes = [int(model(rm.perturb(one_x[i:i + 1], gen)).argmax()) for _ in range(12)]
            1 - max(votes.count(v) for v in set(votes)) / 12

    naive = latency_ratio(per_copy, batched, rounds=2 if quick else 3, **kw)
    cand = latency_ratio(per_candidate, batched, rounds=2 if quick else 3, **kw)
    speedup = naive["ratio"]
    rows = [
        {"update": "rm (score + stride)", "candidates": n, "K": k, "ms": upd["method_ms"],
         "samples_per_s": n / upd["method_ms"] * 1e3},
        {"update": "reservoir", "candidates": n, "K": k, "ms": upd["baseline_ms"],
         "samples_per_s": n / upd["baseline_ms"] * 1e3},
        {"update": "scoring batched (12 votes)", "candidates": len(one_x), "K": "-", "ms": naive["baseline_ms"],
         "samples_per_s": len(one_x) / naive["baseline_ms"] * 1e3},
        {"update": "scoring 12 copies of one candidate per forward", "candidates": len(one_x), "K": "-",
         "ms": cand["method_ms"], "samples_per_s": len(one_x) / cand["method_ms"] * 1e3},
        {"update": "scoring one copy per forward (naive)", "candidates": len(one_x), "K": "-",
         "ms": naive["method_ms"], "samples_per_s": len(one_x) / naive["method_ms"] * 1e3},
    ]
    per_forward = count_flops(model, x[:1])  # FLOPs of one candidate copy through the CNN
    for row in rows:  # scoring work: 12 perturbed copies of every candidate; reservoir: no model work
        row["flops"] = 0 if row["update"] == "reservoir" else 12 * row["candidates"] * per_forward
    peak = matmul_peak_flops(min_time_s=0.2 if quick else 0.5)
    add_limit_fraction(rows, peak, ms_key="ms")
    return {"rows": rows, "peak_flops": peak,
            "ratios": {"rm_update_over_reservoir": upd["ratio"], "batched_speedup_vs_per_copy": speedup,
                       "batched_speedup_vs_per_candidate": cand["ratio"]},
            "goal": f"batched vote scoring >= {GOAL_SPEEDUP:g}x faster than one perturbed copy per forward pass",
            "met": bool(speedup >= GOAL_SPEEDUP), "threads": upd["threads"]}
