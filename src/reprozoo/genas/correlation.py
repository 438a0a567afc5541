"""How well a proxy ranks architectures against ground truth: Kendall tau-b and Spearman rho
(scipy), top-k agreement, regret of the proxy's top-1 pick, and bootstrap confidence intervals
over architectures.

A NaN or infinite score or ground truth is refused (``DataError`` naming the argument and index):
silently dropping it would turn ``kendall([1, nan, 3], [1, 2, 3])`` into a perfect 1.0. Pass
``nan_policy="omit"`` to drop every pair with a non-finite value on either side instead."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from reprozoo.errors import ConfigError, DataError
from reprozoo.runtime.checks import finite, finite_array, integer

NAN_POLICIES = ("raise", "omit")


def _floats(x: Sequence[float], name: str) -> np.ndarray:
    try:
        return np.asarray(x, float)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be numbers, got {list(x)[:3]!r:.80}...") from None


def _pair(score: Sequence[float], truth: Sequence[float], nan_policy: str = "raise") -> tuple[np.ndarray, np.ndarray]:
    if nan_policy not in NAN_POLICIES:
        raise ConfigError(f"nan_policy must be one of {', '.join(NAN_POLICIES)}, got {nan_policy!r}")
    s, t = _floats(score, "scores"), _floats(truth, "ground truth")
    if s.shape != t.shape or s.ndim != 1:
        raise DataError(f"scores and ground truth need the same 1-D length, got {s.shape} and {t.shape}")
    if nan_policy == "raise":
        return finite_array("scores", s), finite_array("ground truth", t)
    keep = np.isfinite(s) & np.isfinite(t)
    return s[keep], t[keep]


def kendall(score, truth, *, nan_policy: str = "raise") -> float:
    """Kendall tau-b (ties counted as in scipy's default); NaN when fewer than 2 pairs or constant."""
    s, t = _pair(score, truth, nan_policy)
    if s.size < 2 or np.ptp(s) == 0 or np.ptp(t) == 0:
        return float("nan")
    return float(stats.kendalltau(s, t).statistic)


def spearman(score, truth, *, nan_policy: str = "raise") -> float:
    """Spearman rho; NaN when fewer than 2 pairs or constant."""
    s, t = _pair(score, truth, nan_policy)
    if s.size < 2 or np.ptp(s) == 0 or np.ptp(t) == 0:
        return float("nan")
    return float(stats.spearmanr(s, t).statistic)


def top_k_agreement(score, truth, k: int, *, nan_policy: str = "raise") -> float:
    """Share of the ground-truth top-``k`` that the proxy also puts in its top-``k``."""
    s, t = _pair(score, truth, nan_policy)
    k = integer("k", k)
    if k < 1 or k > s.size:
        raise DataError(f"k must be in 1..{s.size}, got {k}")
    top_s = set(np.argsort(-s, kind="stable")[:k].tolist())
    top_t = set(np.argsort(-t, kind="stable")[:k].tolist())
    return len(top_s & top_t) / k


def regret(score, truth, *, nan_policy: str = "raise") -> float:
    """Best ground truth minus the ground truth of the proxy's top-1 pick (0 = perfect pick)."""
    s, t = _pair(score, truth, nan_policy)
    if s.size == 0:
        raise DataError("no finite (score, ground truth) pairs")
    return float(t.max() - t[int(np.argmax(s))])


def bootstrap_ci(fn: Callable[[np.ndarray, np.ndarray], float], groups: Sequence[tuple[Sequence[float], Sequence[float]]],
                 *, n_boot: int = 1000, level: float = 0.95, rng: np.random.Generator | None = None,
                 nan_policy: str = "raise") -> tuple[float, float]:
    """Percentile interval of the mean of ``fn`` over ``groups`` (each ``(score, truth)``, e.g. one
    per seed), resampling architectures with replacement inside every group."""
    n_boot = integer("n_boot", n_boot, lo=1)
    level = finite("level", level, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    rng = rng if rng is not None else np.random.default_rng(0)
    pairs = [_pair(s, t, nan_policy) for s, t in groups]
    if not pairs or any(s.size == 0 for s, _ in pairs):
        raise DataError("bootstrap_ci needs at least one group with finite (score, ground truth) pairs")
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
                       n_boot: int = 1000, rng: np.random.Generator | None = None,
                       nan_policy: str = "raise") -> dict[str, dict[str, float]]:
    """Per proxy: kendall (+ 95% bootstrap CI), spearman, top-k agreement and regret."""
    rng = rng if rng is not None else np.random.default_rng(0)
    out, pol = {}, {"nan_policy": nan_policy}
    for name, s in scores.items():
        lo, hi = bootstrap_ci(kendall, [(s, truth)], n_boot=n_boot, rng=rng, **pol)
        out[name] = {"kendall": kendall(s, truth, **pol), "kendall_lo": lo, "kendall_hi": hi,
                     "spearman": spearman(s, truth, **pol),
                     "topk": top_k_agreement(s, truth, min(k, len(s)), **pol), "regret": regret(s, truth, **pol)}
    return out
