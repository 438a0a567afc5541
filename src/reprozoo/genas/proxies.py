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
import zlib
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import ConfigError, DataError
from reprozoo.genas.supernet import RECAL_MODES, recalibrate_bn, restore_snapshot, state_snapshot

DEFAULT_SIGMAS = (0.001, 0.003, 0.006)
DEPTH_TERMS = ("zero", "unperturbed")
PERTURB = ("all", "path")


@dataclass
class ShuffledRecal:
    """Fresh shuffled BN-recalibration batches for every candidate, as the official code does
    (a new iterator over a shuffled training loader per candidate): ``ceil(images / batch_size)``
    full batches of a random permutation of ``(x, y)``, seeded by ``(seed, genotype)`` so a
    genotype gets the same batches in every run. When the training set is smaller than the
    batches need, further permutations follow (images repeat, as epochs of a loader would).
    ``transform(x, generator)`` (e.g. :func:`flip_crop`) augments each batch."""

    x: torch.Tensor
    y: torch.Tensor
    images: int = 850
    batch_size: int = 64
    seed: int = 0
    transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None

    def __post_init__(self):
        if len(self.x) == 0 or len(self.x) != len(self.y):
            raise DataError(f"recalibration images and labels must be non-empty and equally many, got "
                            f"{len(self.x)} and {len(self.y)}")
        if self.images < 1 or self.batch_size < 1:
            raise ConfigError(f"recalibration images and batch_size must be >= 1, got {self.images}, "
                              f"{self.batch_size}")

    def __len__(self) -> int:
        return math.ceil(self.images / self.batch_size)

    def batches(self, genotype: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(candidate_seed(self.seed, f"recal|{genotype}"))
        need = len(self) * self.batch_size
        idx = torch.cat([torch.randperm(len(self.x), generator=gen)
                         for _ in range(math.ceil(need / len(self.x)))])[:need]
        out = []
        for i in range(0, need, self.batch_size):
            j = idx[i:i + self.batch_size]
            x = self.x[j] if self.transform is None else self.transform(self.x[j], gen)
            out.append((x, self.y[j]))
        return out


def flip_crop(padding: int = 4) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """The official CIFAR training augmentation on a batch: random horizontal flip, then a
    random crop of the original size from the image zero-padded by ``padding`` (per image)."""
    def apply(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        flip = torch.rand(n, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        padded = F.pad(x, (padding,) * 4)
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=gen)
        return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    return apply


@dataclass
class ProxyData:
    """What proxies score on: training batches for BN recalibration and held-out batches.

    ``recal`` is a list of ``(x, y)`` batches used in order for every candidate, or a
    :class:`ShuffledRecal` that draws fresh batches per candidate; ``val`` is a list of batches.
    The default recalibration is the official one: momentum 0.1 from the reset statistics
    (``recal_mode="cumulative"`` is the exact average of SPOS). :func:`proxy_data` builds the
    official protocol (14 shuffled batches of 64) or the SPOS one from two datasets."""

    recal: list | ShuffledRecal = field(default_factory=list)
    val: list = field(default_factory=list)
    recal_mode: str = "momentum"  # momentum (official, 0.1) | cumulative
    momentum: float = 0.1

    def __post_init__(self):
        if not self.val or sum(len(b[1]) for b in self.val) == 0:
            raise DataError("the validation set is empty; proxies need held-out images to score on")
        if not isinstance(self.recal, ShuffledRecal) and not self.recal:
            raise DataError("no training batches for BN recalibration; give at least one")
        if self.recal_mode not in RECAL_MODES:
            raise ConfigError(f"recal_mode must be one of {', '.join(RECAL_MODES)}, got '{self.recal_mode}'")

    def recal_batches(self, genotype: Any) -> list:
        return self.recal.batches(genotype) if isinstance(self.recal, ShuffledRecal) else list(self.recal)


RECAL_PROTOCOLS = ("official", "spos")


def _as_tensors(data) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) for t in data):
        return data[0], data[1]
    if len(data) == 0:
        raise DataError("the dataset is empty")
    xs, ys = zip(*(data[i] for i in range(len(data))))
    return torch.stack(list(xs)), torch.as_tensor([int(t) for t in ys])


def proxy_data(train, val, *, protocol: str = "official", recal_images: int = 850, batch_size: int = 64,
               val_batch_size: int = 64, seed: int = 0,
               transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None) -> ProxyData:
    """:class:`ProxyData` from a training and a held-out set (datasets of ``(x, y)`` or ``(x, y)``
    tensor pairs).

    ``protocol="official"`` (the GeNAS code, ``get_cand_acc`` / ``get_cand_wlm``): per candidate
    ``ceil(recal_images / batch_size)`` = 14 fresh shuffled batches of 64 (``recal_images=850``),
    momentum 0.1 after resetting the statistics (0.9**14 = 23% of the reset values remain);
    ``transform`` is the augmentation (the official CIFAR runs use :func:`flip_crop`).
    ``protocol="spos"``: the first ``recal_images`` training images in order, the same batches for
    every candidate, the exact (cumulative) average. Held-out batches of ``val_batch_size`` (the
    official search passes 64)."""
    if protocol not in RECAL_PROTOCOLS:
        raise ConfigError(f"protocol must be one of {', '.join(RECAL_PROTOCOLS)}, got '{protocol}'")
    if recal_images < 1 or batch_size < 1 or val_batch_size < 1:
        raise ConfigError(f"recal_images, batch_size and val_batch_size must be >= 1, got {recal_images}, "
                          f"{batch_size}, {val_batch_size}")
    tx, ty = _as_tensors(train)
    vx, vy = _as_tensors(val)
    vb = [(vx[i:i + val_batch_size], vy[i:i + val_batch_size]) for i in range(0, len(vx), val_batch_size)]
    if protocol == "official":
        return ProxyData(ShuffledRecal(tx, ty, recal_images, batch_size, seed, transform), vb)
    n = min(recal_images, len(tx))
    rb = [(tx[i:min(i + batch_size, n)], ty[i:min(i + batch_size, n)]) for i in range(0, n, batch_size)]
    return ProxyData(rb, vb, recal_mode="cumulative")


def candidate_seed(seed: int, genotype: Any) -> int:
    """A per-candidate seed: the same genotype gets the same noise in every run."""
    return zlib.crc32(f"{int(seed)}|{genotype}".encode())


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
