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


# ------------------------------------------------------------------ the rule every headline uses
def _paired(method: Sequence[float], other: Sequence[float], higher_is_better: bool) -> np.ndarray:
    m, o = np.asarray(method, float), np.asarray(other, float)
    if m.shape != o.shape or m.ndim != 1 or m.size == 0:
        raise ValueError("method and alternative need the same non-zero number of paired seeds")
    return (m - o) if higher_is_better else (o - m)


def _check_margin(margin: float) -> None:
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"a rule's margin must be finite and >= 0, got {margin}")


def beats(
    method: Sequence[float],
    other: Sequence[float],
    *,
    margin: float,
    higher_is_better: bool = True,
    min_seeds: int = 3,
    noise_factor: float = 2.0,
    name: str = "score",
    other_name: str = "alternative",
) -> tuple[str, str]:
    """The method beats ``other`` when, over paired seeds, the mean improvement exceeds both
    ``margin`` (fixed in code) and ``noise_factor`` x the std of the paired differences, and the
    method wins on more than half of the seeds. Fewer than ``min_seeds`` seeds -> inconclusive."""
    _check_margin(margin)
    d = _paired(method, other, higher_is_better)
    m, o = np.asarray(method, float), np.asarray(other, float)
    need = max(margin, noise_factor * float(d.std(ddof=1))) if d.size > 1 else float("inf")
    wins = int((d > 0).sum())
    evidence = (f"{name}: method {m.mean():.4g}±{m.std(ddof=1) if m.size > 1 else 0:.2g} vs {other_name} "
                f"{o.mean():.4g}±{o.std(ddof=1) if o.size > 1 else 0:.2g}, paired gain {d.mean():+.4g} "
                f"(needs > {need:.3g} = max(margin {margin:g}, {noise_factor:g} x paired std)), "
                f"wins {wins}/{d.size} seeds")
    if d.size < min_seeds:
        return INCONCLUSIVE, evidence + f" (fewer than {min_seeds} seeds)"
    ok = d.mean() > need and wins > d.size / 2
    return (HELD if ok else NOT_HELD), evidence


def no_worse(
    method: Sequence[float],
    other: Sequence[float],
    *,
    margin: float,
    higher_is_better: bool = True,
    min_seeds: int = 3,
    noise_factor: float = 2.0,
    name: str = "score",
    other_name: str = "alternative",
) -> tuple[str, str]:
    """Non-inferiority: the method's paired loss against ``other`` stays within ``margin`` even
    after adding ``noise_factor`` x the standard error of the paired differences."""
    _check_margin(margin)
    d = _paired(method, other, higher_is_better)
    se = float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("inf")
    bound = float(d.mean()) - noise_factor * se
    evidence = (f"{name}: method {np.mean(method):.4g} vs {other_name} {np.mean(other):.4g}, paired "
                f"difference {d.mean():+.4g} (lower bound {bound:+.3g} = mean - {noise_factor:g} SE; "
                f"allowed >= -{margin:g}) over {d.size} seeds")
    if d.size < min_seeds:
        return INCONCLUSIVE, evidence + f" (fewer than {min_seeds} seeds)"
    return (HELD if bound >= -margin else NOT_HELD), evidence


def strongest(alternatives: dict[str, Sequence[float]], *, higher_is_better: bool = True) -> str:
    """Name of the alternative with the best mean (the one a headline must beat)."""
    if not alternatives:
        raise ValueError("need at least one alternative")
    means = {k: float(np.mean(v)) for k, v in alternatives.items()}
    return (max if higher_is_better else min)(means, key=means.get)


def with_control(verdict: str, evidence: str, control: tuple[str, str]) -> tuple[str, str]:
    """Gate a headline on its negative control: when the control did not lose (its verdict is
    not "held"), the benchmark cannot tell arms apart and the headline is "inconclusive"."""
    cv, ce = control
    evidence = f"{evidence}; negative control: {ce} ({'lost as required' if cv == HELD else 'DID NOT LOSE'})"
    if cv != HELD:
        return INCONCLUSIVE, evidence
    return verdict, evidence


def headline(
    method: Sequence[float],
    alternatives: dict[str, Sequence[float]],
    control: Sequence[float],
    *,
    margin: float,
    higher_is_better: bool = True,
    min_seeds: int = 3,
    name: str = "score",
    control_name: str = "control",
) -> tuple[str, str]:
    """The shared headline rule: the method :func:`beats` the *strongest* of ``alternatives``
    (by mean), and beats the negative control too, or the verdict is "inconclusive"."""
    best = strongest(alternatives, higher_is_better=higher_is_better)
    v, e = beats(method, alternatives[best], margin=margin, higher_is_better=higher_is_better,
                 min_seeds=min_seeds, name=name, other_name=f"strongest alternative '{best}'")
    c = beats(method, control, margin=margin, higher_is_better=higher_is_better, min_seeds=min_seeds,
              name=name, other_name=f"'{control_name}'")
    return with_control(v, e, c)


def claim(text: str, verdict: str, evidence: str, *, headline: bool = False) -> dict[str, object]:
    """One entry of ``metrics.json``'s ``claims`` list."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    return {"claim": text, "verdict": verdict, "evidence": evidence, "headline": bool(headline)}
