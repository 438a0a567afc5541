"""A tiny experiment for the run-folder lock and manifest tests (not part of the library).

Its first trial can be held: while the file named by ``LOCK_TOY_HOLD`` exists, it waits (after
touching ``trials/<key>/started``), so a test can act on a run that is certainly still running.
"""

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from reprozoo.runtime.config import ExperimentConfig
from reprozoo.runtime.registry import register_experiment
from reprozoo.runtime.report import ExperimentResult


def held_trial(trial, tctx):
    hold = os.environ.get("LOCK_TOY_HOLD")
    if hold and trial.arm == "a" and trial.seed == tctx.config.seeds[0]:
        (tctx.workdir / "started").touch()
        while Path(hold).exists():
            time.sleep(0.05)
    if trial.arm == "b" and trial.seed == tctx.config.seeds[0]:
        cache = Path(tctx.run_dir) / "cache_from_trial"  # a top-level entry made inside a trial
        cache.mkdir(exist_ok=True)
        (cache / f"{trial.key}.txt").write_text("x")
    return {"score": float(trial.seed) + (1.0 if trial.arm == "b" else 0.0)}


def draws(trial, tctx):
    """The first draws of every global random stream a trial can use, plus a dropout mask."""
    mask = torch.nn.functional.dropout(torch.ones(16), p=0.5, training=True)
    return {"torch": torch.rand(4).tolist(), "numpy": np.random.rand(4).tolist(),
            "python": [random.random() for _ in range(4)], "dropout": mask.tolist(), "arm": trial.arm}


@dataclass
class LockToyConfig(ExperimentConfig):
    PRESETS: ClassVar[dict] = {"smoke": {"seeds": [0, 1]}, "quick": {"seeds": [0, 1, 2]}, "paper": {}}


@register_experiment("_lock_toy", paper="Nobody et al. (test only)", claim="arm b scores above arm a",
                     config=LockToyConfig)
def run_lock_toy(cfg: LockToyConfig, ctx) -> ExperimentResult:
    from reprozoo.runtime.trials import Trial
    from reprozoo.runtime.verdict import superiority

    trials = [Trial(arm, s) for arm in ("a", "b") for s in cfg.seeds]
    results = ctx.run_trials(held_trial, trials, description="lock toy")
    (ctx.out_dir / "scores.csv").write_text("".join(f"{t.key},{r['score']}\n" for t, r in zip(trials, results)))
    a = [r["score"] for t, r in zip(trials, results) if t.arm == "a"]
    b = [r["score"] for t, r in zip(trials, results) if t.arm == "b"]
    verdict, evidence = superiority(b, a, margin=0.1, name="score")
    return ExperimentResult(verdict, evidence, {"method/score": sum(b) / len(b), "baseline/score": sum(a) / len(a)})
