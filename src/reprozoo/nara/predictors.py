"""NARA's two helper networks: the prior-sample predictor Q and the confidence predictor C.

Both see the canvas only through the confirmed-prefix mask ``M_t = 1[t < m]`` (``m`` is the
per-sample number of confirmed positions), so nothing from positions ``>= m`` leaks into Q.

Two confidence predictors share one call signature
``C(x_prev, x_new, params, m, code=..., change=..., d=...) -> (B, N) logits``:

* :class:`LocalConfidence` (default): one small network applied to every position on cheap local
  evidence (the conditional's features, how far the fixed noise is from flipping the value, the
  position's own change, the change of its context over the whole prefix and over the last
  1..16 positions). Its cost is a small fraction of one mother call, so saved calls become saved time.
* :class:`ConfidencePredictor` (``kind="global"``): one MLP over the whole canvas
  ``concat(x_prev, x_new, features, M, D, 1[D > 0])``; sees every position at once but costs
  about as much as a MADE call.

``change`` and ``d`` are computed once per sampler iteration by :func:`step_change` and passed
in, so C never repeats the sampler's work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import ConfigError
from reprozoo.nara.protocol import Family


def prefix_mask(m: torch.Tensor, length: int) -> torch.Tensor:
    """``(B,)`` prefix lengths -> ``(B, N)`` float mask, 1 on confirmed positions ``t < m``."""
    return (torch.arange(length, device=m.device)[None, :] < m[:, None]).float()


def step_change(x_prev: torch.Tensor, x_new: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``change_t = |x_new_t - x_prev_t|`` and ``D_t = sum_{s < t} change_s`` (how much the context in
    front of ``t`` moved in the last parallel call). The samplers never touch confirmed positions,
    so both are exactly 0 in front of the boundary; ``D`` is an exclusive cumulative sum, exactly 0
    until the first change (no ``cumsum - change`` rounding)."""
    change = (x_new - x_prev).abs()
    d = F.pad(change.cumsum(1)[:, :-1], (1, 0))
    return change, d


def context_change(x_prev: torch.Tensor, x_new: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``D_t = sum_{m <= s < t} |x_new_s - x_prev_s|`` for canvases that may differ before ``m``."""
    fut = 1.0 - prefix_mask(m, x_prev.shape[1])
    return step_change(x_prev * fut, x_new * fut)[1]


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class PriorPredictor(nn.Module):
    """Q: ``concat(x * M, M)`` -> parameters of every position, independent across positions
    (the i.i.d. prior assumption). Only positions ``>= m`` are used."""

    def __init__(self, length: int, family: Family, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.length, self.family = length, family
        self.net = mlp([2 * length, *hidden, length * family.param_size])

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        mask = prefix_mask(m, self.length)
        out = self.net(torch.cat([x * mask, mask], dim=1))
        return out.view(x.shape[0], self.length, self.family.param_size)

    @torch.no_grad()
    def propose(self, x: torch.Tensor, m: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Fill positions ``>= m`` with prior draws (given ``noise``); keep the prefix."""
        draw = self.family.sample(self(x, m), noise)
        keep = torch.arange(self.length, device=x.device)[None, :] < m[:, None]
        return torch.where(keep, x, draw)


def _changes(x_prev, x_new, change, d):
    if change is None or d is None:
        change, d = step_change(x_prev, x_new)
    return change, d


class ConfidencePredictor(nn.Module):
    """Global C: per position, the logit of "the post-processed value already equals the sequential
    sample". Input ``concat(x_prev, x_new, features(params), M, D, 1[D > 0])`` over all positions."""

    kind = "global"

    def __init__(self, length: int, family: Family, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.length, self.family = length, family
        width = length * (5 + family.feature_size)
        self.net = mlp([width, *hidden, length])

    def forward(self, x_prev: torch.Tensor, x_new: torch.Tensor, params: torch.Tensor, m: torch.Tensor,
                code: torch.Tensor | None = None, change: torch.Tensor | None = None,
                d: torch.Tensor | None = None) -> torch.Tensor:
        b = x_prev.shape[0]
        change, d = _changes(x_prev, x_new, change, d)
        mask = prefix_mask(m, self.length)
        feats = self.family.features(params).reshape(b, -1)
        inp = torch.cat([x_prev, x_new, feats, mask, d, (d > 0).to(d.dtype)], dim=1)
        return self.net(inp)


class LocalConfidence(nn.Module):
    """Per-position C: the same small MLP scores every position from ``K`` local numbers:

    the family's features of ``params_t`` (probability; or mu, log sigma), the noise margin
    (Bernoulli: ``logit(u_t) - logit_t``; categorical: distance of ``u_t`` to the nearest class
    boundary), ``log1p`` of the position's own change, of the context change ``D_t`` and of the
    change over the last ``window`` positions, and ``(t - m) / N``. Changes are divided by the
    conditional's scale for continuous families.
    """

    kind = "local"

    def __init__(self, length: int, family: Family, hidden: tuple[int, ...] = (16,), window: int = 4):
        super().__init__()
        if window < 1:
            raise ConfigError(f"the confidence window must be >= 1 position, got {window}")
        self.length, self.family, self.window = length, family, int(window)
        self.margin_size = family.margin(torch.zeros(1, family.param_size), torch.zeros(1)).shape[-1]
        self.n_inputs = family.feature_size + self.margin_size + 4
        self.net = mlp([self.n_inputs, *hidden, 1])
        # t / N for t = 0..N (the boundary m may equal N); the same numbers as ``t.float() / N``
        self.register_buffer("_pos1", torch.arange(length + 1, dtype=torch.float32) / length, persistent=False)

    supports_index = True  # can score a band of positions only (see ``index``)

    @property
    def _pos(self) -> torch.Tensor:
        return self._pos1[: self.length]

    def inputs(self, x_prev, x_new, params, m, code=None, change=None, d=None, index=None) -> torch.Tensor:
        """``(B, N, K)`` (or ``(B, W, K)`` for the positions in ``index``, ``(B, W)``): features(params),
        margin, log1p of (own change, D_t, change over the last ``window`` positions) in units of the
        conditional's scale, and ``(t - m) / N``."""
        change, d = _changes(x_prev, x_new, change, d)
        fam = self.family
        if self.margin_size and code is None:
            raise ConfigError("this confidence predictor needs the noise code: pass code=family.noise_code(noise)")
        shifted = F.pad(d, (self.window, 0))[:, : self.length]  # D_{t - window}, 0 before the start
        if index is None:
            pos = self._pos[None, :]
        else:  # only the positions the acceptance rule will look at, picked with ONE gather
            p = params.shape[-1]
            cols = [params, change.unsqueeze(-1), d.unsqueeze(-1), shifted.unsqueeze(-1)]
            if code is not None:
                cols.append(code.unsqueeze(-1))
            packed = torch.cat(cols, dim=-1)
            picked = packed.gather(1, index.unsqueeze(-1).expand(-1, -1, packed.shape[-1]))
            params, change, d, shifted = picked[..., :p], picked[..., p], picked[..., p + 1], picked[..., p + 2]
            code = picked[..., p + 3] if code is not None else None
            pos = self._pos[index]  # = index / N
        cols = [fam.features(params)]
        if self.margin_size:
            cols.append(fam.margin(params, code))
        per = torch.stack([change, d, d - shifted], dim=-1)  # own change, D_t, change over the last `window`
        scale = fam.change_scale(params)
        if scale is not None:
            per = per / scale.unsqueeze(-1)
        cols.append(torch.log1p(per))
        cols.append((pos - self._pos1[m][:, None]).unsqueeze(-1))  # (t - m) / N
        return torch.cat(cols, dim=-1)

    def forward(self, x_prev, x_new, params, m, code=None, change=None, d=None, index=None) -> torch.Tensor:
        """Logits ``(B, N)``, or ``(B, W)`` for the positions in ``index``."""
        h = self.inputs(x_prev, x_new, params, m, code, change, d, index)
        if self.training:
            return self.net(h).squeeze(-1)
        # inference: the same layers as ``self.net`` without the module-call overhead per layer
        # (this runs once per sampler iteration; the numbers are those of ``self.net(h)``)
        layers = [layer for layer in self.net if isinstance(layer, nn.Linear)]
        for layer in layers[:-1]:
            h = F.relu(F.linear(h, layer.weight, layer.bias))
        return F.linear(h, layers[-1].weight, layers[-1].bias).squeeze(-1)


def make_confidence(kind: str, length: int, family: Family, hidden: tuple[int, ...]) -> nn.Module:
    """``kind``: ``local`` (:class:`LocalConfidence`) or ``global`` (:class:`ConfidencePredictor`)."""
    if kind == "local":
        return LocalConfidence(length, family, tuple(hidden))
    if kind == "global":
        return ConfidencePredictor(length, family, tuple(hidden))
    raise ConfigError(f"confidence kind must be 'local' or 'global', got '{kind}'")
