"""The rule of experiment ``gmp-grounding``, fixed in code before the runs that decide it.

Every comparison is the one-sided 95% t-interval [L, U] of the mean paired difference of test R@1 at
IoU 0.5 over >= ``MIN_SEEDS`` seeds (:mod:`reprozoo.runtime.verdict`). Every arm's segments come from
the same rule, the density rule of :mod:`reprozoo.gmp.segment_rules` (``SEGMENT_RULE``; a single
Gaussian's segment is the paper's ``c +- w/2``, so CPL and PPS-1G are scored exactly as in their paper).

* headline, part 1 (superiority, ``TWO_PART_PLAN``): on two-part events PPS beats the *strongest* of
  CPL and PPS-1G: held if L > ``TWO_PART_MARGIN`` (0: any gain, the SESOI sets the power), not held if
  U < it. Gates: negative control -- the whole video loses to PPS and to CPL; positive control -- the
  oracle splice (CPL's predictions with a planted two-Gaussian mixture on ``ORACLE_SHARE`` of the
  two-part test events, a true gain of ``ORACLE_SHARE`` x CPL's miss rate) beats CPL; mechanism -- the
  PPS top-1 mixtures on two-part test events put on average >= ``NONDOMINANT_MIN`` of their importance
  outside their dominant Gaussian, and the Gaussians the density rule sees lie on average
  >= ``CENTRE_SPAN_MIN`` apart (outermost centres);
* headline, part 2 (non-inferiority, ``SINGLE_PLAN``): on single-block events PPS is no worse than
  CPL: held if L > -``SINGLE_MARGIN``, not held if U < -``SINGLE_MARGIN``; gated like part 1 (rule 2);
* rule 2 (fixed 2026-12-05 after the first full run, whose record is kept as an earlier run): the
  gates are the headline's, not part 1's -- part 2 carries the same negative control, positive control
  and mechanism gates -- and a plateau gate (calibration) asks every trained arm to be at its plateau:
  averaged over seeds, the best validation R@1 of the last third of the epochs may exceed the best of
  the epochs before it by at most ``PLATEAU_GAIN_MAX`` (the two-part SESOI: more training must not be
  able to move an arm by the effect of interest);
* sub-claims: PPS vs CPL and vs PPS-1G on two-part events, ramp events, and the density rule vs the
  paper's centre rule on the same PPS models (where a gain comes from).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reprozoo.gmp.arms import ARM_NAMES, SEGMENT_FRACTION, SEGMENT_RULE
from reprozoo.runtime.power import pooled_sd, sd_upper_limit
from reprozoo.runtime.verdict import (
    Headline,
    Plan,
    Test,
    claim,
    decide,
    every_part,
    noninferiority,
    strongest,
    superiority,
    threshold,
)

TWO_PART_MARGIN = 0.0  # superiority: any gain; the SESOI (> margin) sets the seeds
SINGLE_MARGIN = 0.03  # non-inferiority on single-block events (R@1 IoU 0.5, fraction of queries)
MIN_SEEDS = 3
ORACLE_SHARE = 0.2  # share of the two-part test events that get the planted mixture (positive control)
NONDOMINANT_MIN = 0.2  # mechanism: mean importance outside the dominant Gaussian of PPS's top-1 mixture
# mechanism (added after the pilot, before the quick and full runs: the pilot's PPS mixtures split their
# importance (0.39-0.42) over Gaussians stacked on one spot, which the importance share alone cannot see):
# mean distance between the outermost centres of the Gaussians the density rule sees, a third of the
# smallest centre distance of a two-part event ((0.10 + 0.08 + 0.10) / 2 = 0.14 of the video)
CENTRE_SPAN_MIN = 0.05
RULE_VERSION = 2  # 1: gates on part 1 only, no plateau gate (the first full run, 2026-12-05 12:13 UTC)
PAPER_RELATIVE_GAIN = (51.49 - 49.24) / 49.24  # official README, Charades-STA R@1 IoU 0.5, PPS vs CPL
PILOT_CPL_TWO_PART = 0.6543  # CPL's two-part R@1 IoU 0.5 in the pilot (seeds 100-102: 0.674, 0.625, 0.664)
# Plan 2 (after the 7-seed record missed MDE <= SESOI, its SD 0.0497 four times the 3-seed pilot's 0.0125; plan 1
# took the pilot SD x 2.117, its 80% upper limit, and gave 7 seeds; its records are kept as earlier runs): every run
# of the full trial so far pooled, at the SD's 80% upper limit, with enough seeds that the run's own MDE is <= SESOI
# with probability 0.8 (runtime.power.seeds_for_mde)
POOLED_RUNS = {"two-part": ((0.0125, 3), (0.0497, 7), (0.0298, 7)),  # paired SDs PPS - CPL, seeds
               "single-block": ((0.0971, 3), (0.0332, 7), (0.0771, 7))}
POOLED = {part: pooled_sd(runs) for part, runs in POOLED_RUNS.items()}  # (SD, df): 0.0382 / 0.0660, 14 df
_POOLED_SOURCE = ("the full trial's runs so far, PPS - CPL: the pilot (seeds 100-102), the first record (0-6) and its "
                  "repeat (7-13), paired {part} SDs {sds}, pooled {pooled:.4f} (14 df), at its 80% upper confidence "
                  "limit x sqrt(14 / chi2_0.2(14)); the run of record uses other seeds (14-34)")
TWO_PART_PLAN = Plan(
    sesoi=round(PAPER_RELATIVE_GAIN * PILOT_CPL_TWO_PART, 4),
    sesoi_source=("Kim et al. (AAAI 2024), official README, Charades-STA: PPS 51.49 vs CPL 49.24 R@1 IoU 0.5 = "
                  "+4.57% relative; the same relative gain over CPL's two-part R@1 in the pilot (0.654) is 0.0299"),
    margin=TWO_PART_MARGIN,
    pilot_sd=round(sd_upper_limit(*POOLED["two-part"]), 4),  # 0.0465
    pilot_source=_POOLED_SOURCE.format(part="two-part", sds="0.0125, 0.0497, 0.0298", pooled=POOLED["two-part"][0]),
    mde_assurance=0.8,
)
SINGLE_PLAN = Plan(
    sesoi=0.0,
    sesoi_source=("Kim et al. (AAAI 2024) claim no loss where one Gaussian suffices (PPS on par with or above CPL "
                  "on Charades-STA and ActivityNet Captions, official README): a true difference of 0"),
    margin=SINGLE_MARGIN,
    pilot_sd=round(sd_upper_limit(*POOLED["single-block"]), 4),  # 0.0804
    pilot_source=_POOLED_SOURCE.format(part="single-block", sds="0.0971, 0.0332, 0.0771",
                                       pooled=POOLED["single-block"][0]),
    kind="noninferiority",
)
METRIC = "R1@0.5"
PLATEAU_GAIN_MAX = TWO_PART_PLAN.sesoi  # rule 2: the plateau gate's bound (validation R@1, fraction of queries)


def _mean(values: Sequence[float] | None) -> float:
    x = np.asarray(values if values is not None else [], float)
    return float(x.mean()) if x.size else float("nan")


def mechanism_gate(nondominant: Sequence[float], centre_span: Sequence[float] | None = None) -> list[Test]:
    """Means over PPS seeds of the per-seed means on two-part test events: the importance outside the
    dominant Gaussian and the spread of the centres the density rule sees (both must clear their bounds)."""
    tests = [threshold(_mean(nondominant), at_least=NONDOMINANT_MIN,
                       name="PPS top-1 mixtures on two-part events: mean importance outside the dominant Gaussian")]
    if centre_span is not None:
        tests.append(threshold(_mean(centre_span), at_least=CENTRE_SPAN_MIN,
                               name="PPS top-1 mixtures on two-part events: mean distance between the outermost "
                                    "centres of the Gaussians >= half the peak"))
    return tests


def late_gain(curve: Sequence[float]) -> float:
    """How much the best validation score of the last third of the epochs exceeds the best before it
    (0 when it does not; NaN for fewer than 3 epochs)."""
    x = np.asarray(curve, float)
    if x.size < 3:
        return float("nan")
    cut = x.size - max(1, x.size // 3)
    return max(0.0, float(np.nanmax(x[cut:]) - np.nanmax(x[:cut])))


def plateau_gate(curves: dict[str, Sequence[Sequence[float]]]) -> list[Test]:
    """Rule 2: per trained arm, the mean over seeds of :func:`late_gain` is at most ``PLATEAU_GAIN_MAX``."""
    return [threshold(float(np.mean([late_gain(c) for c in cs])), at_most=PLATEAU_GAIN_MAX,
                      name=f"{ARM_NAMES[arm]} at its plateau: mean validation R@1 gain in the last third of the epochs")
            for arm, cs in curves.items() if cs]


def decide_headline(scores: dict[str, dict[str, list[float]]], *, oracle: Sequence[float] | None = None,
                    nondominant: Sequence[float] | None = None, centre_span: Sequence[float] | None = None,
                    centre_rule: Sequence[float] | None = None,
                    val_curves: dict[str, Sequence[Sequence[float]]] | None = None) -> tuple[Headline, list[dict]]:
    """``scores[arm][event_type]`` = per-seed R@1 IoU 0.5 (paired seeds; arms pps, cpl, pps1g, whole).
    ``oracle``: the positive control's per-seed two-part R@1 (CPL + planted mixtures); ``nondominant``:
    PPS's per-seed mechanism measure; ``centre_rule``: PPS's two-part R@1 under the paper's rule;
    ``val_curves[arm]``: per seed, the validation R@1 after each epoch (the plateau gate)."""
    two = {arm: scores[arm]["two-part"] for arm in scores}
    alts = {a: two[a] for a in ("cpl", "pps1g") if a in two}
    best = strongest(alts)
    name = "two-part R@1 IoU0.5"
    test = superiority(two["pps"], alts[best], margin=TWO_PART_MARGIN, min_seeds=MIN_SEEDS, name=name,
                       other_name=f"strongest alternative {ARM_NAMES[best]}")
    controls = [superiority(two[a], two["whole"], margin=TWO_PART_MARGIN, min_seeds=MIN_SEEDS,
                            name=f"{name}, {ARM_NAMES[a]}", other_name="whole video") for a in ("pps", "cpl") if a in two]
    positive = None
    if oracle is not None and "cpl" in two:
        positive = superiority(oracle, two["cpl"], margin=TWO_PART_MARGIN, min_seeds=MIN_SEEDS,
                               name=f"{name}, oracle splice (CPL + planted mixtures on {ORACLE_SHARE:.0%})",
                               other_name="CPL")
    mech = mechanism_gate(nondominant, centre_span) if nondominant is not None else None
    plateau = plateau_gate(val_curves) if val_curves else None
    gates = dict(negative_control=controls, positive_control=positive, mechanism=mech, calibration=plateau)
    parts = [decide(test, plan=TWO_PART_PLAN, **gates)]
    claims = [claim("On two-part events PPS's R@1 at IoU 0.5 beats the strongest single-Gaussian alternative "
                    "(CPL or PPS-1G), segments by the density rule (gates: whole video loses, oracle splice "
                    "detected, mixtures used, every arm at its plateau)", parts[0], headline=True)]
    if "cpl" in scores:
        single = noninferiority(scores["pps"]["single"], scores["cpl"]["single"], margin=SINGLE_MARGIN,
                                min_seeds=MIN_SEEDS, name="single-block R@1 IoU0.5", other_name="CPL")
        parts.append(decide(single, plan=SINGLE_PLAN, **gates))
        claims.append(claim(f"On single-block events PPS is no worse than CPL beyond {SINGLE_MARGIN:g} R@1 IoU0.5",
                            parts[1], headline=True))
    for alt in alts:
        t = superiority(two["pps"], two[alt], margin=TWO_PART_MARGIN, min_seeds=MIN_SEEDS, name=name,
                        other_name=ARM_NAMES[alt])
        what = ("the paper's named baseline" if alt == "cpl"
                else "the same scheme without mixtures: a gain here comes from the mixture")
        claims.append(claim(f"PPS beats {ARM_NAMES[alt]} on two-part events ({what})", t))
    if "ramp" in scores["pps"] and "cpl" in scores:
        t = superiority(scores["pps"]["ramp"], scores["cpl"]["ramp"], margin=TWO_PART_MARGIN, min_seeds=MIN_SEEDS,
                        name="ramp R@1 IoU0.5", other_name="CPL")
        claims.append(claim("PPS beats CPL on ramp events (a smaller gain is expected)", t))
    if centre_rule is not None:
        t = superiority(two["pps"], centre_rule, margin=TWO_PART_MARGIN, min_seeds=MIN_SEEDS,
                        name=f"{name}, PPS", other_name="the same models under the paper's centre rule")
        claims.append(claim("On two-part events the density rule scores PPS's mixtures higher than the paper's "
                            "centre rule (the share of a gain that comes from the segment rule)", t))
    if positive is not None:
        claims.append(claim("Positive control: the oracle splice beats CPL on two-part events", positive))
    for t in mech or []:
        claims.append(claim(f"Mechanism: {t.name} (fixed bound)", t))
    for t in plateau or []:
        claims.append(claim(f"Plateau: {t.name} (fixed bound)", t))
    return every_part(parts), claims


__all__ = ["CENTRE_SPAN_MIN", "MIN_SEEDS", "NONDOMINANT_MIN", "ORACLE_SHARE", "PLATEAU_GAIN_MAX", "RULE_VERSION",
           "SEGMENT_FRACTION", "SEGMENT_RULE", "SINGLE_MARGIN", "SINGLE_PLAN", "TWO_PART_MARGIN", "TWO_PART_PLAN",
           "decide_headline", "late_gain", "mechanism_gate", "plateau_gate"]
