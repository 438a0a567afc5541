"""The rules of experiment ``eclips-fas``, fixed in code before the pilot: margins, the design
(:data:`PLAN`), the positive control, the mechanism gate and :func:`decide`.

Every test is a one-sided 95% paired t-interval over >= ``MIN_SEEDS`` seeds (:mod:`reprozoo.runtime.verdict`).

* headline: ECLIPS lowers video Variance compared with the strongest (lowest-Variance) of single / wide /
  ensemble_mean by more than ``V_REL_MARGIN`` of that arm's Variance, and its validation-threshold HTER is
  no worse within ``HTER_MARGIN``; both parts must be held.
* gates: negative control (shuffled-label learner: its AUC interval inside 0.5 +- ``CONTROL_AUC_BAND`` and
  ECLIPS above it by ``AUC_MARGIN``); calibration (single-backbone AUC interval inside ``CALIBRATION_AUC``);
  positive control (the mean-fusion deep ensemble lowers Variance against the single backbone by more
  than ``V_REL_MARGIN`` of its Variance: a known effect the same rule must call held); mechanism (the
  learned fusion weights' entropy / log K measurably below uniform: its 90% interval over seeds below
  ``FUSION_ENTROPY_MAX``; MC dropout on at test time; at least ``MIN_ITERS`` training iterations).
* (a) scaling the backbone does not reduce Variance: equivalence (two one-sided tests) of ``wide`` and
  ``single`` within ``V_REL_MARGIN`` of the single backbone's Variance; (b) ECLIPS vs single; (c) ECLIPS vs
  the mean-fusion deep ensemble; (d) the sampler lowers HTER by more than ``HTER_MARGIN``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from reprozoo.runtime.verdict import (
    NOT_HELD,
    Headline,
    Plan,
    Test,
    calibration,
    claim,
    equivalence,
    every_part,
    noninferiority,
    strongest,
    superiority,
    threshold,
)

ALTERNATIVES = ("single", "wide", "ensemble_mean")
METHOD = "eclips"
# rules (margins fixed before the first quick run; the positive control and the mechanism gate before the pilot)
V_REL_MARGIN = 0.10  # Variance must drop by > 10% of the alternative's Variance (lower bound of the paired drop)
HTER_MARGIN = 0.02  # non-inferiority margin on video HTER (validation threshold), absolute
AUC_MARGIN = 0.05  # ECLIPS's AUC must exceed the control's by this much
CONTROL_AUC_BAND = 0.10  # the shuffled-label control's AUC interval must lie inside 0.5 +- this
CALIBRATION_AUC = (0.60, 0.99)  # the single backbone must land clearly away from chance and from 100%
MIN_SEEDS = 3
FUSION_ENTROPY_MAX = 0.98  # normalised entropy H(w)/log K; 0.98 at K=4 ~ largest weight 0.35 (uniform = 1)
MIN_ITERS = 400  # training iterations for the fusion to learn (the "long enough")
SESOI_REL = 0.25  # a quarter of the strongest alternative's Variance
PILOT_VARIANCE = 0.0029303  # the pilot's strongest alternative (ensemble_mean) video Variance
PLAN = Plan(
    sesoi=SESOI_REL * PILOT_VARIANCE,
    sesoi_source=("Kim et al. report ECLIPS lowering video Variance against prior methods but no per-comparison "
                  "size we could read, so a practical threshold: a quarter of the strongest alternative's Variance "
                  "(2.5x the 10% margin), in Variance units of the pilot's mean-fusion ensemble (0.0029303)"),
    margin=V_REL_MARGIN * PILOT_VARIANCE,
    pilot_sd=0.00084547,
    pilot_source=("pilot run (preset 'pilot': held-out cam0, seeds 100-102, 400 iterations, MC dropout T=4 at test; "
                  "docs/experiments/eclips.md): SD of the paired Variance differences eclips - ensemble_mean "
                  "(-0.000887, -0.000191, +0.000796)"),
)


def entropy_ratio(weights: Sequence[float] | None) -> float:
    """H(w) / log K of fusion weights (1 = uniform); NaN when there are none."""
    if weights is None or len(weights) < 2:
        return float("nan")
    w = np.clip(np.asarray(weights, dtype=float), 1e-12, None)
    return float(-(w * np.log(w)).sum() / math.log(len(w)))


def mechanism_gate(entropy: Sequence[float] | None, *, mc_test: bool, iters: int) -> list[Test]:
    """The mechanism is active when the learned fusion leaves uniform (the 90% interval of the per-seed
    entropy ratio below ``FUSION_ENTROPY_MAX``), MC dropout is used at test time and training ran at least
    ``MIN_ITERS`` iterations."""
    if entropy is None or len(entropy) == 0 or not np.all(np.isfinite(entropy)):
        fusion = Test("threshold", NOT_HELD, "no learned fusion weights were recorded", "fusion entropy")
    else:
        fusion = calibration(list(entropy), (0.0, FUSION_ENTROPY_MAX),
                             name="ECLIPS fusion-weight entropy / log K (1 = uniform)")
    return [fusion, threshold(1.0 if mc_test else 0.0, at_least=1.0, name="MC dropout at test time (1 = on)"),
            threshold(float(iters), at_least=float(MIN_ITERS), name="training iterations")]


def positive_control(v: dict[str, list[float]]) -> Test:
    """Known effect on the same benchmark: a K-member mean-fusion ensemble lowers video Variance against
    one backbone by more than ``V_REL_MARGIN`` of its Variance."""
    margin = V_REL_MARGIN * float(np.mean(v["single"]))
    return superiority(v["ensemble_mean"], v["single"], margin=margin, higher_is_better=False, min_seeds=MIN_SEEDS,
                       name="video Variance (positive control)", other_name="single")


def decide(v: dict[str, list[float]], hter: dict[str, list[float]], auc: dict[str, list[float]],
           arms: list[str], *, entropy: Sequence[float] | None = None, mc_test: bool = True,
           iters: int = MIN_ITERS) -> tuple[Headline | None, list[dict[str, Any]]]:
    """The rules on per-seed numbers (``v``/``hter``/``auc``: arm -> per-seed values; ``entropy``: the
    ECLIPS arm's per-seed fusion entropy ratio). Returns ``(headline, claims)``; the headline is None
    when no alternative arm was run."""
    claims: list[dict[str, Any]] = []

    def lower_v(a: str, b: str) -> Test:
        margin = V_REL_MARGIN * float(np.mean(v[b]))
        return superiority(v[a], v[b], margin=margin, higher_is_better=False, min_seeds=MIN_SEEDS,
                           name="video Variance", other_name=b)

    def keeps_hter(a: str, b: str) -> Test:
        return noninferiority(hter[a], hter[b], margin=HTER_MARGIN, higher_is_better=False, min_seeds=MIN_SEEDS,
                              name="video HTER (val threshold)", other_name=b)

    def both(a: str, b: str, **gates) -> Headline:
        """Lower Variance *and* HTER no worse: both parts must be held."""
        return every_part([lower_v(a, b), keeps_hter(a, b)], **gates)

    alts = {a: v[a] for a in ALTERNATIVES if a in arms}
    if not alts:
        return None, claims
    best = strongest(alts, higher_is_better=False)
    if "control" in arms:
        lo, hi = 0.5 - CONTROL_AUC_BAND, 0.5 + CONTROL_AUC_BAND
        negative = [superiority(auc[METHOD], auc["control"], margin=AUC_MARGIN, min_seeds=MIN_SEEDS, name="video AUC",
                                other_name="shuffled-label control"),
                    calibration(auc["control"], (lo, hi), name="shuffled-label control AUC (at chance)")]
    else:
        negative = [Test("threshold", NOT_HELD, "no negative control was run", "control")]
    calib = calibration(auc["single"], CALIBRATION_AUC, name="single-backbone video AUC") if "single" in arms else None
    if {"single", "ensemble_mean"} <= set(arms):
        positive = positive_control(v)
    else:
        positive = Test("threshold", NOT_HELD, "no positive control was run (needs single and ensemble_mean)",
                        "positive control")
    mechanism = mechanism_gate(entropy, mc_test=mc_test, iters=iters)
    head = both(METHOD, best, negative_control=negative, calibration=calib, positive_control=positive,
                mechanism=mechanism, plan=PLAN)
    head = replace(head, evidence=f"strongest alternative by Variance: '{best}'; {head.evidence}")
    claims.append(claim(CLAIM, head, headline=True))
    if {"single", "wide"} <= set(arms):
        margin = V_REL_MARGIN * float(np.mean(v["single"]))
        claims.append(claim("(a) scaling the backbone 2x in width does not reduce video-wise Variance (equivalent "
                            f"to the single backbone within {V_REL_MARGIN:.0%} of its Variance)",
                            equivalence(v["wide"], v["single"], margin=margin, higher_is_better=False,
                                        min_seeds=MIN_SEEDS, name="video Variance", other_name="single")))
    if "single" in arms:
        claims.append(claim("(b) ECLIPS lowers Variance and does not raise HTER compared with the single backbone",
                            both(METHOD, "single")))
    if "ensemble_mean" in arms:
        claims.append(claim("(c) ECLIPS (learnable fusion + MC dropout + sampler) beats the mean-fusion deep "
                            "ensemble on Variance without raising HTER", both(METHOD, "ensemble_mean")))
    if "eclips_nosampler" in arms:
        claims.append(claim("(d) the uncertainty-guided sampler lowers HTER (ECLIPS vs ECLIPS without it)",
                            superiority(hter[METHOD], hter["eclips_nosampler"], margin=HTER_MARGIN,
                                        higher_is_better=False, min_seeds=MIN_SEEDS,
                                        name="video HTER (val threshold)", other_name="eclips_nosampler")))
    return head, claims


CLAIM = ("An ensemble of base learners with learnable decision fusion and MC dropout (ECLIPS) makes "
         "video-wise FAS predictions more stable (lower Variance) than the strongest simple alternative "
         "without raising HTER on an unseen domain, while scaling a single backbone does not")
