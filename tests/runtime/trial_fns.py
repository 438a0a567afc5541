"""Module-level trial functions for the executor tests (workers import them by name)."""

from __future__ import annotations

import os
import time

import numpy as np
import torch


def train_tiny(trial, tctx):
    """A small but real computation whose result depends on the seed and the arm."""
    g = torch.Generator().manual_seed(trial.seed)
    x = torch.randn(64, 8, generator=g)
    y = (x[:, 0] > 0).long()
    model = torch.nn.Linear(8, 2)
    opt = torch.optim.SGD(model.parameters(), lr=trial.get("lr", 0.1))
    for _ in range(20):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    noise = float(torch.rand(()))  # the global RNG: seeded by the runtime from the trial key
    return {"loss": float(loss.detach()), "noise": noise, "np": float(np.random.rand()), "arm": trial.arm}


def fail_on(trial, tctx):
    if trial.arm == "bad":
        raise ValueError("this arm is broken")
    return {"seed": trial.seed}


def marker(trial, tctx):
    """Records each call in a file so tests can count which trials actually ran."""
    with open(tctx.run_dir / f"ran-{trial.key}", "a") as f:
        f.write("x")
    if trial.get("sleep"):
        time.sleep(trial["sleep"])
    return {"pid": os.getpid(), "seed": trial.seed}


def scored(trial, tctx):
    cfg = tctx.config
    if cfg.fail_arm and trial.arm == cfg.fail_arm and not os.environ.get("TOY_FIXED"):
        raise RuntimeError(f"arm {trial.arm} is broken")
    if cfg.sleep:
        (tctx.workdir / "started").touch()
        time.sleep(cfg.sleep)
    return {"score": trial.seed * 0.01 + (1.0 if trial.arm == "b" else 0.0), "pid": os.getpid()}
