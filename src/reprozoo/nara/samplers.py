"""Samplers for any :class:`~reprozoo.nara.protocol.ParallelAR` model, all driven by one fixed
noise draw per position so their outputs are comparable:

* ``sequential``: N - P0 calls, one new position per call (the reference);
* ``jacobi``: exact fixed-point iteration; bit-identical to ``sequential`` for the same noise;
* ``tolerance``: Jacobi that also accepts positions whose context moved by at most ``tol``;
* ``nara``: prior predictor Q for the initial guess, confidence predictor C to accept positions
  whose context is still moving (approximate; never claimed exact).

Every parallel sampler confirms at least one position per call (position ``m`` always has a
confirmed context), so it never needs more AR calls than ``sequential``. Batched: each sample has
its own boundary ``m`` and call count; the loop runs until the slowest sample is done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from reprozoo.errors import ConfigError
from reprozoo.nara.checks import (
    check_causality,
    check_context,
    check_context_values,
    check_model,
    check_noise,
    check_outputs,
    check_threshold,
    param_tally,
    tally,
)
from reprozoo.nara.predictors import PriorPredictor, step_change
from reprozoo.nara.protocol import ParallelAR
from reprozoo.runtime.checks import finite, integer

METHODS = ("sequential", "jacobi", "tolerance", "nara")


@dataclass
class SampleResult:
    """``x``: samples ``(B, N)``; ``calls``: AR calls each sample needed ``(B,)``;
    ``iterations``: batch loop trips (AR calls on the batch); ``prior_calls`` /
    ``confidence_calls``: Q and C calls on the batch; ``start``: observed prefix length."""

    x: torch.Tensor
    calls: torch.Tensor
    iterations: int
    prior_calls: int = 0
    confidence_calls: int = 0
    start: int = 0
    method: str = ""

    @property
    def mean_calls(self) -> float:
        return float(self.calls.float().mean())

    @property
    def speedup(self) -> float:
        """Sequential calls (N - P0) over mean AR calls per sample."""
        n = self.x.shape[1] - self.start
        return n / max(self.mean_calls, 1e-12)


def _model_device(model) -> torch.device:
    params = getattr(model, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
        for b in model.buffers():
            return b.device
    return torch.device("cpu")


def draw_noise(model: ParallelAR, batch: int, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
    """One fixed noise value per position, ``(batch, N)``, for the model's family. Drawn on the
    generator's device (so a CPU generator gives the same numbers everywhere), then moved to
    ``device`` (default: the model's)."""
    device = _model_device(model) if device is None else torch.device(device)
    where = generator.device if generator is not None else device
    noise = model.family.draw_noise((batch, check_model(model)), generator=generator, device=where)
    return noise.to(device)


def _setup(model, batch, context, noise, generator, device):
    n = check_model(model)
    device = _model_device(model) if device is None else torch.device(device)
    if batch is None and noise is not None and context is None:
        batch = noise.shape[0]
    b, p0 = check_context(context, batch, n)
    check_context_values(context)
    if noise is None:
        noise = draw_noise(model, b, generator, device)
    elif tuple(noise.shape) != (b, n):
        raise ConfigError(f"noise must have shape ({b}, {n}), got {tuple(noise.shape)}")
    else:
        check_noise(noise, model.family)
    noise = noise.to(device)
    x = torch.zeros(b, n, device=device, dtype=noise.dtype)
    if p0:
        x[:, :p0] = context.to(device=device, dtype=x.dtype)
    return n, b, p0, noise, x


@torch.no_grad()
def sample_sequential(model: ParallelAR, *, batch: int | None = None, context: torch.Tensor | None = None,
                      noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> SampleResult:
    """Plain AR sampling: one parallel call per generated position."""
    n, b, p0, noise, x = _setup(model, batch, context, noise, generator, device)
    fam = model.family
    acc = param_tally(x.device)
    for t in range(p0, n):
        params = model.conditionals(x)
        tally(acc, params[:, t])  # on the device: no extra host sync per call
        # the whole canvas goes through the same elementwise kernel as in the parallel samplers,
        # which keeps the result bit-identical to theirs
        x[:, t] = fam.sample(params, noise)[:, t]
    check_outputs(acc, x)
    calls = torch.full((b,), n - p0, dtype=torch.long)
    return SampleResult(x, calls, n - p0, start=p0, method="sequential")


def _logit(threshold: float) -> float:
    """``sigmoid(z) >= tau`` as ``z >= logit(tau)`` (no sigmoid per call); tau = 1 accepts nothing."""
    return math.inf if threshold >= 1.0 else math.log(threshold / (1.0 - threshold))


@torch.no_grad()
def sample_parallel(
    model: ParallelAR,
    *,
    batch: int | None = None,
    context: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    tol: float = 0.0,
    prior: PriorPredictor | None = None,
    confidence: nn.Module | None = None,
    threshold: float = 0.9,
    rejected: Literal["warm", "reprior"] = "warm",
    compact: bool = True,
    window: int = 16,
    device: torch.device | str | None = None,
    method: str = "",
) -> SampleResult:
    """The fixed-point loop shared by ``jacobi`` / ``tolerance`` / ``nara``.

    Per call, position ``t > m`` is kept when the context in front of it moved by at most ``tol``
    (``tol = 0``: exact) or, with a confidence predictor, when ``sigmoid(C) >= threshold``; the
    boundary moves to the end of the run of kept positions starting at ``m`` (>= m + 1).
    ``prior`` fills the initial future (and, with ``rejected='reprior'``, the rejected tail) with
    draws from Q under the same shared noise; otherwise the future starts at zero.

    Per iteration: one mother call, one C call (nara), one host sync (the number of unfinished
    samples); the change of the canvas is computed once and shared by the exact rule and C.
    ``compact`` (default) drops finished samples from the batch, so the cost of an iteration
    follows the unfinished samples; ``compact=False`` keeps the batch shape fixed (the exact modes
    are then bit-identical to ``sequential`` on any backend; compacted, up to the rounding of
    kernels that depend on the batch size).
    """
    tol = finite("tol", tol, lo=0.0)
    if confidence is not None:
        threshold = check_threshold(threshold)
    if rejected not in ("warm", "reprior"):
        raise ConfigError(f"rejected must be 'warm' or 'reprior', got '{rejected}'")
    if rejected == "reprior" and prior is None:
        raise ConfigError("rejected='reprior' needs a prior predictor")
    window = integer("window", window)
    if window < 0:
        raise ConfigError(f"window must be >= 0 (0 = score every position), got {window}")
    n, b, p0, noise, x = _setup(model, batch, context, noise, generator, device)
    name = method or "parallel"
    if p0 >= n:
        return SampleResult(x, torch.zeros(b, dtype=torch.long), 0, start=p0, method=name)
    with torch.inference_mode():
        x, calls, iters, q_calls, c_calls, acc = _parallel_loop(model, x, noise, p0, tol, prior, confidence,
                                                                threshold, rejected, compact, min(window, n))
        check_outputs(acc, x)
    # plain tensors again (inference tensors cannot enter autograd later, e.g. as training states)
    return SampleResult(x.clone(), calls.cpu().clone(), iters, q_calls, c_calls, start=p0, method=name)


def _parallel_loop(model, x, noise, p0, tol, prior, confidence, threshold, rejected, compact, window):
    """The loop of :func:`sample_parallel` (inside ``torch.inference_mode``).

    Per iteration and sample only tensor work: the mother call, the post-processed canvas, the
    change (shared by the exact rule and C), C on the ``window`` positions after the exact run and
    the new boundary; then one host sync, the number of unfinished samples. The output canvas and
    the call counts are written only when samples leave the batch (the rows still being sampled
    hold their state in the compacted batch until then).
    """
    fam = model.family
    b, n = x.shape
    dev = x.device
    calls = torch.zeros(b, dtype=torch.long, device=dev)
    q_calls = c_calls = iters = 0
    m = torch.full((b,), p0, dtype=torch.long, device=dev)
    pos = torch.arange(n, device=dev)[None, :]
    if prior is not None:
        x = prior.propose(x, m, noise)
        q_calls += 1
    z_min = _logit(threshold) if confidence is not None else math.inf
    code = fam.noise_code(noise) if confidence is not None else None
    band = torch.arange(window, device=dev)[None, :]
    score_band = getattr(confidence, "supports_index", False)
    rows = torch.arange(b, device=dev)  # rows of the full batch still being sampled
    active = b
    xa, ma, ua, ca = x, m, noise, code
    acc = param_tally(dev)  # not finite once some call returned NaN/inf parameters
    while True:
        if iters >= n - p0:
            # with finite parameters every call confirms >= 1 position per sample (the change in
            # front of the boundary is exactly 0 <= tol); NaN parameters compare false and stall
            check_outputs(acc, xa)
            raise RuntimeError("parallel sampler failed to make progress with finite model outputs (a bug)")
        params = model.conditionals(xa)
        tally(acc, params)
        iters += 1
        x_new = torch.where(pos >= ma[:, None], fam.sample(params, ua), xa)
        change, d = step_change(xa, x_new)
        ok = d <= tol  # exact (tol = 0) or tolerance rule; True on and before the boundary
        if confidence is None:
            j = ok.sum(1)  # D is non-decreasing in t: the accepted positions are a prefix
        elif window:
            # C can only extend the exact run: score the `window` positions after it, nothing else
            j0 = ok.sum(1)
            idx = (j0[:, None] + band).clamp_max_(n - 1)
            if score_band:
                z = confidence(xa, x_new, params, ma, code=ca, change=change, d=d, index=idx)
            else:
                z = confidence(xa, x_new, params, ma, code=ca, change=change, d=d).gather(1, idx)
            c_calls += 1
            j = (z >= z_min).to(torch.int32).cumprod_(1).sum(1).add_(j0).clamp_max_(n)
        else:
            z = confidence(xa, x_new, params, ma, code=ca, change=change, d=d)
            c_calls += 1
            j = ok.logical_or_(z >= z_min).to(torch.int32).cumprod_(1).sum(1)  # end of the run of kept positions
        if rejected == "reprior":
            x_new = prior.propose(x_new, j, ua)
            q_calls += 1
        if compact:
            keep = (j < n).nonzero()  # the one host sync per iteration
            left = keep.shape[0]
            if left < active:  # some samples are done: write the batch back, then drop them
                calls.index_fill_(0, rows, iters)
                x.index_copy_(0, rows, x_new)
                if left == 0:
                    break
                keep = keep.squeeze(1)
                rows, xa, ma, ua, active = rows[keep], x_new[keep], j[keep], ua[keep], left
                ca = ca[keep] if ca is not None else None
            else:
                xa, ma = x_new, j
        else:
            calls.masked_fill_(ma < n, iters)
            xa, ma = x_new, j
            if not bool((j < n).any()):  # the one host sync per iteration
                x = xa
                break
    return x, calls, iters, q_calls, c_calls, acc


def sample(model: ParallelAR, method: str = "sequential", *, batch: int | None = None,
           context: torch.Tensor | None = None, noise: torch.Tensor | None = None,
           generator: torch.Generator | None = None, tol: float = 0.0, prior: PriorPredictor | None = None,
           confidence: nn.Module | None = None, threshold: float = 0.9,
           rejected: Literal["warm", "reprior"] = "warm", compact: bool = True, window: int = 16,
           check_causal: bool = False,
           device: torch.device | str | None = None) -> SampleResult:
    """One entry point: ``method`` in ``sequential | jacobi | tolerance | nara``.

    ``jacobi`` ignores ``tol``/``confidence`` and is exact; ``tolerance`` needs ``tol > 0`` to
    differ from ``jacobi``; ``nara`` needs a ``confidence`` predictor and a ``threshold`` in
    (0, 1] (``prior`` optional but recommended). ``check_causal`` runs
    :func:`~reprozoo.nara.checks.check_causality` first (a few extra calls, not counted).
    """
    if method not in METHODS:
        raise ConfigError(f"unknown sampling method '{method}'; choose one of {', '.join(METHODS)}")
    check_model(model)
    if check_causal:
        check_causality(model, device=device if device is not None else _model_device(model))
    common = dict(batch=batch, context=context, noise=noise, generator=generator, device=device)
    if method == "sequential":
        return sample_sequential(model, **common)
    if method == "jacobi":
        return sample_parallel(model, prior=prior, compact=compact, method="jacobi", **common)
    if method == "tolerance":
        return sample_parallel(model, tol=tol, prior=prior, compact=compact, method="tolerance", **common)
    threshold = check_threshold(threshold)
    if confidence is None:
        raise ConfigError("method='nara' needs a trained confidence predictor (see reprozoo.nara.fit_confidence)")
    return sample_parallel(model, tol=tol, prior=prior, confidence=confidence, threshold=threshold,
                           rejected=rejected, compact=compact, window=window, method="nara", **common)
