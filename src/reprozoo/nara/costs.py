"""CPU-time measurements inside one ``nara`` trial, taken in the same run as the samples they
describe, so that only ratios leave the trial (never an absolute time from a shared machine):

* :func:`interleaved_cpu_ms`: a batch of every chosen sampler and of sequential sampling, timed in
  interleaved rounds (a slow spell of the machine hits every sampler) as process CPU time, median
  per sampler; the experiment reports each sampler's time over sequential's;
* :func:`call_costs`: one mother call, one step of the confidence predictor C (its band of
  positions, its scores and the acceptance run) and one proposal of the prior Q on the first
  iteration's state of the evaluation batch, in CPU ms and in mother calls;
* :func:`equivalent_calls`: AR calls per sample plus C's and Q's calls priced in mother calls.

With one torch thread per trial (the runtime's default ``threads=1``) process CPU time is the
work of the trial's own thread; descheduling by other processes is not counted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from reprozoo.nara.predictors import step_change
from reprozoo.nara.tasks import Task

MIN_MS = 20.0  # each timing repeats its function until this much CPU time has accumulated
WINDOW = 16  # positions C scores after the exact run (the samplers' default ``window``)
WITH_C = ("nara", "untrained")  # samplers that call C once per AR call (and Q once per sample)
WITH_Q = ("jacobi+prior", *WITH_C)


def cpu_ms(fn: Callable[[], Any], min_ms: float = MIN_MS) -> float:
    """Process CPU ms of one call of ``fn`` (the mean over as many calls as it takes to accumulate
    ``min_ms``)."""
    k, total = 0, 0.0
    while True:
        t0 = time.process_time()
        fn()
        total += time.process_time() - t0
        k += 1
        if 1000.0 * total >= min_ms:
            return 1000.0 * total / k


def interleaved_cpu_ms(runs: dict[str, Callable[[], Any]], rounds: int, min_ms: float = MIN_MS) -> dict[str, float]:
    """CPU ms per call of every function in ``runs``: ``rounds`` interleaved rounds, median per function."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            times[name].append(cpu_ms(fn, min_ms))
    return {name: statistics.median(v) for name, v in times.items()}


@torch.inference_mode()
def call_costs(task: Task, noise: torch.Tensor, context: torch.Tensor | None, rounds: int) -> dict[str, float]:
    """CPU ms of one mother call, one C step and one Q proposal on the state the samplers meet first
    (the batch of ``noise``, the future proposed by Q), interleaved; and C's and Q's cost in mother calls.

    C's step is what NARA adds to an iteration of exact Jacobi: the band of ``WINDOW`` positions after
    the exact run, C's scores there and the run of accepted positions (the exact run itself is shared)."""
    mother, fam, conf = task.mother, task.mother.family, task.confidence
    b, n = noise.shape
    x = torch.zeros(b, n, device=noise.device, dtype=noise.dtype)
    if context is not None:
        x[:, : task.start] = context.to(x.dtype)
    m = torch.full((b,), task.start, dtype=torch.long, device=noise.device)
    x = task.prior.propose(x, m, noise)
    params = mother.conditionals(x)
    pos = torch.arange(n, device=noise.device)[None, :]
    x_new = torch.where(pos >= m[:, None], fam.sample(params, noise), x)
    change, d = step_change(x, x_new)
    code = fam.noise_code(noise)
    j0 = (d <= 0).sum(1)
    band = torch.arange(min(WINDOW, n), device=noise.device)[None, :]
    indexed = getattr(conf, "supports_index", False)

    def c_step():
        idx = (j0[:, None] + band).clamp_max(n - 1)
        if indexed:
            z = conf(x, x_new, params, m, code=code, change=change, d=d, index=idx)
        else:
            z = conf(x, x_new, params, m, code=code, change=change, d=d).gather(1, idx)
        return (z >= 0.0).to(torch.int32).cumprod(1).sum(1).add(j0).clamp_max(n)

    ms = interleaved_cpu_ms({"mother": lambda: mother.conditionals(x), "confidence": c_step,
                             "prior": lambda: task.prior.propose(x, m, noise)}, rounds)
    return {"mother_ms": ms["mother"], "confidence_ms": ms["confidence"], "prior_ms": ms["prior"],
            "confidence_over_mother": ms["confidence"] / ms["mother"], "prior_over_mother": ms["prior"] / ms["mother"],
            "batch": float(b)}


def equivalent_calls(family: str, calls: float, costs: dict[str, float], reprior: bool = False) -> float:
    """AR calls per sample plus the sampler's own C and Q calls priced in mother calls: NARA (and
    its untrained control) call C once per AR call and Q once per sample (``reprior``: once more per
    AR call); exact Jacobi from Q calls Q once per sample."""
    c, q = costs["confidence_over_mother"], costs["prior_over_mother"]
    out = calls
    if family in WITH_C:
        out += c * calls + (q * calls if reprior else 0.0)
    if family in WITH_Q:
        out += q
    return out


__all__ = ["MIN_MS", "WINDOW", "call_costs", "cpu_ms", "equivalent_calls", "interleaved_cpu_ms"]
