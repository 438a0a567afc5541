"""``reprozoo bench eclips``: trials per CPU-second of a shortened ECLIPS trial at one torch thread
against two (:func:`trial_rate`: the runtime runs each trial at one thread), frames/s of the K-member ensemble against one base learner, the
members run in a Python loop vs in one pass (``torch.func.stack_module_state`` + ``vmap``, and
grouped convolutions, :class:`~reprozoo.eclips.batched.GroupedMembers`), and the cost of MC dropout
(T passes), all as ratios measured in the same run.

How far from the machine's limit (issue #11): every row's ``ms`` is the median latency of one
timed call on the whole batch and ``flops`` that call's arithmetic work from the runtime's FLOP
counter (convolutions and matrix products, a multiply-add = 2 FLOPs): one base learner's forward
for the base row, K members' forwards for the loop, vmap and grouped-conv rows (the same work,
done in one pass or in K), and T x K member forwards for MC dropout. ``limit_fraction`` is the
achieved FLOP/s over ``peak_flops``, the float32 throughput of a 1024x1024 ``torch.mm`` measured in
the same run right after the timings with the same thread count (``threads``); the vmap and
grouped rows also give the loop's fraction from their own interleaved pair."""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from reprozoo.eclips.batched import GroupedMembers, stacked_forward
from reprozoo.eclips.ensemble import Ensemble
from reprozoo.eclips.models import base_learner
from reprozoo.eclips.training import FitSettings, fit, score_frames
from reprozoo.eclips.uncertainty import predict
from reprozoo.runtime.profile import (
    add_limit_fraction,
    count_call_flops,
    count_macs,
    count_params,
    latency_ratio,
    limit_fraction,
    matmul_peak_flops,
    measure_latency,
)
from reprozoo.runtime.registry import register_benchmark


def measure(quick: bool = False, k: int = 4, width: int = 32, embed_dim: int = 64, size: int = 32,
            batch: int = 64, mc_samples: int = 8, macs: bool = True) -> dict[str, Any]:
    with torch.random.fork_rng(devices=[]):  # seeded weights and inputs; the caller's global RNG untouched
        torch.manual_seed(0)
        single = base_learner(width, embed_dim).eval()
        ens = Ensemble([base_learner(width, embed_dim) for _ in range(k)]).eval()
        x = torch.randn(batch, 3, size, size)
    kw = {"rounds": 2, "warmup": 1, "repeats": 5} if quick else {"rounds": 3, "warmup": 3, "repeats": 20}
    members = list(ens.members)
    with torch.inference_mode():
        loop = latency_ratio(lambda: ens(x), lambda: single(x), **kw)
        vmapped = latency_ratio(lambda: ens.fuse(stacked_forward(members, x)), lambda: ens(x), **kw)
        grouped_net = GroupedMembers(members)
        grouped = latency_ratio(lambda: ens.fuse(grouped_net(x)), lambda: ens(x), **kw)
    with torch.no_grad():
        t_det = measure_latency(lambda: predict(ens, x), warmup=kw["warmup"], repeats=kw["repeats"])["median_ms"]
        t_mc = measure_latency(lambda: predict(ens, x, mc_samples=mc_samples), warmup=kw["warmup"],
                               repeats=kw["repeats"])["median_ms"]
    peak = matmul_peak_flops(min_time_s=0.2 if quick else 0.5)  # same run, same thread count
    with torch.inference_mode():  # work of one timed call each, on the whole batch
        work = {"single": count_call_flops(single, x), "loop": count_call_flops(ens, x),
                "vmap": count_call_flops(lambda: ens.fuse(stacked_forward(members, x))),
                "grouped": count_call_flops(lambda: ens.fuse(grouped_net(x)))}
    with torch.no_grad():
        work["mc"] = count_call_flops(lambda: predict(ens, x, mc_samples=mc_samples))
    fps = lambda ms: batch / (ms / 1000.0)  # noqa: E731
    rows = [
        {"model": "base learner", "params": count_params(single), "macs": count_macs(single, x[:1]) if macs else None,
         "frames_per_s": round(fps(loop["baseline_ms"]), 1), "ms": loop["baseline_ms"], "flops": work["single"]},
        {"model": f"ensemble K={k} (loop)", "params": count_params(ens), "macs": count_macs(ens, x[:1]) if macs else None,
         "frames_per_s": round(fps(loop["method_ms"]), 1), "ms": loop["method_ms"], "flops": work["loop"]},
        {"model": f"ensemble K={k} (vmap)", "frames_per_s": round(fps(vmapped["method_ms"]), 1),
         "loop_frames_per_s_same_pair": round(fps(vmapped["baseline_ms"]), 1), "ms": vmapped["method_ms"],
         "loop_ms_same_pair": vmapped["baseline_ms"], "flops": work["vmap"]},
        {"model": f"ensemble K={k} (grouped conv)", "frames_per_s": round(fps(grouped["method_ms"]), 1),
         "loop_frames_per_s_same_pair": round(fps(grouped["baseline_ms"]), 1), "ms": grouped["method_ms"],
         "loop_ms_same_pair": grouped["baseline_ms"], "flops": work["grouped"]},
        {"model": f"ensemble K={k} + MC dropout T={mc_samples}", "frames_per_s": round(fps(t_mc), 1), "ms": t_mc,
         "flops": work["mc"]},
    ]
    add_limit_fraction(rows, peak, ms_key="ms")
    for row in rows[2:4]:  # the loop's own timing in the vmap / grouped pair
        row["loop_limit_fraction_same_pair"] = round(limit_fraction(work["loop"], row["loop_ms_same_pair"], peak), 4)
    ratios = {"ensemble_loop / single (latency)": loop["ratio"],
              "ensemble_vmap / ensemble_loop (latency)": vmapped["ratio"],
              "ensemble_grouped / ensemble_loop (latency)": grouped["ratio"],
              f"mc_dropout_T{mc_samples} / deterministic (latency)": t_mc / t_det}
    return {"rows": rows, "ratios": ratios, "batch": batch, "size": size, "threads": torch.get_num_threads(),
            "peak_flops": peak}


def trial_cost(threads: int, *, iters: int = 20, width: int = 8, embed_dim: int = 32, k: int = 4, size: int = 32,
               n_frames: int = 720, n_score: int = 480, mc_samples: int = 4) -> float:
    """CPU seconds (this process, all its threads) of one shortened ECLIPS-arm trial at ``threads`` torch
    threads: ``iters`` training iterations of the quick preset's K-member learners (4 frames per bucket, three
    source cameras, one sampler refresh) on random frames, then MC-dropout scoring of ``n_score`` frames."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng():  # the same initial weights every call; the caller's RNG untouched
            gen = torch.Generator().manual_seed(0)
            frames = torch.randint(0, 256, (n_frames, 3, size, size), dtype=torch.uint8, generator=gen)
            labels = torch.arange(n_frames) % 2
            domains = (torch.arange(n_frames) // 2) % 3
            with torch.random.fork_rng(devices=[]):  # initial weights seeded; the caller's global RNG untouched
                torch.manual_seed(0)
                model = Ensemble([base_learner(width, embed_dim) for _ in range(k)])
            settings = FitSettings(iters=iters, n_per_bucket=4, uncertainty_sampling=True, refresh_every=max(1, iters // 2),
                                   mc_samples=mc_samples, subset=120)
            start = time.process_time()
            fit(model, frames, labels, domains, settings, generator=gen, device="cpu")
            score_frames(model, frames[:n_score], mc_samples=mc_samples, generator=gen)
            return time.process_time() - start
    finally:
        torch.set_num_threads(before)


def trial_rate(quick: bool = False, rounds: int = 2, threads: tuple[int, ...] = (2, 1), **kw: Any) -> dict[str, Any]:
    """Trials per CPU-second of :func:`trial_cost` at each thread count (the best of ``rounds`` interleaved
    rounds) and the ratio of the last to the first, measured in one run: the runtime's one torch thread per
    trial (issue #27) against torch's default of one thread per core."""
    kw.setdefault("iters", 10 if quick else 40)
    cpu: dict[int, list[float]] = {t: [] for t in threads}
    for t in threads:  # warm-up (first-call costs) at every thread count, not timed
        trial_cost(t, **{**kw, "iters": 2})
    for _ in range(rounds):
        for t in threads:
            cpu[t].append(trial_cost(t, **kw))
    best = {t: min(v) for t, v in cpu.items()}
    rate = {t: 1.0 / best[t] for t in threads}
    return {"iters": kw["iters"], "cpu_s_per_trial": {str(t): best[t] for t in threads},
            "trials_per_cpu_s": {str(t): rate[t] for t in threads},
            "ratio": rate[threads[-1]] / rate[threads[0]], "threads": list(threads)}


@register_benchmark("eclips", description="ECLIPS ensemble vs one base learner (loop vs vmap) and MC-dropout cost")
def run(quick: bool = False) -> dict[str, Any]:
    # quick: the quick preset's base learner (width 8); full: the paper preset's (width 32)
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    out = measure(quick=quick, width=8 if quick else 32, embed_dim=32 if quick else 64, batch=32 if quick else 64)
    r = out["ratios"]
    v, g = r["ensemble_vmap / ensemble_loop (latency)"], r["ensemble_grouped / ensemble_loop (latency)"]
    out["trial_rate"] = trial_rate(quick=quick)
    tr = out["trial_rate"]
    out["ratios"]["trials per CPU-s, 1 thread / 2 threads (shortened ECLIPS trial)"] = tr["ratio"]
    out["goal"] = (f"report only: one-pass members vs the loop: vmap {v:.2f}x, grouped conv {g:.2f}x the "
                   "loop's latency (< 1 = faster)")
    out["met"] = True
    # ratios taken on a shared machine are noisy; the 1-minute load average says how shared it was
    out["load_average_1min"] = {"start": load_start, "end": os.getloadavg()[0] if load_start is not None else None}
    return out
