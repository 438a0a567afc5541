"""Benchmark ``rainbow``: cost of one RM memory update vs a reservoir update on the same candidates.

The RM update scores every candidate (stream + old memory) with ``T = 12`` perturbed copies in
batched forward passes, then runs the per-class stride selection; the reservoir update only draws
random numbers. Also measured: batched scoring vs scoring one candidate at a time (T copies per
forward) and one perturbed copy per forward (the naive loop the batching replaces). The RM update
uses the vectorised ``shift_cutout_noise`` perturbation, so that the ratios isolate batching; the
default vote set ``vr_randaug`` makes each copy with Pillow and costs more (see docs/experiments/rainbow.md).

Seeds batched as one model: whole continual runs (the experiment's trials: digits MLP, Blurry10,
K = 40, E = 10) per CPU-second, one seed at a time (``ContinualLearner``) vs all seeds as one
``torch.func`` model (``BatchedLearner``), for ER-reservoir (training only) and RM (training plus
``vr_randaug`` vote scoring, which is per image and does not batch), measured in the same run.
"""

from __future__ import annotations

import time

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
    seed_rows = seed_batching(quick)
    rows += seed_rows
    return {"rows": rows, "peak_flops": peak,
            "ratios": {"rm_update_over_reservoir": upd["ratio"], "batched_speedup_vs_per_copy": speedup,
                       "batched_speedup_vs_per_candidate": cand["ratio"],
                       **{f"trials_per_cpu_s_batched_over_sequential_{r['arm']}": r["batched_over_sequential"]
                          for r in seed_rows if "batched_over_sequential" in r}},
            "goal": f"batched vote scoring >= {GOAL_SPEEDUP:g}x faster than one perturbed copy per forward pass",
            "met": bool(speedup >= GOAL_SPEEDUP), "threads": upd["threads"]}


def seed_batching(quick: bool) -> list[dict]:
    """Trials per CPU-second (process time), sequential vs batched seeds, for ER and RM (same seeds, same run)."""
    from reprozoo.rainbow.batched import BatchedLearner
    from reprozoo.rainbow.experiment import RainbowConfig
    from reprozoo.rainbow.experiment_trials import _setup, settings_for
    from reprozoo.rainbow.strategies import ContinualLearner

    cfg = RainbowConfig.from_preset("quick")
    rows = []
    for arm, n in (("er", 4 if quick else 10), ("rm", 2 if quick else 4)):
        seeds = list(range(n))
        setups = [_setup(cfg, "rm_mlp_digits", s, cfg.blur) for s in seeds]
        st = settings_for(cfg, arm, 40)
        t0 = time.process_time()
        seq = [ContinualLearner(fn, st, "cpu", s).fit(sc, d.x_train, d.x_test, sc.relabel(d.y_test)).task_acc[-1]
               for (d, sc, fn), s in zip(setups, seeds)]
        t1 = time.process_time()
        bat = BatchedLearner([fn for _, _, fn in setups], st, "cpu", seeds).fit(
            [sc for _, sc, _ in setups], [d.x_train for d, _, _ in setups], [d.x_test for d, _, _ in setups],
            [sc.relabel(d.y_test) for d, sc, _ in setups])
        t2 = time.process_time()
        seq_rate, bat_rate = n / (t1 - t0), n / (t2 - t1)
        diff = max(abs(a - r.task_acc[-1]) for a, r in zip(seq, bat))
        rows.append({"update": f"{arm} trials one seed at a time", "candidates": "-", "K": 40, "arm": arm,
                     "ms": 1e3 * (t1 - t0) / n, "trials_per_cpu_s": seq_rate, "seeds": n})
        rows.append({"update": f"{arm} trials, {n} seeds as one batched model", "candidates": "-", "K": 40,
                     "arm": arm, "ms": 1e3 * (t2 - t1) / n, "trials_per_cpu_s": bat_rate, "seeds": n,
                     "batched_over_sequential": bat_rate / seq_rate, "max_abs_diff_A_last": diff})
    return rows
