"""Power of the paired one-sided t-test that :mod:`reprozoo.runtime.verdict` applies.

The rule calls a comparison "held" when the one-sided ``1 - alpha`` lower bound of the mean paired
difference clears a *bound* (``+margin`` for superiority, ``-margin`` for non-inferiority). For
differences that are normal with standard deviation ``sd``, the probability of that event at a true
mean difference ``effect`` is a noncentral t tail:

    power = P(T'_{n-1, delta} > t_{1-alpha, n-1}),   delta = (effect - bound) * sqrt(n) / sd

Every experiment plans its seeds with :func:`seeds_for_power` at its smallest effect of interest
(SESOI) and a pilot SD, before the run; after the run, :func:`mde` gives the smallest true effect the
run's own SD and n could have detected with the same power.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from scipy import optimize, stats

DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.80
MAX_SEEDS = 10_000


def _check(sd: float, n: int, alpha: float) -> None:
    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd must be finite and >= 0, got {sd}")
    if int(n) != n or n < 2:
        raise ValueError(f"a paired t-test needs n >= 2 seeds, got {n}")
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")


def power(effect: float, sd: float, n: int, *, bound: float = 0.0, alpha: float = DEFAULT_ALPHA) -> float:
    """Probability that the one-sided ``1 - alpha`` lower bound of the mean of ``n`` paired differences
    (true mean ``effect``, SD ``sd``) exceeds ``bound``."""
    _check(sd, n, alpha)
    df = n - 1
    crit = stats.t.ppf(1 - alpha, df)
    if sd == 0:
        return 1.0 if effect > bound else 0.0
    delta = (effect - bound) * math.sqrt(n) / sd
    return float(stats.nct.sf(crit, df, delta))


def seeds_for_power(effect: float, sd: float, *, bound: float = 0.0, target: float = DEFAULT_POWER,
                    alpha: float = DEFAULT_ALPHA, min_n: int = 2, max_n: int = MAX_SEEDS) -> int:
    """Smallest number of paired seeds whose power at a true difference ``effect`` reaches ``target``.
    Raises ``ValueError`` when ``effect`` does not exceed ``bound`` (no n gives power) or when more than
    ``max_n`` seeds would be needed."""
    _check_gain(effect, bound)
    if not 0 < target < 1:
        raise ValueError(f"target power must be in (0, 1), got {target}")
    return _first_n(lambda n: power(effect, sd, n, bound=bound, alpha=alpha) >= target, max(2, int(min_n)), max_n,
                    f"{target:.0%} power at effect {effect:g}, sd {sd:g}")


def _first_n(ok: Callable[[int], bool], lo: int, max_n: int, what: str) -> int:
    """Smallest n >= ``lo`` with ``ok(n)``, for an ``ok`` that stays true once it is (doubling, then
    bisection); ``ValueError`` naming ``what`` when even ``max_n`` is not enough."""
    if ok(lo):
        return lo
    hi = lo
    while not ok(hi):
        if hi >= max_n:
            raise ValueError(f"more than {max_n} seeds needed for {what}")
        lo, hi = hi, min(2 * hi, max_n)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def mde(sd: float, n: int, *, bound: float = 0.0, target: float = DEFAULT_POWER, alpha: float = DEFAULT_ALPHA) -> float:
    """Minimal detectable effect: the true mean difference at which ``n`` paired seeds with SD ``sd``
    reach ``target`` power against ``bound``."""
    _check(sd, n, alpha)
    if sd == 0:
        return float(bound)
    df, crit = n - 1, stats.t.ppf(1 - alpha, n - 1)
    delta = optimize.brentq(lambda d: stats.nct.sf(crit, df, d) - target, 0.0, 200.0)
    return float(bound + delta * sd / math.sqrt(n))


def sd_upper_limit(sd: float, df: int, *, level: float = DEFAULT_POWER) -> float:
    """One-sided ``level`` upper confidence limit of a standard deviation estimated with ``df`` degrees
    of freedom, ``sd * sqrt(df / chi2_{1-level}(df))``. Plans take a pilot SD at this limit (x 2.117 for a
    3-seed pilot at 80%), so that a pilot that happened to be quiet does not cost the run its power."""
    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd must be finite and >= 0, got {sd}")
    if int(df) != df or df < 1:
        raise ValueError(f"df must be a positive integer, got {df}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return float(sd * math.sqrt(df / stats.chi2.ppf(1 - level, df)))


def pooled_sd(runs: Iterable[tuple[float, int]]) -> tuple[float, int]:
    """Pooled SD of several runs' paired differences and its degrees of freedom, from ``(sd, n_seeds)``
    per run: ``sqrt(sum((n - 1) sd^2) / sum(n - 1))``. Plans pool the runs made so far before taking
    :func:`sd_upper_limit`."""
    runs = list(runs)
    df = sum(int(n) - 1 for _, n in runs)
    if not runs or df < 1 or any(n < 2 for _, n in runs):
        raise ValueError(f"pooling needs runs of >= 2 seeds each, got {runs}")
    return math.sqrt(sum((int(n) - 1) * sd ** 2 for sd, n in runs) / df), df


def _check_gain(effect: float, bound: float) -> None:
    if not effect > bound:
        raise ValueError(f"the effect of interest ({effect:g}) must exceed the rule's bound ({bound:g})")


def mde_quantile(sd: float, n: int, *, bound: float = 0.0, level: float = DEFAULT_POWER,
                 target: float = DEFAULT_POWER, alpha: float = DEFAULT_ALPHA) -> float:
    """The ``level`` quantile of the MDE that a run of ``n`` seeds will report when the paired differences
    have true SD ``sd``: the run's MDE is :func:`mde` at its sample SD, which is ``sd * sqrt(chi2_{n-1} /
    (n - 1))``, and the MDE grows linearly with the SD."""
    _check(sd, n, alpha)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    scale = math.sqrt(stats.chi2.ppf(level, n - 1) / (n - 1))
    return float(bound + (mde(sd, n, bound=bound, target=target, alpha=alpha) - bound) * scale)


def seeds_for_mde(effect: float, sd: float, *, bound: float = 0.0, assurance: float = DEFAULT_POWER,
                  target: float = DEFAULT_POWER, alpha: float = DEFAULT_ALPHA, max_n: int = MAX_SEEDS) -> int:
    """Smallest number of seeds at which a run's reported MDE is at most ``effect`` with probability
    ``assurance`` (true SD ``sd``). Planning for power at the SESOI alone leaves the run's own MDE above the
    SESOI whenever its sample SD comes out above ``sd`` (about half the time at the pilot's point estimate);
    this asks for enough seeds that a run's MDE <= SESOI is itself likely."""
    _check_gain(effect, bound)
    return _first_n(lambda n: mde_quantile(sd, n, bound=bound, level=assurance, target=target, alpha=alpha) <= effect,
                    2, max_n, f"a {assurance:.0%} chance of MDE <= {effect:g} at sd {sd:g}")
