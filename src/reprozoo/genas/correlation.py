"""How well a proxy ranks architectures against ground truth: Kendall tau-b and Spearman rho
(scipy), top-k agreement, regret of the proxy's top-1 pick, and bootstrap confidence intervals
over architectures. NaN scores are skipped (pairs with a NaN on either side are dropped)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from reprozoo.errors import DataError


def _pair(score: Sequence[float], truth: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    s, t = np.asarray(score, float), np.asarray(truth, float)
    if s.shape != t.shape or s.ndim != 1:
        raise DataError(f"scores and ground truth need the same 1-D length, got {s.shape} and {t.shape}")
    keep = np.isfinite(s) & np.isfinite(t)
    return s[keep], t[keep]


def kendall(score, truth) -> float:
    """Kendall tau-b (ties counted as in scipy's default); NaN when fewer than 2 pairs or constant."""
    s, t = _pair(score, truth)
    if s.size < 2 or np.ptp(s) == 0 or np.ptp(t) == 0:
        return float("nan")
    return float(stats.kendalltau(s, t).statistic)


def spearman(score, truth) -> float:
    s, t = _pair(score, truth)
    if s.size < 2 or np.ptp(s) == 0 or np.ptp(t) == 0:
        return float("nan")
    return float(stats.spearmanr(s, t).statistic)


def top_k_agreement(score, truth, k: int) -> float:
    """Share of the ground-truth top-``k`` that the proxy also puts in its top-``k``."""
    s, t = _pair(score, truth)
    if k < 1 or k > s.size:
        raise DataError(f"k must be in 1..{s.size}, got {k}")
    top_s = set(np.argsort(-s, kind="stable")[:k].tolist())
    top_t = set(np.argsort(-t, kind="stable")[:k].tolist())
    return len(top_s & top_t) / k


def regret(score, truth) -> float:
    """Best ground truth minus the ground truth of the proxy's top-1 pick (0 = perfect pick)."""
    s, t = _pair(score, truth)
    if s.size == 0:
        raise DataError("no finite (score, ground truth) pairs")
    return float(t.max() - t[int(np.argmax(s))])


def bootstrap_ci(fn: Callable[[np.ndarray, np.ndarray], float], groups: Sequence[tuple[Sequence[float], Sequence[float]]],
                 *, n_boot: int = 1000, level: float = 0.95, rng: np.random.Generator | None = None) -> tuple[float, float]:
    """Percentile interval of the mean of ``fn`` over ``groups`` (each ``(score, truth)``, e.g. one
    per seed), resampling architectures with replacement inside every group."""
    if n_boot < 1 or not 0 < level < 1:
        raise DataError(f"n_boot must be >= 1 and level in (0, 1), got {n_boot}, {level}")
    rng = rng if rng is not None else np.random.default_rng(0)
    pairs = [_pair(s, t) for s, t in groups]
    values = np.empty(n_boot)
    for b in range(n_boot):
        vals = []
        for s, t in pairs:
            idx = rng.integers(0, s.size, s.size)
            vals.append(fn(s[idx], t[idx]))
        values[b] = np.nanmean(vals) if np.isfinite(vals).any() else np.nan
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def correlation_report(scores: dict[str, Sequence[float]], truth: Sequence[float], *, k: int = 5,
                       n_boot: int = 1000, rng: np.random.Generator | None = None) -> dict[str, dict[str, float]]:
    """Per proxy: kendall (+ 95% bootstrap CI), spearman, top-k agreement and regret."""
    rng = rng if rng is not None else np.random.default_rng(0)
    out = {}
    for name, s in scores.items():
        lo, hi = bootstrap_ci(kendall, [(s, truth)], n_boot=n_boot, rng=rng)
        out[name] = {"kendall": kendall(s, truth), "kendall_lo": lo, "kendall_hi": hi,
                     "spearman": spearman(s, truth), "topk": top_k_agreement(s, truth, min(k, len(s))),
                     "regret": regret(s, truth)}
    return out
