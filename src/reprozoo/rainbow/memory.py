"""Episodic-memory selection policies behind one interface, usable on any model and data.

A policy's ``select(x, y, capacity, model=..., classes=..., rng=...)`` returns the positions (into
``x``/``y``) of the samples to keep. :class:`EpisodicMemory` wraps a policy into a buffer of
sample keys (dataset indices) that is fed during the stream (``observe``; used by reservoir) and
rebuilt at the end of a task from old memory + the task's samples (``rebuild``).

Policies: ``rainbow`` (RM: perturbation-vote uncertainty, class-balanced quota, certain-to-uncertain
stride, random fill), ``random``, ``reservoir``, ``balanced`` (class-balanced random), ``herding``
(iCaRL prototype selection on L2-normalised features).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from reprozoo.errors import ConfigError, DataError, UnknownNameError
from reprozoo.rainbow.augment import DEFAULT_PERTURBATION, make_perturbation, perturbed_copies
from reprozoo.runtime.checks import finite_array, finite_tensor, integer, integer_labels

POLICY_NAMES = ("balanced", "herding", "rainbow", "random", "reservoir")


def check_capacity(capacity: int, n_classes: int) -> int:
    """Quota per class ``capacity // n_classes``; K below the class count is refused."""
    capacity, n_classes = integer("capacity", capacity), integer("n_classes", n_classes)
    if n_classes <= 0:
        raise ConfigError("a class-balanced memory needs at least one class")
    if capacity < n_classes:
        raise ConfigError(f"memory size K={capacity} is smaller than the number of classes ({n_classes}); "
                          f"a class-balanced memory needs one slot per class: use K >= {n_classes}")
    return capacity // n_classes


@torch.no_grad()
def vote_uncertainty(model: torch.nn.Module, x: torch.Tensor, perturb=None, n_votes: int = 12,
                     batch_size: int = 384, generator: torch.Generator | None = None) -> np.ndarray:
    """RM's uncertainty ``u = 1 - max_c S_c / T``: ``S_c`` counts how many of ``T = n_votes`` perturbed
    copies the model assigns to class ``c`` (argmax of the logits; the clean image does not vote).

    The model runs in eval mode without gradients; all copies of a chunk of samples go through
    one batched forward pass of about ``batch_size`` rows. Returns values in {0, 1/T, ..., (T-1)/T}.
    ``perturb`` defaults to the official experiment script's vote set ``vr_randaug``.
    """
    n_votes, batch_size = integer("n_votes", n_votes, lo=1), integer("batch_size", batch_size, lo=1)
    perturb = perturb if perturb is not None else make_perturbation()
    if hasattr(perturb, "check_votes"):
        perturb.check_votes(n_votes)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    chunk = max(1, batch_size // n_votes)
    out = np.empty(len(x), dtype=np.float64)
    try:
        for start in range(0, len(x), chunk):
            xb = x[start:start + chunk].to(device)
            copies = perturbed_copies(xb, n_votes, perturb, generator)
            logits = model(copies)
            if not bool(torch.isfinite(logits).all()):  # argmax would count NaN as a confident vote
                raise DataError("the model's logits are not finite on the perturbed copies (NaN or inf inputs or "
                                "diverged weights); the votes would be meaningless")
            pred = logits.argmax(1).view(n_votes, len(xb))
            n_out = int(pred.max()) + 1
            counts = torch.zeros(len(xb), n_out, device=device, dtype=torch.long)
            counts.scatter_add_(1, pred.t(), torch.ones_like(pred.t()))
            out[start:start + len(xb)] = (1.0 - counts.max(1).values.double() / n_votes).cpu().numpy()
    finally:
        model.train(was_training)
    return out


def fill_random(chosen: np.ndarray, n: int, capacity: int, rng: np.random.Generator) -> np.ndarray:
    """Top ``chosen`` up to ``capacity`` positions with random not-yet-chosen positions of ``range(n)``."""
    chosen = np.asarray(chosen, dtype=np.int64)
    need = min(capacity, n) - len(chosen)
    if need <= 0:
        return chosen
    rest = np.setdiff1d(np.arange(n), chosen)
    return np.concatenate([chosen, rng.choice(rest, need, replace=False)]).astype(np.int64)


def stride_pick(order: Sequence[int], k: int) -> np.ndarray:
    """The stride rule on one class already sorted certain -> uncertain: all of it if it has at most
    ``k`` entries, else entries ``0, j, 2j, ...`` with ``j = floor(n / k)``, the first ``k`` of them."""
    order = np.asarray(order, dtype=np.int64)
    k = integer("k", k, lo=1)
    if len(order) <= k:
        return order
    return order[:: len(order) // k][:k]


def stride_select(uncertainty: Sequence[float], labels: Sequence[int], capacity: int,
                  classes: Sequence[int], rng: np.random.Generator, order: Sequence[int] | None = None
                  ) -> np.ndarray:
    """RM's diversity-aware pick. Per class ``c`` (quota ``k = capacity // len(classes)``), in the order
    of ``classes``: if it has at most ``k`` candidates keep all (in candidate order), else shuffle,
    stable-sort by uncertainty (certain first) and apply :func:`stride_pick`. Unused slots are
    filled at random.

    Ties (u takes only T + 1 values, so most candidates tie) are broken uniformly at random by the
    shuffle, reproducibly from ``rng`` and identically on every platform. The official code sorts
    with pandas' default (numpy's unstable quicksort), whose order among equal values depends on the
    numpy version and the CPU's SIMD sort, so it cannot be reproduced; both pick the same multiset
    of uncertainties per class. ``order``: a given certain-to-uncertain order of all candidates (e.g.
    a recorded official one) used instead of sorting ``uncertainty``."""
    u, y = finite_array("uncertainty", uncertainty, ndim=1), integer_labels("labels", labels)
    if u.shape != y.shape:
        raise DataError(f"uncertainty has {u.size} entries but labels has {y.size}")
    k = check_capacity(capacity, len(classes))
    rank = None
    if order is not None:
        order = np.asarray(order, dtype=np.int64)
        if sorted(order.tolist()) != list(range(len(y))):
            raise ConfigError(f"order must list every candidate position 0..{len(y) - 1} once")
        rank = np.empty(len(y), dtype=np.int64)
        rank[order] = np.arange(len(y))
    chosen: list[np.ndarray] = []
    for c in classes:
        pos = np.flatnonzero(y == c)
        if len(pos) > k and rank is not None:
            pos = pos[np.argsort(rank[pos])]
        elif len(pos) > k:
            pos = rng.permutation(pos)
            pos = pos[np.argsort(u[pos], kind="stable")]
        chosen.append(stride_pick(pos, k))
    picked = np.concatenate(chosen) if chosen else np.empty(0, np.int64)
    return fill_random(picked, len(y), capacity, rng)


def balanced_random_select(labels: Sequence[int], capacity: int, classes: Sequence[int],
                           rng: np.random.Generator) -> np.ndarray:
    """``min(k, n_c)`` random samples per class, then random fill (GDumb's / RM's first-task memory)."""
    y = np.asarray(labels)
    k = check_capacity(capacity, len(classes))
    chosen = [rng.permutation(np.flatnonzero(y == c))[:k] for c in classes]
    picked = np.concatenate(chosen) if chosen else np.empty(0, np.int64)
    return fill_random(picked, len(y), capacity, rng)


class MemoryPolicy:
    """Base class. ``streaming`` policies are updated sample by sample during the stream."""

    name = "base"
    streaming = False
    needs_model = False

    def select(self, x: torch.Tensor | None, y: Sequence[int], capacity: int, *,
               model: torch.nn.Module | None = None, classes: Sequence[int] | None = None,
               rng: np.random.Generator | None = None, first_task: bool = False) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def _classes(y, classes):
        return np.unique(np.asarray(y)) if classes is None else np.asarray(classes)


class RandomPolicy(MemoryPolicy):
    """Keep ``capacity`` uniformly random candidates (no class balance)."""

    name = "random"

    def select(self, x, y, capacity, *, model=None, classes=None, rng=None, first_task=False):
        rng = rng or np.random.default_rng()
        n = len(y)
        return np.sort(rng.choice(n, min(capacity, n), replace=False)).astype(np.int64)


class BalancedRandomPolicy(MemoryPolicy):
    """Class-balanced random (quota ``K // |classes|`` per class, random fill)."""

    name = "balanced"

    def select(self, x, y, capacity, *, model=None, classes=None, rng=None, first_task=False):
        rng = rng or np.random.default_rng()
        return balanced_random_select(y, capacity, self._classes(y, classes), rng)


class ReservoirPolicy(MemoryPolicy):
    """Classic reservoir sampling over the stream (every sample seen so far is kept with equal
    probability ``K / n_seen``). As a one-shot ``select`` it runs reservoir over the candidates in order."""

    name = "reservoir"
    streaming = True

    def select(self, x, y, capacity, *, model=None, classes=None, rng=None, first_task=False):
        rng = rng or np.random.default_rng()
        buf: list[int] = []
        for i in range(len(y)):
            reservoir_step(buf, i, i + 1, capacity, rng)
        return np.asarray(buf, dtype=np.int64)


def reservoir_step(buf: list, item, n_seen: int, capacity: int, rng: np.random.Generator) -> None:
    """One reservoir update: ``n_seen`` counts ``item`` itself."""
    if len(buf) < capacity:
        buf.append(item)
        return
    j = int(rng.integers(n_seen))
    if j < capacity:
        buf[j] = item


class RainbowPolicy(MemoryPolicy):
    """Rainbow Memory: score candidates by perturbation-vote uncertainty with the current model, then
    :func:`stride_select` per class. Without a model (first task) it falls back to class-balanced random.

    After each call, ``last_uncertainty_`` holds the candidates' scores (``None`` if not scored).
    """

    name = "rainbow"
    needs_model = True

    def __init__(self, perturbation: str | Callable = DEFAULT_PERTURBATION, n_votes: int = 12,
                 batch_size: int = 384, **perturb_kw):
        self.perturb = make_perturbation(perturbation, **perturb_kw) if isinstance(perturbation, str) \
            else perturbation
        if hasattr(self.perturb, "check_votes"):
            self.perturb.check_votes(n_votes)
        self.n_votes, self.batch_size = n_votes, batch_size
        self.last_uncertainty_: np.ndarray | None = None

    def score(self, model, x, rng: np.random.Generator | None = None) -> np.ndarray:
        gen = torch.Generator().manual_seed(int((rng or np.random.default_rng()).integers(2**62)))
        return vote_uncertainty(model, x, self.perturb, self.n_votes, self.batch_size, gen)

    def select(self, x, y, capacity, *, model=None, classes=None, rng=None, first_task=False):
        rng = rng or np.random.default_rng()
        cls = self._classes(y, classes)
        if first_task or model is None:
            self.last_uncertainty_ = None
            return balanced_random_select(y, capacity, cls, rng)
        self.last_uncertainty_ = self.score(model, x, rng)
        return stride_select(self.last_uncertainty_, y, capacity, cls, rng)


class HerdingPolicy(MemoryPolicy):
    """iCaRL herding per class on L2-normalised features (``feature_fn(x)``; default the model's
    ``forward_features``): greedily add the sample that keeps the running mean closest to the class
    mean. Quota ``K // |classes|``, random fill. (The class mean is recomputed at every update.)"""

    name = "herding"
    needs_model = True

    def __init__(self, feature_fn: Callable | None = None, batch_size: int = 256):
        self.feature_fn, self.batch_size = feature_fn, batch_size

    @torch.no_grad()
    def features(self, model, x) -> torch.Tensor:
        fn = self.feature_fn or getattr(model, "forward_features", model)
        was = model.training
        model.eval()
        dev = next(model.parameters()).device
        try:
            feats = torch.cat([fn(x[i:i + self.batch_size].to(dev)).flatten(1).cpu()
                               for i in range(0, len(x), self.batch_size)])
        finally:
            model.train(was)
        return torch.nn.functional.normalize(feats.double(), dim=1)

    def select(self, x, y, capacity, *, model=None, classes=None, rng=None, first_task=False):
        rng = rng or np.random.default_rng()
        cls = self._classes(y, classes)
        if model is None:
            return balanced_random_select(y, capacity, cls, rng)
        k = check_capacity(capacity, len(cls))
        feats = self.features(model, x)
        y = np.asarray(y)
        chosen = []
        for c in cls:
            pos = np.flatnonzero(y == c)
            chosen.append(pos[herding_order(feats[pos], min(k, len(pos)))])
        picked = np.concatenate(chosen) if chosen else np.empty(0, np.int64)
        return fill_random(picked, len(y), capacity, rng)


def herding_order(feats: torch.Tensor, m: int) -> np.ndarray:
    """Indices of ``m`` rows of ``feats`` picked by herding (distinct rows, closest running mean)."""
    finite_tensor("feats", feats)
    m = integer("m", m, lo=0, hi=len(feats))
    mu = feats.mean(0)
    total = torch.zeros_like(mu)
    taken = torch.zeros(len(feats), dtype=torch.bool)
    order = []
    for j in range(1, m + 1):
        dist = ((mu[None] - (total[None] + feats) / j) ** 2).sum(1)
        dist[taken] = float("inf")
        i = int(dist.argmin())
        order.append(i)
        taken[i] = True
        total += feats[i]
    return np.asarray(order, dtype=np.int64)


def make_policy(name: str, **kw) -> MemoryPolicy:
    """``rainbow`` | ``random`` | ``reservoir`` | ``balanced`` | ``herding`` (keyword args go to the policy)."""
    table = {"rainbow": RainbowPolicy, "random": RandomPolicy, "reservoir": ReservoirPolicy,
             "balanced": BalancedRandomPolicy, "herding": HerdingPolicy}
    if name not in table:
        raise UnknownNameError(f"unknown memory policy '{name}'; choose one of: {', '.join(POLICY_NAMES)}")
    return table[name](**kw)


class EpisodicMemory:
    """A fixed-size buffer of sample keys (e.g. dataset indices) driven by a :class:`MemoryPolicy`.

    ``observe(keys, labels)`` during the stream (reservoir updates here); ``rebuild(...)`` at the end
    of a task chooses from old memory + the task's samples (non-streaming policies).
    """

    def __init__(self, policy: MemoryPolicy | str, capacity: int, num_classes: int | None = None):
        self.policy = make_policy(policy) if isinstance(policy, str) else policy
        if capacity < 0:
            raise ConfigError(f"memory size must be >= 0, got {capacity}")
        if num_classes is not None and capacity > 0:
            check_capacity(capacity, num_classes)
        self.capacity = capacity
        self.keys = np.empty(0, dtype=np.int64)
        self.labels = np.empty(0, dtype=np.int64)
        self.n_seen = 0
        self.last_candidates_: dict | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def observe(self, keys: Sequence[int], labels: Sequence[int], rng: np.random.Generator) -> None:
        if not self.policy.streaming or self.capacity == 0:
            return
        buf = list(zip(self.keys.tolist(), self.labels.tolist()))
        for item in zip(np.asarray(keys).tolist(), np.asarray(labels).tolist()):
            self.n_seen += 1
            reservoir_step(buf, item, self.n_seen, self.capacity, rng)
        self.keys = np.asarray([k for k, _ in buf], dtype=np.int64)
        self.labels = np.asarray([c for _, c in buf], dtype=np.int64)

    def rebuild(self, keys: Sequence[int], labels: Sequence[int], rng: np.random.Generator, *,
                fetch: Callable[[np.ndarray], torch.Tensor] | None = None, model=None,
                classes: Sequence[int] | None = None, first_task: bool = False) -> None:
        """Choose the new memory from old memory + ``keys`` (``fetch(keys) -> x`` loads their inputs)."""
        if self.policy.streaming or self.capacity == 0:
            return
        cand = np.concatenate([self.keys, np.asarray(keys, dtype=np.int64)])
        cand_y = np.concatenate([self.labels, np.asarray(labels, dtype=np.int64)])
        if len(cand) <= self.capacity:
            self.keys, self.labels = cand, cand_y
            self.last_candidates_ = None
            return
        x = fetch(cand) if (fetch is not None and self.policy.needs_model and model is not None) else None
        pos = self.policy.select(x, cand_y, self.capacity, model=model if x is not None else None,
                                 classes=classes, rng=rng, first_task=first_task)
        u = getattr(self.policy, "last_uncertainty_", None)
        self.last_candidates_ = {"keys": cand, "labels": cand_y, "chosen": pos,
                                 "uncertainty": None if u is None or x is None else u}
        self.keys, self.labels = cand[pos], cand_y[pos]
