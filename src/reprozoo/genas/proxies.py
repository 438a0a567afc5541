"""Proxies that rank sub-networks of a trained supernet, behind one interface:
``proxy.score(supernet, genotype, data) -> float`` (larger is better).

Every proxy except the angle and the random control first sets the genotype's path and
recalibrates BatchNorm on training batches; the supernet's parameters and buffers are restored
exactly afterwards, so scoring never changes the supernet. The default recalibration is the
official GeNAS one (``get_cand_acc`` / ``get_cand_wlm``): running statistics reset to 0 / 1, then
train-mode forwards with momentum 0.1 (:func:`proxy_data` adds the official 14 fresh shuffled
batches of 64 per candidate); SPOS's exact average is ``recal_mode="cumulative"``.

- :class:`Flatness` — GeNAS (Jeong et al., IJCAI 2023): add Gaussian noise of growing std to the
  weights, measure the held-out loss at each level, ``F = 1 / (S + 1e-5)`` with
  ``S = sum_i |L_i - L_{i-1}| / (sigma_i - sigma_{i-1})``. Defaults follow the official code:
  ``L_0 = 0`` (the "depth" term), cumulative noise (level i adds N(0, (sigma_i - sigma_{i-1})^2)
  on top of level i-1), one draw per level, noise on every parameter tensor, absolute std.
- :class:`ValAccuracy`, :class:`ValLoss` (score = -loss) — the supernet-accuracy baseline and
  the simplest "depth only" alternative.
- :class:`Angle` — RLNAS / ABS: the angle between the path's weight vector at initialisation
  and after training.
- :class:`Combined` — weighted sums (angle/pi + gamma * beta * F with beta = 1/sigma_1, ...).
- :class:`RandomScore` — a negative control, seeded per genotype.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import ConfigError, DataError
from reprozoo.genas.proxy_inputs import (  # noqa: F401  (re-exported)
    RECAL_PROTOCOLS,
    ProxyData,
    ShuffledRecal,
    candidate_seed,
    flip_crop,
    proxy_data,
)
from reprozoo.genas.supernet import recalibrate_bn, restore_snapshot, state_snapshot
from reprozoo.runtime.checks import finite

DEFAULT_SIGMAS = (0.001, 0.003, 0.006)
DEPTH_TERMS = ("zero", "unperturbed")
PERTURB = ("all", "path")


@torch.no_grad()
def evaluate(model: nn.Module, batches: Sequence) -> tuple[float, float]:
    """(mean over batches of the batch-mean cross-entropy, top-1 accuracy in [0, 1])."""
    losses, correct, total = [], 0, 0
    for x, y in batches:
        logits = model(x)
        losses.append(float(F.cross_entropy(logits, y)))
        correct += int((logits.argmax(1) == y).sum())
        total += int(y.numel())
    if total == 0:
        raise DataError("the validation set is empty; proxies need held-out images to score on")
    return sum(losses) / len(losses), correct / total


@contextmanager
def prepared(supernet: nn.Module, genotype: Any, data: ProxyData):
    """Set ``genotype``, recalibrate BN, eval mode; restore parameters, buffers, mode and path after."""
    snap = state_snapshot(supernet)
    before, was_training = getattr(supernet, "active", None), supernet.training
    try:
        supernet.set_genotype(genotype)
        recalibrate_bn(supernet, data.recal_batches(genotype), data.recal_mode, data.momentum)
        yield supernet
    finally:
        restore_snapshot(supernet, snap)
        if before is not None:
            supernet.set_genotype(before)
        supernet.train(was_training)


# ------------------------------------------------------------------------------ flatness
@dataclass
class FlatnessResult:
    losses: list[float]  # L_1..L_m (mean over draws)
    l0: float  # the depth term used (0 in the official form, else the unperturbed loss)
    sharpness: float
    score: float


def check_sigmas(sigmas: Sequence[float]) -> tuple[float, ...]:
    s = tuple(float(v) for v in sigmas)
    if not s:
        raise ConfigError("flatness needs at least one noise level, e.g. sigmas=(0.001, 0.003, 0.006)")
    if any(not math.isfinite(v) or v <= 0 for v in s):
        raise ConfigError(f"noise levels must be finite and > 0, got {list(s)}")
    if any(b <= a for a, b in zip(s, s[1:])):
        raise ConfigError(f"noise levels must be strictly increasing, got {list(s)}")
    return s


@torch.no_grad()
def flatness(model: nn.Module, batches: Sequence, sigmas: Sequence[float] = DEFAULT_SIGMAS, *,
             depth_term: str = "zero", cumulative: bool = True, draws: int = 1, perturb: str = "all",
             relative: bool = False, generator: torch.Generator | None = None) -> FlatnessResult:
    """GeNAS flatness of ``model`` as it stands (path set, BN recalibrated, eval mode).

    The perturbed weights are restored exactly from a clone of the perturbed tensors (no deep
    copy of the model). ``perturb="path"`` perturbs only the active path's parameters (needs
    ``model.path_parameters()``); ``relative`` scales each element's std by its magnitude."""
    sig = check_sigmas(sigmas)
    if depth_term not in DEPTH_TERMS:
        raise ConfigError(f"depth_term must be one of {', '.join(DEPTH_TERMS)}, got '{depth_term}'")
    if perturb not in PERTURB:
        raise ConfigError(f"perturb must be one of {', '.join(PERTURB)}, got '{perturb}'")
    if draws < 1:
        raise ConfigError(f"draws must be >= 1, got {draws}")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    params = [p for _, p in model.path_parameters()] if perturb == "path" else list(model.parameters())
    clean = [p.detach().clone() for p in params]
    l0 = evaluate(model, batches)[0] if depth_term == "unperturbed" else 0.0
    sums = [0.0] * len(sig)
    try:
        for _ in range(draws):
            prev = 0.0
            for i, s in enumerate(sig):
                std = (s - prev) if cumulative else s
                for p, c in zip(params, clean):
                    if not cumulative:
                        p.copy_(c)
                    noise = torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device)
                    p.add_(noise * (std * c.abs() if relative else std))
                sums[i] += evaluate(model, batches)[0]
                prev = s
            for p, c in zip(params, clean):
                p.copy_(c)
    finally:
        for p, c in zip(params, clean):
            p.copy_(c)
    losses = [v / draws for v in sums]
    sharp, prev_l, prev_s = 0.0, l0, 0.0
    for loss, s in zip(losses, sig):
        sharp += abs(loss - prev_l) / (s - prev_s)
        prev_l, prev_s = loss, s
    return FlatnessResult(losses, l0, sharp, 1.0 / (sharp + 1e-5))


# ------------------------------------------------------------------------------ the interface
class Proxy:
    """``score(supernet, genotype, data) -> float``, larger is better."""

    name = "proxy"
    needs_recal = True

    def score(self, supernet: nn.Module, genotype: Any, data: ProxyData) -> float:
        if not self.needs_recal:
            return float(self.score_prepared(supernet, genotype, data, {}))
        with prepared(supernet, genotype, data):
            return float(self.score_prepared(supernet, genotype, data, {}))

    def score_prepared(self, supernet: nn.Module, genotype: Any, data: ProxyData, cache: dict) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _eval_cached(supernet, data, cache) -> tuple[float, float]:
    if "eval" not in cache:
        cache["eval"] = evaluate(supernet, data.val)
    return cache["eval"]


class ValAccuracy(Proxy):
    name = "val_acc"

    def score_prepared(self, supernet, genotype, data, cache):
        return _eval_cached(supernet, data, cache)[1]


class ValLoss(Proxy):
    """Minus the held-out loss (the depth term of the official flatness formula on its own)."""

    name = "val_loss"

    def score_prepared(self, supernet, genotype, data, cache):
        return -_eval_cached(supernet, data, cache)[0]


class Flatness(Proxy):
    """The GeNAS flatness score; options as in :func:`flatness`, noise seeded per candidate."""

    def __init__(self, sigmas: Sequence[float] = DEFAULT_SIGMAS, *, depth_term: str = "zero",
                 cumulative: bool = True, draws: int = 1, perturb: str = "all", relative: bool = False,
                 seed: int = 0, name: str = "flatness"):
        self.sigmas = check_sigmas(sigmas)
        if depth_term not in DEPTH_TERMS:
            raise ConfigError(f"depth_term must be one of {', '.join(DEPTH_TERMS)}, got '{depth_term}'")
        if perturb not in PERTURB:
            raise ConfigError(f"perturb must be one of {', '.join(PERTURB)}, got '{perturb}'")
        if draws < 1:
            raise ConfigError(f"draws must be >= 1, got {draws}")
        self.depth_term, self.cumulative, self.draws = depth_term, cumulative, draws
        self.perturb, self.relative, self.seed, self.name = perturb, relative, seed, name

    def result(self, supernet, genotype, data, cache=None) -> FlatnessResult:
        cache = {} if cache is None else cache
        key = ("flatness", self.sigmas, self.depth_term, self.cumulative, self.draws, self.perturb, self.relative,
               self.seed)
        if key not in cache:
            gen = torch.Generator().manual_seed(candidate_seed(self.seed, genotype))
            cache[key] = flatness(supernet, data.val, self.sigmas, depth_term=self.depth_term,
                                  cumulative=self.cumulative, draws=self.draws, perturb=self.perturb,
                                  relative=self.relative, generator=gen)
        return cache[key]

    def score_prepared(self, supernet, genotype, data, cache):
        return self.result(supernet, genotype, data, cache).score


def pure_flatness(seed: int = 0, scale: float = 10.0, draws: int = 3) -> Flatness:
    """The "true flatness" variant: L_0 = the unperturbed loss, sigmas x ``scale``, several draws."""
    return Flatness(tuple(scale * s for s in DEFAULT_SIGMAS), depth_term="unperturbed", draws=draws, seed=seed,
                    name="pure_flatness")


class Angle(Proxy):
    """RLNAS angle between the path's weight vectors at initialisation and after training, on
    the NAS-Bench-201 and the DARTS supernets (their ``path_vector``). ``theta_init`` is the
    supernet's state dict before the first training step; ``path_kw`` go to ``path_vector``
    (DARTS: ``dil_gamma_twice``). Needs no BN recalibration."""

    name = "angle"
    needs_recal = False

    def __init__(self, theta_init: dict[str, torch.Tensor], **path_kw):
        self.theta_init, self.path_kw = theta_init, path_kw

    def score_prepared(self, supernet, genotype, data, cache):
        v0 = supernet.path_vector(genotype, self.theta_init, **self.path_kw)
        v1 = supernet.path_vector(genotype, supernet.state_dict(), **self.path_kw)
        cos = F.cosine_similarity(v0, v1, dim=0).clamp(-1.0, 1.0)
        return float(torch.arccos(cos))


class Combined(Proxy):
    """``sum_k weight_k * proxy_k`` (e.g. angle/pi + gamma/sigma_1 * F)."""

    def __init__(self, parts: Sequence[tuple[Proxy, float]], name: str):
        if not parts:
            raise ConfigError("a combined proxy needs at least one part")
        for p, w in parts:
            finite(f"the weight of {getattr(p, 'name', 'a part')} in {name}", w)
        self.parts, self.name = list(parts), name

    def score_prepared(self, supernet, genotype, data, cache):
        return sum(w * p.score_prepared(supernet, genotype, data, cache) for p, w in self.parts)


def angle_flatness(theta_init, flat: Flatness, gamma: float = 16.0) -> Combined:
    """angle/pi + gamma * beta * F with beta = 1/sigma_1 (gamma = 16 in the GeNAS README)."""
    return Combined([(Angle(theta_init), 1 / math.pi), (flat, gamma / flat.sigmas[0])], "angle+flatness")


def acc_flatness(flat: Flatness, gamma: float = 1.0) -> Combined:
    """acc + gamma * beta * F (the model zoo's gamma is not published; 1 by default)."""
    return Combined([(ValAccuracy(), 1.0), (flat, gamma / flat.sigmas[0])], "acc+flatness")


def angle_acc(theta_init, acc_weight: float = 1.0) -> Combined:
    return Combined([(Angle(theta_init), 1 / math.pi), (ValAccuracy(), acc_weight)], "angle+acc")


class RandomScore(Proxy):
    """Uniform noise in [0, 1), seeded by (seed, genotype): the negative control."""

    name = "random"
    needs_recal = False

    def __init__(self, seed: int = 0):
        self.seed = seed

    def score_prepared(self, supernet, genotype, data, cache):
        g = torch.Generator().manual_seed(candidate_seed(self.seed + 7919, genotype))
        return float(torch.rand((), generator=g))


def score_all(proxies: Sequence[Proxy], supernet: nn.Module, genotype: Any, data: ProxyData) -> dict[str, float]:
    """Every proxy on one genotype with one BN recalibration (shared evaluations are cached)."""
    cache: dict = {}
    out = {p.name: float(p.score_prepared(supernet, genotype, data, cache)) for p in proxies if not p.needs_recal}
    if any(p.needs_recal for p in proxies):
        with prepared(supernet, genotype, data):
            for p in proxies:
                if p.needs_recal:
                    out[p.name] = float(p.score_prepared(supernet, genotype, data, cache))
    return {p.name: out[p.name] for p in proxies}
