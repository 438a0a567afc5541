"""Verdict rules, written before the numbers exist.

Each rule returns ``(verdict, evidence)`` where verdict is ``"held" | "not held" | "inconclusive"``.
Experiments pick a rule and its parameters in code; the numbers decide.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

HELD, NOT_HELD, INCONCLUSIVE = "held", "not held", "inconclusive"
VERDICTS = (HELD, NOT_HELD, INCONCLUSIVE)


def paired_comparison(
    method: Sequence[float],
    baseline: Sequence[float],
    *,
    higher_is_better: bool = True,
    min_win_fraction: float = 0.5,
    margin: float = 0.0,
    min_seeds: int = 3,
    name: str = "score",
) -> tuple[str, str]:
    """Method beats baseline by more than ``margin`` in mean and wins more than
    ``min_win_fraction`` of paired seeds. Fewer than ``min_seeds`` seeds -> inconclusive."""
    m, b = np.asarray(method, float), np.asarray(baseline, float)
    if m.shape != b.shape or m.size == 0:
        raise ValueError("method and baseline need the same non-zero number of paired seeds")
    sign = 1.0 if higher_is_better else -1.0
    diff = sign * (m - b)
    wins = int((diff > 0).sum())
    evidence = (
        f"{name}: method {m.mean():.4g}±{m.std():.2g} vs baseline {b.mean():.4g}±{b.std():.2g} "
        f"over {m.size} seeds, paired wins {wins}/{m.size}"
    )
    if m.size < min_seeds:
        return INCONCLUSIVE, evidence + f" (fewer than {min_seeds} seeds)"
    ok = diff.mean() > margin and wins > min_win_fraction * m.size
    return (HELD if ok else NOT_HELD), evidence


def within_margin(
    method: Sequence[float],
    baseline: Sequence[float],
    *,
    margin: float,
    relative: bool = False,
    higher_is_better: bool = True,
    min_seeds: int = 1,
    name: str = "score",
) -> tuple[str, str]:
    """Method's mean is no worse than baseline's mean minus ``margin`` (absolute, or relative to
    the baseline mean when ``relative``)."""
    m, b = float(np.mean(method)), float(np.mean(baseline))
    allowed = margin * abs(b) if relative else margin
    gap = (b - m) if higher_is_better else (m - b)
    evidence = (
        f"{name}: method {m:.4g} vs baseline {b:.4g} (gap {gap:.4g}, allowed {allowed:.4g}) "
        f"over {len(method)} seeds"
    )
    if len(method) < min_seeds:
        return INCONCLUSIVE, evidence + f" (fewer than {min_seeds} seeds)"
    return (HELD if gap <= allowed else NOT_HELD), evidence


def threshold(value: float, *, at_least: float | None = None, at_most: float | None = None,
              name: str = "value") -> tuple[str, str]:
    """A single measured number compared with a bound fixed in advance."""
    ok = True
    parts = [f"{name} = {value:.4g}"]
    if at_least is not None:
        ok &= value >= at_least
        parts.append(f"required >= {at_least:.4g}")
    if at_most is not None:
        ok &= value <= at_most
        parts.append(f"required <= {at_most:.4g}")
    return (HELD if ok else NOT_HELD), ", ".join(parts)


def combine(verdicts: Sequence[str]) -> str:
    """All sub-claims held -> held; any not held -> not held; otherwise inconclusive."""
    if any(v == NOT_HELD for v in verdicts):
        return NOT_HELD
    if verdicts and all(v == HELD for v in verdicts):
        return HELD
    return INCONCLUSIVE
