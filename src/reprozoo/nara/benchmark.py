"""Benchmark ``nara``: wall-clock speed-up of each sampler over sequential sampling, at batch 1
and batch 64, on both demo tasks, measured in the same run (interleaved medians)."""

from __future__ import annotations

from typing import Any

import torch

from reprozoo.nara.samplers import draw_noise, sample
from reprozoo.nara.tasks import Task, TaskConfig, build_task
from reprozoo.nara.training import FitConfig
from reprozoo.runtime.profile import latency_ratio
from reprozoo.runtime.registry import register_benchmark

THRESHOLD = 0.9  # NARA threshold used for timing (fixed; quality is the experiment's business)


def _task_configs(quick: bool) -> dict[str, TaskConfig]:
    """quick: briefly trained models (timing only; the sine mother is weak, so its samplers save few
    calls); full: the experiment's quick-preset sizes."""
    e = 8 if quick else 40
    digits = TaskConfig(kind="digits", mother=FitConfig(epochs=e, batch_size=100),
                        prior=FitConfig(epochs=e, batch_size=100), confidence=FitConfig(epochs=5, batch_size=200),
                        confidence_states=1500 if quick else 8000)
    sine = TaskConfig(kind="sine", observed=16, n_train=600 if quick else 4000, n_test=100,
                      channels=32 if quick else 64, mother=FitConfig(epochs=4 if quick else 30, batch_size=100),
                      prior=FitConfig(epochs=e, batch_size=100), confidence=FitConfig(epochs=5, batch_size=200),
                      confidence_states=800 if quick else 4000)
    return {"digits": digits, "sine": sine}


def _samplers(task: Task, sigma: float) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"jacobi": {"method": "jacobi"}}
    if not task.mother.family.discrete:
        out["tolerance"] = {"method": "tolerance", "tol": 0.1 * sigma}
    out["nara"] = {"method": "nara", "prior": task.prior, "confidence": task.confidence, "threshold": THRESHOLD}
    return out


def measure(task: Task, batch: int, *, repeats: int = 5, rounds: int = 3, compact: bool = False) -> list[dict]:
    """Rows ``{task, batch, sampler, calls, iterations, method_ms, sequential_ms, speedup}``."""
    gen = torch.Generator().manual_seed(batch)
    noise = draw_noise(task.mother, batch, gen)
    ctx = task.context(batch)
    common = {"noise": noise, "context": ctx}
    with torch.no_grad():
        sigma = 1.0
        if not task.mother.family.discrete:
            sigma = float(task.mother.family.scale(task.mother.conditionals(task.test)).median())

    def seq():
        return sample(task.mother, "sequential", **common)

    rows = []
    for name, kw in _samplers(task, sigma).items():
        kw = {**kw, "compact": compact}
        res = sample(task.mother, **kw, **common)
        timing = latency_ratio(lambda kw=kw: sample(task.mother, **kw, **common), seq, rounds=rounds,
                               warmup=1, repeats=repeats)
        rows.append({"task": task.kind, "batch": batch, "sampler": name, "calls": res.mean_calls,
                     "iterations": res.iterations, "method_ms": timing["method_ms"],
                     "sequential_ms": timing["baseline_ms"], "speedup": 1.0 / timing["ratio"]})
    return rows


@register_benchmark("nara", description="wall-clock speed-up over sequential AR sampling per sampler, batch 1 and 64")
def run(quick: bool = False) -> dict[str, Any]:
    rows: list[dict] = []
    for cfg in _task_configs(quick).values():
        task = build_task(cfg, seed=0, device="cpu", progress=False)
        for batch in (1, 64):
            rows += measure(task, batch, repeats=5 if quick else 10, rounds=1 if quick else 3)
    ratios = {f"{r['task']}_b{r['batch']}_{r['sampler']}_speedup": r["speedup"] for r in rows}
    nara = [r for r in rows if r["sampler"] == "nara" and r["task"] == "digits"]
    return {"rows": rows, "ratios": ratios,
            "goal": "NARA sampling on digits is faster in wall-clock than sequential at batch 1 and 64 (speed-up > 1)",
            "met": all(r["speedup"] > 1.0 for r in nara)}
