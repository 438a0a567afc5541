"""Evaluating every sampler of one trained task (the ``nara`` experiment's trial and the benchmark's
first step): a validation and a test noise draw shared by all samplers, the sequential samples'
spread, *equal quality* of each setting, the setting chosen on validation, and, on the test draw, the
chosen settings' samples, their CPU time relative to sequential sampling (interleaved, same run) and
the confidence predictor's and the prior's cost in mother calls (:mod:`reprozoo.nara.costs`).

*Equal quality* of a sampler setting, against the sequential samples drawn with the same noise:
mean sample NLL under the mother within ``NLL_MARGIN`` (1%), and MMD to held-out reference data
(and, on sequences, lag-1 autocorrelation) no further from the sequential samples' value than
``SPREAD_FACTOR`` x the sequential samples' own spread over ``SPREAD_DRAWS`` noise draws.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from reprozoo.nara.config import NaraConfig, task_cfg
from reprozoo.nara.costs import call_costs, equivalent_calls, interleaved_cpu_ms
from reprozoo.nara.metrics import abs_error, hamming, lag1_autocorrelation, mmd_rbf, sample_nll
from reprozoo.nara.samplers import draw_noise, sample
from reprozoo.nara.tasks import Task
from reprozoo.runtime.profile import measure_latency

NLL_MARGIN = 0.01  # relative sample-NLL gap to the sequential samples allowed at "equal quality"
SPREAD_FACTOR = 1.0  # MMD / autocorrelation gap allowed, in sequential seed-to-seed spreads
SPREAD_DRAWS = 4  # sequential noise draws per trial that define that spread (val, test and 2 more)
CONTROL = "untrained"  # NARA with an untrained Q and C (the negative control)


def _settings(cfg: NaraConfig, task: Task, control: tuple) -> list[dict[str, Any]]:
    out = [{"family": "sequential", "setting": "-", "kw": {"method": "sequential"}},
           {"family": "jacobi", "setting": "exact", "kw": {"method": "jacobi"}},
           {"family": "jacobi+prior", "setting": "exact", "kw": {"method": "jacobi", "prior": task.prior}}]
    if not task.mother.family.discrete:
        out += [{"family": "tolerance", "setting": f"tol={t:g}sigma", "value": t,
                 "kw": {"method": "tolerance", "tol": t * task.sigma}} for t in sorted(cfg.tolerances)]
    for fam, (q, c) in (("nara", (task.prior, task.confidence)), (CONTROL, control)):
        out += [{"family": fam, "setting": f"tau={t:g}", "value": t,
                 "kw": {"method": "nara", "prior": q, "confidence": c, "threshold": t, "rejected": cfg.rejected}}
                for t in sorted(cfg.thresholds, reverse=True)]
    return out


def _stats(task: Task, x: torch.Tensor) -> dict[str, float]:
    s = task.start
    out = {"nll": float(sample_nll(task.mother, x, s).mean()), "mmd": mmd_rbf(x[:, s:], task.reference[:, s:])}
    if not task.mother.family.discrete:
        out["autocorr"] = lag1_autocorrelation(x[:, s:])
    return out


def _rows(task: Task, settings: list[dict], noise, ctx, seq, samples: dict | None = None) -> list[dict]:
    """One row per setting on one noise draw; ``seq`` is the sequential result on that draw (the
    reference, first row)."""
    s, rows = task.start, []
    for st in settings:
        res = seq if st["family"] == "sequential" else sample(task.mother, noise=noise, context=ctx, **st["kw"])
        row = {"family": st["family"], "setting": st["setting"], "calls": res.mean_calls,
               "iterations": float(res.iterations), "speedup": res.speedup, **_stats(task, res.x)}
        if task.mother.family.discrete:
            row["deviation"] = float(hamming(res.x, seq.x, s).mean())
        else:
            row["deviation"], row["max_error"] = abs_error(res.x, seq.x, s)
        rows.append(row)
        if samples is not None:
            samples[(st["family"], st["setting"])] = res.x[:16].cpu()
    return rows


def evaluate_task(cfg: NaraConfig, task: Task, seed: int) -> dict[str, Any]:
    """Every sampler setting on a validation noise draw (the same draw for all), the sequential
    samples' spread, the settings chosen on validation measured on a test draw (every setting when
    ``cfg.test_curve``), their CPU time relative to sequential sampling and C's and Q's cost in
    mother calls, all in the same run."""
    n_eval, dev = cfg.eval_samples, task.device
    control = task.untrained(seed, task_cfg(cfg, task.kind).confidence_kind,
                             task_cfg(cfg, task.kind).confidence_hidden, task_cfg(cfg, task.kind).prior_hidden)
    settings = _settings(cfg, task, control)
    draws = {}
    for i, split in enumerate(("val", "test", *[f"spread{k}" for k in range(SPREAD_DRAWS - 2)])):
        gen = torch.Generator().manual_seed(1000 * seed + 7 + 4 * i)
        draws[split] = (draw_noise(task.mother, n_eval, gen, dev), task.context(n_eval, n_eval if split == "test" else 0))
    seq = {split: sample(task.mother, "sequential", noise=noise, context=ctx) for split, (noise, ctx) in draws.items()}
    seq_stats = [_stats(task, res.x) for res in seq.values()]  # val, test, then the spread draws
    spread = {k: float(np.std([st[k] for st in seq_stats], ddof=1)) for k in ("mmd", "autocorr") if k in seq_stats[0]}
    splits, samples = {"val": _rows(task, settings, *draws["val"], seq["val"])}, {}
    for r in splits["val"]:
        _mark_quality(r, splits["val"][0], spread)
    chosen = {fam: _choose(splits["val"], fam) for fam in ("jacobi", "jacobi+prior", "tolerance", "nara", CONTROL)}
    chosen = {k: v for k, v in chosen.items() if v is not None}
    on_test = [st for st in settings if cfg.test_curve or st["family"] == "sequential"
               or chosen.get(st["family"]) == st["setting"]]
    splits["test"] = _rows(task, on_test, *draws["test"], seq["test"], samples)
    for r in splits["test"]:
        _mark_quality(r, splits["test"][0], spread)
    costs = call_costs(task, *draws["test"], cfg.time_rounds)
    timing = _time_chosen(cfg, task, settings, chosen, draws["test"])
    test = {fam: next(r for r in splits["test"] if r["family"] == fam and r["setting"] == st)
            for fam, st in chosen.items()}
    test["sequential"] = splits["test"][0]
    for fam, r in test.items():
        r["cpu_ms"] = timing[fam]
        r["time_ratio"] = timing[fam] / timing["sequential"]
        r["eq_calls"] = equivalent_calls(fam, r["calls"], costs, cfg.rejected == "reprior")
    pick = {(f, chosen[f]) for f in chosen} | {("sequential", "-")}
    return {"rows": splits, "spread": spread, "chosen": chosen, "test": test, "sigma": task.sigma,
            "length": task.mother.length - task.start, "start": task.start, "costs": costs,
            "samples": {f"{k[0]}|{k[1]}": v.tolist() for k, v in samples.items() if k in pick},
            "train": {"confidence_positive_rate": task.history.get("confidence_positive_rate", float("nan"))}}


def _mark_quality(row: dict, seq: dict, spread: dict[str, float]) -> None:
    """Adds nll_gap (relative), <stat>_gap and the equal-quality flag to ``row``."""
    row["nll_gap"] = (row["nll"] - seq["nll"]) / abs(seq["nll"])
    ok = abs(row["nll_gap"]) <= NLL_MARGIN
    row["mmd_gap"] = row["mmd"] - seq["mmd"]  # only a larger distance to the data is worse
    ok &= row["mmd_gap"] <= SPREAD_FACTOR * spread["mmd"]
    if "autocorr" in row:
        row["autocorr_gap"] = abs(row["autocorr"] - seq["autocorr"])
        ok &= row["autocorr_gap"] <= SPREAD_FACTOR * spread["autocorr"]
    row["equal_quality"] = bool(ok)


def _choose(rows: list[dict], family: str) -> str | None:
    """Setting of ``family`` with the fewest calls at equal quality on validation; the most
    conservative one (first listed: highest threshold / smallest tolerance) when none qualifies."""
    cand = [r for r in rows if r["family"] == family]
    if not cand:
        return None
    ok = [r for r in cand if r["equal_quality"]]
    return min(ok, key=lambda r: r["calls"])["setting"] if ok else cand[0]["setting"]


def interleaved_ms(runs: dict[str, Callable[[], Any]], rounds: int, *, warmup: int = 0,
                   repeats: int = 1) -> dict[str, float]:
    """Wall-clock ms per call of every function in ``runs``: ``rounds`` interleaved rounds (a slow
    spell of the machine hits every function), each timed with
    :func:`~reprozoo.runtime.profile.measure_latency`; the median over rounds."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            times[name].append(measure_latency(fn, warmup=warmup, repeats=repeats)["median_ms"])
    return {name: statistics.median(v) for name, v in times.items()}


def _time_chosen(cfg, task, settings, chosen, draw) -> dict[str, float]:
    """CPU ms of one batch for sequential and each chosen setting: interleaved rounds, median per sampler."""
    noise, ctx = draw
    kws = {"sequential": settings[0]["kw"]}
    for fam, st in chosen.items():
        kws[fam] = next(x["kw"] for x in settings if x["family"] == fam and x["setting"] == st)
    runs = {fam: (lambda kw=kw: sample(task.mother, noise=noise, context=ctx, **kw)) for fam, kw in kws.items()}
    for fn in runs.values():  # warm-up
        fn()
    return interleaved_cpu_ms(runs, cfg.time_rounds)
