"""Bucket-balanced, uncertainty-guided sampling of training frames.

Every training batch holds ``n_per_bucket`` frames from each (source domain, class) bucket, as in
FLIP's loader (the same number of live and spoof images from every source). Inside a bucket,
frame ``i`` is drawn with probability

    pi_i = (1 - eta) / n_bucket + eta * (u_i + eps)^gamma / sum_bucket (u + eps)^gamma,

capped at ``cap / n_bucket`` (then renormalised), where ``u_i`` is the model's predictive
uncertainty from the last :meth:`UncertaintySampler.refresh` (MC-dropout passes over at most
``subset`` frames; frames outside the subset get their bucket's mean uncertainty). Mixing with the
uniform share and capping keep broken or mislabelled frames from taking over. ``eta = 0`` is plain
bucket-balanced uniform sampling. ``mode="loss_weight"`` samples uniformly and returns per-frame
loss weights proportional to ``pi_i * n_bucket`` instead.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from reprozoo.errors import ConfigError, DataError
from reprozoo.runtime.checks import finite, finite_array, integer

MODES = ("sample", "loss_weight")


class UncertaintySampler:
    def __init__(self, domains, labels, n_per_bucket: int = 8, *, eta: float = 0.5, gamma: float = 1.0,
                 eps: float = 1e-4, cap: float = 10.0, subset: int = 5000, mode: str = "sample"):
        d, y = np.asarray(domains), np.asarray(labels)
        if d.shape != y.shape or d.ndim != 1 or d.size == 0:
            raise DataError("domains and labels must be non-empty 1-D arrays of the same length")
        if n_per_bucket < 1:
            raise ConfigError(f"n_per_bucket must be >= 1, got {n_per_bucket}")
        if not 0.0 <= eta <= 1.0:
            raise ConfigError(f"eta must be in [0, 1], got {eta}")
        gamma, cap = finite("gamma", gamma, lo=0.0), finite("cap", cap, lo=1.0)
        eps, subset = finite("eps", eps, lo=0.0, lo_open=True), integer("subset", subset, lo=1)
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got '{mode}'")
        self.n_per_bucket, self.eta, self.gamma, self.eps, self.cap = n_per_bucket, eta, gamma, eps, cap
        self.subset, self.mode = subset, mode
        self.buckets: dict[tuple[int, int], np.ndarray] = {}
        for key in sorted({(int(a), int(b)) for a, b in zip(d, y)}):
            self.buckets[key] = np.flatnonzero((d == key[0]) & (y == key[1]))
        missing = [(dom, c) for dom in np.unique(d) for c in (0, 1) if (int(dom), c) not in self.buckets]
        if missing:
            raise DataError(f"source domain {missing[0][0]} has no {'live' if missing[0][1] else 'spoof'} "
                            "frames; every source domain needs both classes")
        self.n = d.size
        self.u = np.zeros(self.n)
        self.pi = {k: np.full(v.size, 1.0 / v.size) for k, v in self.buckets.items()}

    @property
    def batch_size(self) -> int:
        return self.n_per_bucket * len(self.buckets)

    def set_uncertainty(self, u, indices=None) -> None:
        """Store uncertainties (for ``indices``, or all frames) and recompute the bucket weights."""
        u = np.asarray(u, dtype=np.float64)
        idx = np.arange(self.n) if indices is None else np.asarray(indices)
        if u.shape != idx.shape or not np.isfinite(u).all() or (u < 0).any():
            raise DataError("uncertainties must be finite, >= 0, one per index")
        known = np.zeros(self.n, dtype=bool)
        known[idx] = True
        self.u[idx] = u
        for key, members in self.buckets.items():
            vals = self.u[members].copy()
            seen = known[members]
            if seen.any() and not seen.all():
                vals[~seen] = vals[seen].mean()
            self.pi[key] = bucket_weights(vals, self.eta, self.gamma, self.eps, self.cap)

    def refresh(self, score_fn: Callable[[np.ndarray], np.ndarray], generator: torch.Generator) -> np.ndarray:
        """Score a random subset (at most ``subset`` frames, stratified by bucket) with
        ``score_fn(indices) -> uncertainties`` and update the weights; returns the indices."""
        share = min(1.0, self.subset / self.n)
        idx = []
        for members in self.buckets.values():
            k = max(1, int(round(share * members.size)))
            perm = torch.randperm(members.size, generator=generator)[:k].numpy()
            idx.append(members[perm])
        indices = np.sort(np.concatenate(idx))
        self.set_uncertainty(score_fn(indices), indices)
        return indices

    def sample(self, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One batch: ``(indices, loss_weights)``, ``n_per_bucket`` frames from every bucket."""
        out, weights = [], []
        for key, members in self.buckets.items():
            pi = self.pi[key]
            if self.mode == "sample":
                p = torch.from_numpy(pi)
                pick = torch.multinomial(p, self.n_per_bucket, replacement=True, generator=generator).numpy()
                w = np.ones(self.n_per_bucket)
            else:
                pick = torch.randint(0, members.size, (self.n_per_bucket,), generator=generator).numpy()
                w = pi[pick] * members.size
            out.append(members[pick])
            weights.append(w)
        return np.concatenate(out), np.concatenate(weights)


def bucket_weights(u, eta: float = 0.5, gamma: float = 1.0, eps: float = 1e-4, cap: float = 10.0) -> np.ndarray:
    """The mixed uniform/uncertainty sampling distribution of one bucket, capped at ``cap / n``."""
    u = finite_array("uncertainties", u, ndim=1, allow_empty=False)
    if (u < 0).any():
        raise DataError(f"uncertainties must be >= 0; index {int(np.argmin(u))} is {float(u.min())}")
    eta, gamma = finite("eta", eta, lo=0.0, hi=1.0), finite("gamma", gamma, lo=0.0)
    eps, cap = finite("eps", eps, lo=0.0, lo_open=True), finite("cap", cap, lo=1.0)
    n = u.size
    s = (u + eps) ** gamma
    pi = (1 - eta) / n + eta * s / s.sum()
    limit = cap / n
    for _ in range(100):  # water-filling: clip, give the excess to the rest in proportion
        over = pi > limit + 1e-15
        if not over.any():
            break
        excess = (pi[over] - limit).sum()
        pi[over] = limit
        free = ~over & (pi < limit)
        if not free.any():
            break
        pi[free] += excess * pi[free] / pi[free].sum()
    return pi / pi.sum()
