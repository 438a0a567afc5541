"""Benchmark ``nara``: does NARA turn saved AR calls into saved wall-clock time?

For both demo tasks (one seed), NARA's threshold and tolerance Jacobi's tolerance are chosen on a
validation draw with the experiment's rules; then, at batch 1 and 64, one run measures side by side
sequential sampling, both exact Jacobi variants (zero start, start from Q; the faster one is "the
best exact Jacobi"), tolerance Jacobi (sequences) and NARA: AR calls per sample, batch iterations,
wall-clock (``torch.utils.benchmark``, interleaved rounds), the arithmetic work of the whole batch
(mother + C + Q FLOPs from the runtime's counter, exact under batch compaction) and the fraction of
the machine's float32 matmul throughput measured in the same run. Also the cost of one C call
relative to one mother call. Goal: NARA faster than sequential and than the best exact Jacobi at
batch 1 and 64 on both tasks.
"""

from __future__ import annotations

from typing import Any

import torch

from reprozoo.nara.experiment import NaraConfig, evaluate_task, task_cfg
from reprozoo.nara.predictors import step_change
from reprozoo.nara.samplers import draw_noise, sample
from reprozoo.nara.tasks import Task, build_task, resolve_device
from reprozoo.runtime.profile import count_flops, latency_ratio, limit_fraction, matmul_peak_flops
from reprozoo.runtime.registry import register_benchmark

BATCHES = (1, 64)


class _Call(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


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
    conf = _Call(lambda *a: task.confidence(*a, code=code, change=change, d=d))
    return {"mother": float(count_flops(_Call(task.mother.conditionals), x)),
            "confidence": float(count_flops(conf, x, x_new, params, m)),
            "prior": float(count_flops(_Call(task.prior), x, m))}


def call_costs(task: Task, batch: int, repeats: int = 10) -> dict[str, float]:
    """Wall-clock ms of one mother call and one C call at ``batch`` (C's overhead per iteration)."""
    n, fam, dev = task.mother.length, task.mother.family, task.device
    u = draw_noise(task.mother, batch, torch.Generator().manual_seed(1), dev)
    x = torch.zeros(batch, n, device=dev)
    m = torch.full((batch,), task.start, dtype=torch.long, device=dev)
    with torch.no_grad():
        params = task.mother.conditionals(x)
        x_new = fam.sample(params, u)
        change, d = step_change(x, x_new)
        code = fam.noise_code(u)
        r = latency_ratio(lambda: task.confidence(x, x_new, params, m, code=code, change=change, d=d),
                          lambda: task.mother.conditionals(x), rounds=2, warmup=2, repeats=repeats)
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
    """One row per sampler: calls, iterations, ms (vs sequential in interleaved rounds), work, fraction of peak."""
    gen = torch.Generator().manual_seed(batch)
    noise = draw_noise(task.mother, batch, gen, task.device)
    common = {"noise": noise, "context": task.context(batch)}

    def seq():
        return sample(task.mother, "sequential", **common)

    n_seq = task.mother.length - task.start
    rows = []
    seq_ms = []
    for name, kw in samplers.items():
        res = sample(task.mother, **kw, **common)
        timing = latency_ratio(lambda kw=kw: sample(task.mother, **kw, **common), seq, rounds=rounds,
                               warmup=1, repeats=repeats)
        seq_ms.append(timing["baseline_ms"])
        total = float(res.calls.sum())
        work = total * flops["mother"] + (total * flops["confidence"] if name == "nara" else 0.0) \
            + res.prior_calls * batch * flops["prior"]
        rows.append({"task": task.kind, "batch": batch, "sampler": name, "calls": res.mean_calls,
                     "iterations": res.iterations, "ms": timing["method_ms"], "sequential_ms": timing["baseline_ms"],
                     "speedup_vs_sequential": 1.0 / timing["ratio"], "mflop": work / 1e6,
                     "peak_fraction": limit_fraction(work, timing["method_ms"], peak)})
    seq_ms_med = sorted(seq_ms)[len(seq_ms) // 2]
    seq_work = batch * n_seq * flops["mother"]
    rows.insert(0, {"task": task.kind, "batch": batch, "sampler": "sequential", "calls": float(n_seq),
                    "iterations": n_seq, "ms": seq_ms_med, "sequential_ms": seq_ms_med, "speedup_vs_sequential": 1.0,
                    "mflop": seq_work / 1e6, "peak_fraction": limit_fraction(seq_work, seq_ms_med, peak)})
    return rows


def _goal(rows: list[dict]) -> tuple[bool, list[str], list[str]]:
    """NARA faster than sequential and than the best exact Jacobi in every (task, batch)."""
    ok, lines, lost = True, [], []
    for key in sorted({(r["task"], r["batch"]) for r in rows}):
        group = {r["sampler"]: r for r in rows if (r["task"], r["batch"]) == key}
        nara = group["nara"]
        best = min(("jacobi", "jacobi+prior"), key=lambda k: group[k]["ms"])
        vs_seq = nara["speedup_vs_sequential"]
        vs_jac = group[best]["ms"] / nara["ms"]
        met = vs_seq > 1.0 and vs_jac > 1.0
        ok &= met
        lines.append(f"{key[0]} b{key[1]}: NARA {vs_seq:.2f}x sequential, {vs_jac:.2f}x best exact Jacobi ({best}) "
                     f"-> {'met' if met else 'not met'}")
        if nara["calls"] < group[best]["calls"] and vs_jac <= 1.0:
            lost.append(f"{key[0]} b{key[1]}: {group[best]['calls'] / nara['calls']:.2f}x fewer calls than {best} "
                        f"but {vs_jac:.2f}x its speed")
    return ok, lines, lost


@register_benchmark("nara", description="NARA vs sequential and exact Jacobi: calls, wall-clock, work and fraction of "
                                         "the matmul peak, batch 1 and 64, both tasks")
def run(quick: bool = False, device: str = "auto") -> dict[str, Any]:
    preset = "smoke" if quick else "quick"
    cfg = NaraConfig.from_preset(preset, ["eval_samples=200" if not quick else "eval_samples=24"])
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
            for k, v in call_costs(task, batch, repeats=3 if quick else 10).items():
                costs[f"{name}_b{batch}_{k}"] = v
            with torch.no_grad():
                rows += measure(task, batch, samplers, flops, peak, repeats=3 if quick else 10,
                                rounds=1 if quick else 3)
    met, lines, lost = _goal(rows)
    ratios = {f"{r['task']}_b{r['batch']}_{r['sampler']}_speedup": r["speedup_vs_sequential"] for r in rows}
    return {"rows": rows, "ratios": ratios, "call_costs": costs, "chosen": chosen_all,
            "matmul_peak_gflops": peak / 1e9, "threads": torch.get_num_threads(), "device": dev,
            "goal": "NARA at its validation-chosen threshold is faster in wall-clock than sequential and than the best "
                    "exact Jacobi at batch 1 and 64 on both tasks: " + "; ".join(lines),
            "met": bool(met),
            "calls_not_time": lost or ["none: every call saved against the best exact Jacobi was also time saved"]}


__all__ = ["call_costs", "measure", "per_sample_flops", "run"]
