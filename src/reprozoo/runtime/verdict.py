"""Verdict rules: paired one-sided t-intervals against margins fixed in code before the numbers exist.

For per-seed paired differences ``d`` (signed so that larger is better) with mean ``m``, SD ``s`` and
``n`` seeds, ``L = m - t_{0.95, n-1} s / sqrt(n)`` and ``U = m + t_{0.95, n-1} s / sqrt(n)`` are the
one-sided 95% bounds (together, the two-sided 90% interval). With ``margin`` fixed in code:

- superiority (:func:`superiority`): held if ``L > margin``; not held if ``U < margin`` (a gain of the
  margin is excluded); inconclusive otherwise;
- non-inferiority (:func:`noninferiority`): held if ``L > -margin``; not held if ``U < -margin``;
- equivalence (:func:`equivalence`, two one-sided tests): held if ``-margin < L`` and ``U < margin``;
  not held if a difference of at least the margin is established (``L > margin`` or ``U < -margin``);
- calibration (:func:`calibration`): the interval of one arm's mean lies inside a band.

A headline (:func:`decide` / :func:`headline`) is one such test, gated by a negative control (an arm
that must lose), a positive control (a known-true effect the same rule must detect), a mechanism gate
and a calibration gate: a gate that is not held makes the headline "inconclusive" and says why.
Every result is a :class:`Test` that unpacks as ``(verdict, evidence)`` and records itself as data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import stats

from reprozoo.runtime import power as _power
from reprozoo.runtime.plan import Plan  # noqa: F401  (re-exported: verdict.Plan)

HELD, NOT_HELD, INCONCLUSIVE = "held", "not held", "inconclusive"
VERDICTS = (HELD, NOT_HELD, INCONCLUSIVE)
ALPHA = _power.DEFAULT_ALPHA  # each one-sided bound is a 95% bound
KINDS = ("superiority", "noninferiority", "equivalence", "calibration", "threshold")


@dataclass(frozen=True)
class Test:
    """The outcome of one rule: unpacks as ``(verdict, evidence)``; :meth:`record` is its data."""

    kind: str
    verdict: str
    evidence: str
    name: str = "score"
    estimate: float = float("nan")
    lower: float = float("nan")
    upper: float = float("nan")
    margin: float = float("nan")
    n: int = 0
    sd: float = float("nan")
    wins: int | None = None
    bound: float | None = None  # what L must exceed for "held" (superiority / non-inferiority)

    def __iter__(self) -> Iterator[str]:
        return iter((self.verdict, self.evidence))

    def __getitem__(self, i: int) -> str:
        return (self.verdict, self.evidence)[i]

    def mde(self, target: float = _power.DEFAULT_POWER) -> float | None:
        """Smallest true difference this run's SD and n detect with ``target`` power (None when the
        test has no paired SD or no bound)."""
        if self.bound is None or self.n < 2 or not math.isfinite(self.sd):
            return None
        return _power.mde(self.sd, self.n, bound=self.bound, target=target, alpha=ALPHA)

    def record(self) -> dict[str, Any]:
        out = {"kind": self.kind, "name": self.name, "verdict": self.verdict, "estimate": self.estimate,
               "interval": [self.lower, self.upper], "margin": self.margin, "n": self.n, "sd": self.sd}
        if self.wins is not None:
            out["wins"] = self.wins
        mde = self.mde()
        if mde is not None:
            out["mde"] = mde
        return out


def interval(values: Sequence[float], alpha: float = ALPHA) -> tuple[float, float, float, float]:
    """``(mean, L, U, sd)``: the one-sided ``1 - alpha`` lower and upper bounds of the mean."""
    x = np.asarray(values, float)
    m = float(x.mean())
    if x.size < 2:
        return m, float("-inf"), float("inf"), float("nan")
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(1 - alpha, x.size - 1)) * sd / math.sqrt(x.size)
    return m, m - half, m + half, sd


def _paired(method: Sequence[float], other: Sequence[float], higher_is_better: bool) -> np.ndarray:
    m, o = np.asarray(method, float), np.asarray(other, float)
    if m.shape != o.shape or m.ndim != 1 or m.size == 0:
        raise ValueError("method and alternative need the same non-zero number of paired seeds")
    return (m - o) if higher_is_better else (o - m)


def _check_margin(margin: float) -> None:
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"a rule's margin must be finite and >= 0, got {margin}")


def _mean_sd(x: Sequence[float]) -> str:
    a = np.asarray(x, float)
    return f"{a.mean():.4g}±{a.std(ddof=1):.2g}" if a.size > 1 else f"{a.mean():.4g}"


def _paired_test(kind: str, method, other, *, margin: float, higher_is_better: bool, min_seeds: int,
                 name: str, other_name: str) -> Test:
    _check_margin(margin)
    d = _paired(method, other, higher_is_better)
    n, wins = int(d.size), int((d > 0).sum())
    better = "higher" if higher_is_better else "lower"
    head = (f"{name}: method {_mean_sd(method)} vs {other_name} {_mean_sd(other)}; paired gain "
            f"({better} is better)")
    if not np.all(np.isfinite(d)):
        return Test(kind, INCONCLUSIVE, f"{head}: non-finite values in the paired differences", name,
                    margin=margin, n=n, wins=wins)
    m, lo, hi, sd = interval(d)
    rule = {"superiority": f"held if L > {margin:g}",
            "noninferiority": f"held if L > -{margin:g}",
            "equivalence": f"held if both inside ±{margin:g}"}[kind]
    evidence = f"{head} {m:+.4g}, 90% CI [{lo:+.4g}, {hi:+.4g}] (one-sided 95% bounds; {rule}), n={n}, wins {wins}/{n}"
    if n < max(2, min_seeds):
        return Test(kind, INCONCLUSIVE, evidence + f" (fewer than {max(2, min_seeds)} seeds)", name, m, lo, hi,
                    margin, n, sd, wins)
    if kind == "superiority":
        bound = margin
        v = HELD if lo > margin else NOT_HELD if hi < margin else INCONCLUSIVE
    elif kind == "noninferiority":
        bound = -margin
        v = HELD if lo > -margin else NOT_HELD if hi < -margin else INCONCLUSIVE
    else:
        bound = None
        v = HELD if (-margin < lo and hi < margin) else NOT_HELD if (lo > margin or hi < -margin) else INCONCLUSIVE
    return Test(kind, v, evidence, name, m, lo, hi, margin, n, sd, wins, bound)


def superiority(method: Sequence[float], other: Sequence[float], *, margin: float, higher_is_better: bool = True,
                min_seeds: int = 2, name: str = "score", other_name: str = "alternative") -> Test:
    """The method beats ``other`` by more than ``margin``: held when the one-sided 95% lower bound of
    the mean paired gain exceeds ``margin``, not held when the upper bound is below it."""
    return _paired_test("superiority", method, other, margin=margin, higher_is_better=higher_is_better,
                        min_seeds=min_seeds, name=name, other_name=other_name)


def noninferiority(method: Sequence[float], other: Sequence[float], *, margin: float, higher_is_better: bool = True,
                   min_seeds: int = 2, name: str = "score", other_name: str = "alternative") -> Test:
    """The method loses at most ``margin`` to ``other``: held when the lower bound exceeds ``-margin``,
    not held when the upper bound is below ``-margin``."""
    return _paired_test("noninferiority", method, other, margin=margin, higher_is_better=higher_is_better,
                        min_seeds=min_seeds, name=name, other_name=other_name)


def equivalence(method: Sequence[float], other: Sequence[float], *, margin: float, higher_is_better: bool = True,
                min_seeds: int = 2, name: str = "score", other_name: str = "alternative") -> Test:
    """No difference of ``margin`` or more (two one-sided tests): the only way to hold a "no effect"
    claim. A failed superiority test is never evidence of no effect."""
    return _paired_test("equivalence", method, other, margin=margin, higher_is_better=higher_is_better,
                        min_seeds=min_seeds, name=name, other_name=other_name)


def calibration(values: Sequence[float], band: tuple[float, float], *, name: str = "baseline") -> Test:
    """A calibration gate: the 90% interval of the mean of ``values`` (one arm over seeds) must lie
    inside ``band``; held when it does, not held otherwise (the headline is then "not calibrated")."""
    lo_band, hi_band = band
    x = np.asarray(values, float)
    if x.size == 0 or not np.all(np.isfinite(x)):
        return Test("calibration", NOT_HELD, f"{name}: no finite values to calibrate", name, n=int(x.size))
    m, lo, hi, sd = interval(x)
    ok = lo_band <= lo and hi <= hi_band
    evidence = (f"{name} {m:.4g}, 90% CI [{lo:.4g}, {hi:.4g}] over n={x.size} "
                f"{'inside' if ok else 'NOT inside'} the band [{lo_band:g}, {hi_band:g}]")
    return Test("calibration", HELD if ok else NOT_HELD, evidence, name, m, lo, hi, float("nan"), int(x.size), sd)


def threshold(value: float, *, at_least: float | None = None, at_most: float | None = None,
              name: str = "value") -> Test:
    """One measured number compared with a bound fixed in advance (a mechanism gate, a speed goal)."""
    ok = bool(np.isfinite(value))
    parts = [f"{name} = {value:.4g}"]
    if at_least is not None:
        ok &= value >= at_least
        parts.append(f"required >= {at_least:.4g}")
    if at_most is not None:
        ok &= value <= at_most
        parts.append(f"required <= {at_most:.4g}")
    return Test("threshold", HELD if ok else NOT_HELD, ", ".join(parts), name, float(value), float(value),
                float(value), n=1)


def combine(verdicts: Sequence[str]) -> str:
    """A claim with several parts: held when every part is held, not held when any part is not held,
    inconclusive otherwise."""
    verdicts = [v.verdict if isinstance(v, Test) else v for v in verdicts]
    if any(v == NOT_HELD for v in verdicts):
        return NOT_HELD
    if verdicts and all(v == HELD for v in verdicts):
        return HELD
    return INCONCLUSIVE


def strongest(alternatives: dict[str, Sequence[float]], *, higher_is_better: bool = True) -> str:
    """Name of the alternative with the best mean (the one a headline must beat)."""
    if not alternatives:
        raise ValueError("need at least one alternative")
    means = {k: float(np.mean(v)) for k, v in alternatives.items()}
    return (max if higher_is_better else min)(means, key=means.get)


GATE_REASONS = {"negative_control": "benchmark cannot separate arms (negative control did not lose)",
                "positive_control": "benchmark has no power (positive control not detected)",
                "mechanism": "mechanism inactive",
                "calibration": "not calibrated"}


@dataclass(frozen=True)
class Headline:
    """A headline test with its gates and plan; unpacks as ``(verdict, evidence)``."""

    verdict: str
    evidence: str
    test: Test
    gates: dict[str, list[Test]] = field(default_factory=dict)
    plan: Plan | None = None
    reasons: tuple[str, ...] = ()
    parts: tuple[Test | Headline, ...] = ()  # every part of a several-part headline (see every_part)

    def __iter__(self) -> Iterator[str]:
        return iter((self.verdict, self.evidence))

    def __getitem__(self, i: int) -> str:
        return (self.verdict, self.evidence)[i]

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.verdict, "test": self.test.record(),
                               "reasons": list(self.reasons)}
        for role, tests in self.gates.items():
            out[role] = [{**t.record(), "evidence": t.evidence} for t in tests]
        if self.plan is not None:
            out["plan"] = self.plan.record(self.test.n)
        if self.parts:
            out["parts"] = [{**p.record(), "evidence": p.evidence} for p in self.parts]
        return out


def _as_list(x: Test | Sequence[Test] | None) -> list[Test]:
    if x is None:
        return []
    return [x] if isinstance(x, Test) else list(x)


def decide(test: Test, *, negative_control: Test | Sequence[Test] | None = None,
           positive_control: Test | Sequence[Test] | None = None, mechanism: Test | Sequence[Test] | None = None,
           calibration: Test | Sequence[Test] | None = None, plan: Plan | None = None) -> Headline:
    """Gate ``test``: each gate must be held (a negative control as *losing*, a positive control as a
    detected known effect, a mechanism as active, a calibration band as met), or the headline is
    inconclusive and says which gate failed. An inconclusive test whose MDE exceeds the plan's SESOI
    says "underpowered"."""
    return _gated(test.verdict, test, test.evidence, dict(negative_control=negative_control,
                  positive_control=positive_control, mechanism=mechanism, calibration=calibration), plan)


def _gated(verdict: str, test: Test, evidence: str, gate_args: dict[str, Any], plan: Plan | None,
           parts: tuple[Test | Headline, ...] = ()) -> Headline:
    unknown = set(gate_args) - set(GATE_REASONS)
    if unknown:
        raise TypeError(f"unknown gate(s): {sorted(unknown)}")
    gates = {role: _as_list(g) for role, g in gate_args.items() if g}
    base, parts_text, reasons = verdict, [evidence], []
    for role, tests in gates.items():
        ok = all(t.verdict == HELD for t in tests)
        label = role.replace("_", " ")
        parts_text.append(f"{label}: " + "; ".join(t.evidence for t in tests) + (" (passed)" if ok else " (FAILED)"))
        if not ok:
            reasons.append(GATE_REASONS[role])
    if reasons:
        verdict = INCONCLUSIVE
    mde = test.mde()
    if mde is not None:
        parts_text.append(f"MDE {mde:.3g} at n={test.n}" + (f" vs SESOI {plan.sesoi:g} (planned n={plan.planned_n})"
                                                           if plan is not None else ""))
    if base == INCONCLUSIVE:
        if plan is not None and mde is not None and mde > plan.sesoi:
            reasons.append(f"underpowered (MDE {mde:.3g} > SESOI {plan.sesoi:g})")
        elif test.verdict == INCONCLUSIVE and test.n >= 2 and math.isfinite(test.lower):
            reasons.append(f"the interval [{test.lower:+.3g}, {test.upper:+.3g}] contains the rule's bound")
        elif test.verdict == INCONCLUSIVE:
            reasons.append("too few seeds or non-finite values")
        else:
            reasons.append("a part of the claim is inconclusive")
    if verdict == INCONCLUSIVE and reasons:
        parts_text.insert(0, "inconclusive: " + "; ".join(reasons))
    return Headline(verdict, " | ".join(parts_text), test, gates, plan, tuple(reasons), parts)


def every_part(parts: Sequence[Test | Headline], labels: Sequence[str] | None = None, **gates: Any) -> Headline:
    """A headline with several parts, held when every part is held (:func:`combine`). Its ``test`` is
    the part that decides the verdict (the first part whose verdict equals the combined one); the
    record keeps every part. ``parts`` are tests, gated here once with ``gates`` (the keyword
    arguments of :func:`decide`), or headlines that are already gated (then pass no gates)."""
    if not parts:
        raise ValueError("every_part needs at least one part")
    verdict = combine([p.verdict for p in parts])
    deciding = next(p for p in parts if p.verdict == verdict)  # combine's verdict is always some part's
    texts = [p.evidence for p in parts] if labels is None else [f"{k}: {p.evidence}" for k, p in zip(labels, parts)]
    joined = " || ".join(texts) if len(parts) > 1 else texts[0]
    if isinstance(deciding, Headline):
        if gates:
            raise ValueError("parts that are headlines carry their own gates; pass gates with tests only")
        return replace(deciding, evidence=joined, parts=tuple(parts))
    plan = gates.pop("plan", None)
    return _gated(verdict, deciding, joined, gates, plan, tuple(parts))


def headline(method: Sequence[float], alternatives: dict[str, Sequence[float]],
             control: Sequence[float] | None = None, *, margin: float, kind: str = "superiority",
             higher_is_better: bool = True, min_seeds: int = 2, control_margin: float | None = None,
             positive_control: Test | Sequence[Test] | None = None, mechanism: Test | Sequence[Test] | None = None,
             calibration: Test | Sequence[Test] | None = None, plan: Plan | None = None,
             name: str = "score", control_name: str = "control") -> Headline:
    """The shared headline: the method against the *strongest* of ``alternatives`` (by mean) with the
    ``kind`` of test, gated by the negative ``control`` (the method must beat it by ``control_margin``,
    default ``margin``) and the optional positive control, mechanism and calibration gates."""
    if kind not in ("superiority", "noninferiority"):
        raise ValueError(f"a headline test is 'superiority' or 'noninferiority', got {kind!r}")
    best = strongest(alternatives, higher_is_better=higher_is_better)
    rule = superiority if kind == "superiority" else noninferiority
    test = rule(method, alternatives[best], margin=margin, higher_is_better=higher_is_better, min_seeds=min_seeds,
                name=name, other_name=f"strongest alternative '{best}'")
    neg = None
    if control is not None:
        neg = superiority(method, control, margin=margin if control_margin is None else control_margin,
                          higher_is_better=higher_is_better, min_seeds=min_seeds, name=name,
                          other_name=f"'{control_name}'")
    return decide(test, negative_control=neg, positive_control=positive_control, mechanism=mechanism,
                  calibration=calibration, plan=plan)


def claim(text: str, verdict: str | Test | Headline, evidence: str | None = None, *,
          headline: bool = False) -> dict[str, object]:
    """One entry of ``metrics.json``'s ``claims`` list. Given a :class:`Test` or :class:`Headline`,
    the entry also carries its data under ``"test"``."""
    record = None
    if isinstance(verdict, (Test, Headline)):
        record = verdict.record()
        evidence = verdict.evidence if evidence is None else evidence
        verdict = verdict.verdict
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    out: dict[str, object] = {"claim": text, "verdict": verdict, "evidence": evidence or "", "headline": bool(headline)}
    if record is not None:
        out["test"] = record
    return out
