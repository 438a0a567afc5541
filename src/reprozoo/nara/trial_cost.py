"""Trials per CPU-second of the ``nara`` experiment, before and after its per-trial cost was cut
(measured in one run, on the same trained task, so that only the ratio matters).

A trial trains the mother, Q and C (the same in both settings) and evaluates every sampler. Before,
every sampler setting also ran on the test draw (a curve no rule reads: the rules read only the
settings chosen on validation); after, the test draw runs only the chosen settings
(``test_curve=False``, the experiment's default) and gives the same numbers for them
(``tests/nara/test_costs.py``). Both evaluations include the CPU-time measurements of the trial.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import torch

from reprozoo.nara.config import NaraConfig, task_cfg
from reprozoo.nara.evaluation import evaluate_task
from reprozoo.nara.tasks import build_task


def _cpu_s(fn) -> tuple[float, Any]:
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def trial_rates(cfg: NaraConfig, seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """Per task: CPU seconds of training, of the evaluation with and without the full test curve,
    trials per CPU-second before / after and their ratio."""
    out: dict[str, Any] = {}
    for name in cfg.tasks:
        train_s, task = _cpu_s(lambda name=name: build_task(task_cfg(cfg, name), seed=seed, device=device))
        with torch.no_grad():
            before_s, _ = _cpu_s(lambda t=task: evaluate_task(replace(cfg, test_curve=True), t, seed))
            after_s, _ = _cpu_s(lambda t=task: evaluate_task(replace(cfg, test_curve=False), t, seed))
        before, after = 1.0 / (train_s + before_s), 1.0 / (train_s + after_s)
        out[name] = {"train_cpu_s": train_s, "eval_cpu_s_before": before_s, "eval_cpu_s_after": after_s,
                     "trials_per_cpu_s_before": before, "trials_per_cpu_s_after": after, "ratio": after / before}
    return out


__all__ = ["trial_rates"]
