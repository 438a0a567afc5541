"""The learning-rate schedule of gmp's training: ``torch.optim.lr_scheduler.LambdaLR`` with a linear
warm-up from 1e-7 and then inverse square-root decay. The same schedule composed from the built-in
``LinearLR`` + ``LambdaLR`` under ``SequentialLR`` agrees to float rounding but not bit for bit (13 of the first 60
steps differ by ~2e-19 in the learning rate), so the single ``LambdaLR`` stays: the experiment's numbers
must not move."""

from __future__ import annotations

import math

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR, LinearLR, SequentialLR

from reprozoo.gmp.training import warmup_inverse_sqrt


def _lrs(make, steps: int = 100) -> list[float]:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1e-3)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("warmup", [1, 20])
def test_schedule_equals_the_builtin_composition(warmup):
    lr, start = 1e-3, 1e-7
    ours = _lrs(lambda o: LambdaLR(o, warmup_inverse_sqrt(warmup, lr, start)))
    builtin = _lrs(lambda o: SequentialLR(o, [LinearLR(o, start / lr, 1.0, total_iters=warmup),
                                              LambdaLR(o, lambda k: math.sqrt(warmup / (k + warmup)))],
                                          milestones=[warmup]))
    assert ours == pytest.approx(builtin, rel=1e-12, abs=1e-18)
    assert ours[0] == pytest.approx(start) and ours[warmup] == pytest.approx(lr)
    assert ours[4 * warmup] == pytest.approx(lr / 2)  # inverse square root: lr * sqrt(w / 4w)
