"""Frozen, unoptimised copies of the parallel sampling loop and of the local confidence predictor's
scoring as they were before the wall-clock work. The tests compare the library's samplers with
these bit for bit: speed work must not change a single sample, call count or iteration count."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from reprozoo.nara.predictors import LocalConfidence, step_change
from reprozoo.nara.samplers import SampleResult, _setup


def reference_local_logits(conf: LocalConfidence, x_prev, x_new, params, m, code=None, change=None, d=None,
                           index=None):
    """LocalConfidence's logits computed the original way (full-width ``near``, one gather per input)."""
    if change is None or d is None:
        change, d = step_change(x_prev, x_new)
    fam = conf.family
    near = d - F.pad(d, (conf.window, 0))[:, : conf.length]
    pos = conf._pos[None, :]
    if index is not None:
        change, d, near = change.gather(1, index), d.gather(1, index), near.gather(1, index)
        params = params.gather(1, index.unsqueeze(-1).expand(-1, -1, params.shape[-1]))
        code = code.gather(1, index) if code is not None else None
        pos = index.to(conf._pos.dtype) / conf.length
    cols = [fam.features(params)]
    if conf.margin_size:
        cols.append(fam.margin(params, code))
    per = torch.stack([change, d, near], dim=-1)
    scale = fam.change_scale(params)
    if scale is not None:
        per = per / scale.unsqueeze(-1)
    cols.append(torch.log1p(per))
    cols.append((pos - m[:, None].to(conf._pos.dtype) / conf.length).unsqueeze(-1))
    return conf.net(torch.cat(cols, dim=-1)).squeeze(-1)


def _score(confidence, xa, x_new, params, ma, ca, change, d, idx=None):
    if isinstance(confidence, LocalConfidence):
        return reference_local_logits(confidence, xa, x_new, params, ma, code=ca, change=change, d=d, index=idx)
    z = confidence(xa, x_new, params, ma, code=ca, change=change, d=d)
    return z if idx is None else z.gather(1, idx)


@torch.no_grad()
def reference_parallel(model, *, batch=None, context=None, noise=None, generator=None, tol=0.0, prior=None,
                       confidence=None, threshold=0.9, rejected="warm", compact=True, window=16, device=None):
    """The parallel loop before the wall-clock work (same arguments as ``sample_parallel``)."""
    n, b, p0, noise, x = _setup(model, batch, context, noise, generator, device)
    fam = model.family
    dev = x.device
    calls = torch.zeros(b, dtype=torch.long, device=dev)
    q_calls = c_calls = iters = 0
    if p0 >= n:
        return SampleResult(x, calls.cpu(), 0, start=p0)
    m = torch.full((b,), p0, dtype=torch.long, device=dev)
    pos = torch.arange(n, device=dev)[None, :]
    if prior is not None:
        x = prior.propose(x, m, noise)
        q_calls += 1
    z_min = (math.inf if threshold >= 1.0 else math.log(threshold / (1.0 - threshold))) \
        if confidence is not None else math.inf
    code = fam.noise_code(noise) if confidence is not None else None
    window = min(int(window), n) if window else 0
    band = torch.arange(window, device=dev)[None, :]
    rows = torch.arange(b, device=dev)
    xa, ma, ua, ca = x, m, noise, code
    while True:
        params = model.conditionals(xa)
        iters += 1
        x_new = torch.where(pos >= ma[:, None], fam.sample(params, ua), xa)
        change, d = step_change(xa, x_new)
        ok = d <= tol
        if confidence is None:
            j = ok.sum(1)
        elif window:
            j0 = ok.sum(1)
            idx = (j0[:, None] + band).clamp_max(n - 1)
            z = _score(confidence, xa, x_new, params, ma, ca, change, d, idx)
            c_calls += 1
            ext = (z >= z_min).to(torch.int32).cumprod(1).sum(1)
            j = torch.minimum(j0 + ext, torch.full_like(j0, n))
        else:
            z = _score(confidence, xa, x_new, params, ma, ca, change, d)
            c_calls += 1
            j = (ok | (z >= z_min)).to(torch.int32).cumprod(1).sum(1)
        j = j.to(ma.dtype)
        if rejected == "reprior":
            x_new = prior.propose(x_new, j, ua)
            q_calls += 1
        calls.index_fill_(0, rows, iters) if compact else calls.masked_fill_(ma < n, iters)
        if compact:
            x.index_copy_(0, rows, x_new)
            keep = (j < n).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            if keep.numel() < rows.numel():
                rows, xa, ma, ua = rows[keep], x_new[keep], j[keep], ua[keep]
                ca = ca[keep] if ca is not None else None
            else:
                xa, ma = x_new, j
        else:
            xa, ma = x_new, j
            if not bool((j < n).any()):
                x = xa
                break
    return SampleResult(x, calls.cpu(), iters, q_calls, c_calls, start=p0)
