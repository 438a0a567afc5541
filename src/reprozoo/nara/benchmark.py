"""Benchmark ``nara``: does NARA turn saved AR calls into saved wall-clock time?

For both demo tasks (one seed), NARA's threshold and tolerance Jacobi's tolerance are chosen on a 100-sample
validation draw with the experiment's rules; then, at batch 1 and 64, one run measures side by side
sequential sampling, both exact Jacobi variants (zero start, start from Q; the faster one is "the
best exact Jacobi"), tolerance Jacobi (sequences) and NARA: AR calls per sample, batch iterations,
wall-clock (``torch.utils.benchmark``, interleaved rounds), the arithmetic work of the whole batch
(mother + C + Q FLOPs from the runtime's counter, exact under batch compaction) and the fraction of
the machine's float32 matmul throughput measured in the same run. Also the cost of one C call
relative to one mother call. Goal: NARA faster than sequential and than the best exact Jacobi at
batch 1 and 64 on both tasks. Last, the experiment's trials per CPU-second (one torch thread, as its
trials run) before and after the test draw was restricted to the chosen settings
(:mod:`reprozoo.nara.trial_cost`), as a ratio measured in the same run.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from reprozoo.nara.config import NaraConfig, task_cfg
from reprozoo.nara.evaluation import evaluate_task, interleaved_ms
from reprozoo.nara.predictors import step_change
from reprozoo.nara.samplers import draw_noise, sample
from reprozoo.nara.tasks import Task, build_task
from reprozoo.nara.trial_cost import trial_rates
from reprozoo.runtime.accel import resolve_device
from reprozoo.runtime.profile import (
    count_call_flops,
    latency_ratio,
    limit_fraction,
    matmul_peak_flops,
)
from reprozoo.runtime.registry import register_benchmark

BATCHES = (1, 64)
WINDOW = 16  # positions C scores after the exact run (the samplers' default ``window``)


def per_sample_flops(task: Task) -> dict[str, float]:
    """FLOPs of one mother call, one C call and one Q call for a single sample."""
    n, fam, dev = task.mother.length, task.mother.family, task.device
    x = torch.zeros(1, n, device=dev)
    m = torch.full((1,), task.start, dtype=torch.long, device=dev)
    u = draw_noise(task.mother, 1, torch.Generator().manual_seed(0), dev)
    with torch.no_grad():
        params = task.mother.conditionals(x)
        x_new = fam.sample(params, u)
        change, d = step_change(x, x_new)
    code = fam.noise_code(u)
    with torch.no_grad():
        out = {"mother": float(count_call_flops(task.mother.conditionals, x)),
               "confidence": float(count_call_flops(task.confidence, x, x_new, params, m, code=code, change=change,
                                                    d=d)),
               "prior": float(count_call_flops(task.prior, x, m))}
        out["confidence_band"] = out["confidence"]
        if getattr(task.confidence, "supports_index", False):  # the sampler scores WINDOW positions only
            idx = _band(m, min(WINDOW, n), n)
            out["confidence_band"] = float(count_call_flops(task.confidence, x, x_new, params, m, code=code,
                                                            change=change, d=d, index=idx))
    return out


def _band(m: torch.Tensor, window: int, n: int) -> torch.Tensor:
    return (m[:, None] + 1 + torch.arange(window, device=m.device)[None, :]).clamp_max(n - 1)


def call_costs(task: Task, batch: int, repeats: int = 10) -> dict[str, float]:
    """Wall-clock ms of one mother call and one C call (on the band of positions the sampler
    scores) at ``batch``: C's overhead per iteration."""
    n, fam, dev = task.mother.length, task.mother.family, task.device
    u = draw_noise(task.mother, batch, torch.Generator().manual_seed(1), dev)
    x = torch.zeros(batch, n, device=dev)
    m = torch.full((batch,), task.start, dtype=torch.long, device=dev)
    with torch.no_grad():
        params = task.mother.conditionals(x)
        x_new = fam.sample(params, u)
        change, d = step_change(x, x_new)
        code = fam.noise_code(u)
        idx = _band(m, min(WINDOW, n), n) if getattr(task.confidence, "supports_index", False) else None
        kw = {"index": idx} if idx is not None else {}
        r = latency_ratio(lambda: task.confidence(x, x_new, params, m, code=code, change=change, d=d, **kw),
                          lambda: task.mother.conditionals(x), rounds=3, warmup=10, repeats=repeats)
    return {"mother_call_ms": r["baseline_ms"], "confidence_call_ms": r["method_ms"], "confidence_over_mother": r["ratio"]}


def _kwargs(task: Task, chosen: dict[str, str], cfg: NaraConfig) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"jacobi": {"method": "jacobi"}, "jacobi+prior": {"method": "jacobi", "prior": task.prior}}
    if "tolerance" in chosen:
        tol = float(chosen["tolerance"].split("=")[1].rstrip("sigma"))
        out["tolerance"] = {"method": "tolerance", "tol": tol * task.sigma}
    tau = float(chosen["nara"].split("=")[1])
    out["nara"] = {"method": "nara", "prior": task.prior, "confidence": task.confidence, "threshold": tau,
                   "rejected": cfg.rejected}
    return out


def measure(task: Task, batch: int, samplers: dict[str, dict[str, Any]], flops: dict[str, float], peak: float, *,
            repeats: int = 5, rounds: int = 3) -> list[dict]:
    """One row per sampler: calls, iterations, ms (median over ``rounds`` interleaved rounds in which
    sequential and every sampler are timed once each), ms per loop trip, work, fraction of peak."""
    gen = torch.Generator().manual_seed(batch)
    noise = draw_noise(task.mother, batch, gen, task.device)
    common = {"noise": noise, "context": task.context(batch)}

    n_seq = task.mother.length - task.start
    runs = {"sequential": lambda: sample(task.mother, "sequential", **common)}
    runs.update({name: (lambda kw=kw: sample(task.mother, **kw, **common)) for name, kw in samplers.items()})
    ms = interleaved_ms(runs, rounds, warmup=1, repeats=repeats)  # a slow spell of the machine hits every sampler
    rows = [_row(task.kind, batch, "sequential", float(n_seq), n_seq, ms["sequential"], ms["sequential"],
                 batch * n_seq * flops["mother"], peak)]
    for name, kw in samplers.items():
        res = sample(task.mother, **kw, **common)
        total = float(res.calls.sum())
        c_flops = flops.get("confidence_band", flops["confidence"]) if kw.get("window", WINDOW) else flops["confidence"]
        work = total * flops["mother"] + (total * c_flops if name == "nara" else 0.0) \
            + res.prior_calls * batch * flops["prior"]
        rows.append(_row(task.kind, batch, name, res.mean_calls, res.iterations, ms[name], ms["sequential"], work, peak))
    return rows


def _row(kind, batch, name, calls, iterations, ms, seq_ms, work, peak) -> dict:
    """``ms_per_call``: one trip of the batch loop (one mother call on the unfinished samples plus
    the sampler's own work); ``limit_fraction``: achieved FLOP/s over the measured matmul peak."""
    return {"task": kind, "batch": batch, "sampler": name, "calls": calls, "iterations": iterations, "ms": ms,
            "ms_per_call": ms / max(iterations, 1), "sequential_ms": seq_ms, "speedup_vs_sequential": seq_ms / ms,
            "flops": work, "limit_fraction": limit_fraction(work, ms, peak)}


def goals(rows: list[dict]) -> list[dict]:
    """Per (task, batch): NARA faster than sequential, and faster than the best (fastest) exact
    Jacobi variant, each "met" or "not met" from the rows of the same run."""
    out = []
    for key in sorted({(r["task"], r["batch"]) for r in rows}):
        group = {r["sampler"]: r for r in rows if (r["task"], r["batch"]) == key}
        nara = group["nara"]
        best = min(("jacobi", "jacobi+prior"), key=lambda k: group[k]["ms"])
        for other, label in (("sequential", "sequential"), (best, f"best exact Jacobi ({best})")):
            speed = group[other]["ms"] / nara["ms"]
            calls_ratio = group[other]["calls"] / nara["calls"]
            # NARA runs the same loop plus C (and Q): with a free C its time per AR call would be
            # the other sampler's, so its speed ratio is at most about the calls ratio
            out.append({"task": key[0], "batch": key[1], "against": other, "goal": f"NARA faster than {label}",
                        "calls_ratio": calls_ratio, "speed_ratio": speed, "free_c_bound": calls_ratio,
                        "per_call_cost_ratio": (nara["ms"] / nara["calls"]) / (group[other]["ms"] / group[other]["calls"]),
                        "met": bool(speed > 1.0)})
    return out


def _goal(rows: list[dict]) -> tuple[bool, list[str], list[str]]:
    """All goals met?, one line per goal, and the cases where calls saved did not become time saved."""
    gs = goals(rows)
    lines = [f"{g['task']} b{g['batch']}: {g['goal']}: {g['calls_ratio']:.2f}x fewer calls, {g['speed_ratio']:.2f}x "
             f"its speed (time per call {g['per_call_cost_ratio']:.2f}x its) -> {'met' if g['met'] else 'not met'}"
             for g in gs]
    lost = [f"{g['task']} b{g['batch']}: {g['calls_ratio']:.2f}x fewer calls than {g['against']} but "
            f"{g['speed_ratio']:.2f}x its speed" for g in gs if g["calls_ratio"] > 1.0 and not g["met"]]
    lost += [f"{g['task']} b{g['batch']}: no calls saved against {g['against']} ({g['calls_ratio']:.2f}x): even a free "
             f"C could not make NARA faster" for g in gs if g["calls_ratio"] <= 1.0 and not g["met"]]
    return all(g["met"] for g in gs), lines, lost


@register_benchmark("nara", description="NARA vs sequential and exact Jacobi: calls, wall-clock, work and fraction of "
                                         "the matmul peak, batch 1 and 64, both tasks")
def run(quick: bool = False, device: str = "auto") -> dict[str, Any]:
    cpu0 = time.process_time()
    preset = "smoke" if quick else "quick"
    cfg = NaraConfig.from_preset(preset, ["eval_samples=100" if not quick else "eval_samples=24"])
    dev = resolve_device(device)
    peak = matmul_peak_flops(device=dev)
    rows: list[dict] = []
    costs: dict[str, float] = {}
    chosen_all: dict[str, dict] = {}
    for name in ("digits", "sine"):
        task = build_task(task_cfg(cfg, name), seed=0, device=dev, progress=False)
        with torch.no_grad():
            ev = evaluate_task(cfg, task, seed=0)
        chosen_all[name] = ev["chosen"]
        flops = per_sample_flops(task)
        costs.update({f"{name}_{k}_flops_per_sample": v for k, v in flops.items()})
        samplers = _kwargs(task, ev["chosen"], cfg)
        for batch in BATCHES:
            for k, v in call_costs(task, batch, repeats=20 if quick else 200).items():  # microsecond calls: many repeats
                costs[f"{name}_b{batch}_{k}"] = v
            with torch.no_grad():
                rows += measure(task, batch, samplers, flops, peak, repeats=3 if quick else 5,
                                rounds=1 if quick else 3)
    met, lines, lost = _goal(rows)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the experiment's trials run (runtime default threads=1)
    try:
        trials = trial_rates(cfg, seed=0, device="cpu")
    finally:
        torch.set_num_threads(threads)
    ratios = {f"{r['task']}_b{r['batch']}_{r['sampler']}_speedup": r["speedup_vs_sequential"] for r in rows}
    return {"rows": rows, "ratios": ratios, "goals": goals(rows), "call_costs": costs, "chosen": chosen_all,
            "peak_flops": peak, "matmul_peak_gflops": peak / 1e9, "threads": torch.get_num_threads(), "device": dev,
            "goal": "NARA at its validation-chosen threshold is faster in wall-clock than sequential and than the best "
                    "exact Jacobi at batch 1 and 64 on both tasks: " + "; ".join(lines),
            "met": bool(met), "cpu_s": time.process_time() - cpu0, "trials_per_cpu_s": trials,
            "calls_not_time": lost or ["none: every call saved against the best exact Jacobi was also time saved"]}


__all__ = ["call_costs", "goals", "measure", "per_sample_flops", "run"]
