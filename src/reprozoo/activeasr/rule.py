"""The decision rule of the ``active-asr`` experiment, fixed in code before the runs that decide.

Headline: at every budget point after the first acquisition, over >= ``MIN_SEEDS`` paired seeds,
the one-sided 95% t-interval [L, U] of ``al_cr``'s mean paired CER reduction against the stronger
of ``random_sup`` and ``al_sup`` decides: "held" if L > ``MARGIN_CER``, "not held" if U <
``MARGIN_CER``, else "inconclusive"; the headline holds when every budget point holds. Gates (a
failing one makes the headline "inconclusive" and says which):

- negative control: the initial-set-only ``control`` loses (same rule) to every arm that gets more
  labels by acquisition, at the final budget point;
- positive control: ``upper`` (every pool utterance labelled) beats ``control`` (the initial set
  only) at the final point by the same rule: a known-true effect of labels on this benchmark, well
  above the SESOI, that the rule must detect with the run's seeds;
- calibration: the interval of the baseline's final CER lies inside ``CALIBRATION_CER``;
- mechanism: the method's pseudo-labelled share of the unlabelled data (the logged ``kept``: the
  share of every sampled unlabelled batch whose teacher transcript passed the confidence filter),
  averaged over the headline rounds and seeds, is at least ``MIN_PSEUDO_SHARE``.

The design (SESOI, pilot SD of the paired differences, seeds for 80% power) is :data:`PLAN`.
"""

from __future__ import annotations

import numpy as np

from reprozoo.runtime.power import pooled_sd, sd_upper_limit
from reprozoo.runtime.verdict import (
    Headline,
    Plan,
    Test,
    calibration,
    claim,
    combine,
    every_part,
    strongest,
    superiority,
    threshold,
)

MARGIN_CER = 1.0  # CER points the method must gain (absolute): the margin of the interval test
CALIBRATION_CER = (5.0, 90.0)  # the interval of the baseline's final CER must fall inside this range
MIN_SEEDS = 3  # fewer paired seeds -> inconclusive
# Confidence threshold of the CR / PL arms in the quick and full presets, chosen on the pilot's
# confidence scan (docs/experiments/activeasr.md, "Pilot"): the largest value on a 0.05 grid at which, averaged
# over the pilot seeds, at least 30% of the unlabelled pool passes under the supervised model that
# starts each CR round (round 0's model is the least confident). The paper-style 0.9 let 0-6% pass.
CR_TAU = 0.65
# mechanism gate: below a quarter of the unlabelled data pseudo-labelled, the CR branch is not the
# method the paper describes (the pilot's threshold was chosen for >= 30%; the gate leaves room for
# seed-to-seed spread without accepting the near-off regime of tau = 0.9, 0.0-0.06)
MIN_PSEUDO_SHARE = 0.25
# paired SDs of al_cr - random_sup at 60 labelled (the SD the headline's test sees when random_sup is the strongest
# alternative, the larger of the two alternatives' in every run) of the five full runs of designs 1-3, and their
# seed counts (from the runs' stored trials)
POOLED_RUNS = ((3.599, 8), (3.506, 8), (4.504, 15), (4.821, 15), (5.228, 17))
POOLED_SD, POOLED_DF = pooled_sd(POOLED_RUNS)  # 4.59, 58 df
PLAN = Plan(
    sesoi=4.0,
    sesoi_source=("Bang et al. (arXiv 2006.11021) show their gains only as curves on in-house data; the closest "
                  "published figure for AL + unlabelled data in ASR, Drugman et al. (arXiv 1903.02852), is a 12.5% "
                  "relative error reduction at a fixed budget: 0.125 x this benchmark's baseline final CER (random_sup, "
                  "32% in the quick runs) = 4.0 CER points"),
    margin=MARGIN_CER,
    # design 4 (after design 3's 17-seed record missed MDE <= SESOI, its SD 5.23: design 3 had pooled a repeat's SD
    # against al_sup, 2.86, with the others' against random_sup and so planned at 4.11; designs 1-3 are on the
    # history page): the pooled al_cr - random_sup SD of all five runs at its 80% upper confidence limit, and enough
    # seeds that the run's own MDE is <= SESOI with probability 0.8 (runtime.power.seeds_for_mde)
    pilot_sd=round(sd_upper_limit(POOLED_SD, df=POOLED_DF), 2),  # 5.01
    pilot_source=("full preset, seeds 0-7 and 8-15 (design 1's record and repeat), 16-30 and 31-45 (design 2's), "
                  "46-62 (design 3's record): paired SDs of al_cr - random_sup at 60 labelled 3.60, 3.51, 4.50, 4.82, "
                  "5.23, pooled 4.59 (58 df); planned at its 80% upper confidence limit 4.59 x sqrt(58 / "
                  "chi2_0.2(58)) = 5.01; the run of record uses other seeds (80-102)"),
    mde_assurance=0.8,
)
METHOD, BASELINE, CONTROL, POSITIVE = "al_cr", "random_sup", "control", "upper"
ALTERNATIVES = ("random_sup", "al_sup")
UNSUP_ARMS = ("random_cr", "al_cr", "al_pl")  # arms that use the unlabelled pool
CLAIM = ("Active learning with augmented consistency regularisation on the unlabelled pool reaches a lower "
         "CER than supervised training on randomly or actively selected utterances at the same labelling budget")
SUBCLAIMS = [("al_sup", "random_sup", "least-confidence AL beats random selection (supervised only)"),
             ("al_cr", "random_cr", "least-confidence AL beats random selection (with CR)"),
             ("random_cr", "random_sup", "CR on the unlabelled pool beats supervised-only training (random selection)"),
             ("al_cr", "al_pl", "augmented CR beats plain pseudo-labelling without augmentation (AL selection)")]


def cers(results: dict[str, list[dict]], arm: str, r: int) -> np.ndarray:
    return np.asarray([res["points"][r]["cer"] for res in results[arm]])


def pseudo_share(results: dict[str, list[dict]], arm: str, rounds: list[int]) -> float | None:
    """Mean ``kept`` (share of the sampled unlabelled batch that got a pseudo-label) of ``arm`` over
    ``rounds`` and seeds; None when the results do not log it."""
    got = [res["points"][r]["kept"] for res in results[arm] for r in rounds if "kept" in res["points"][r]]
    return float(np.mean(got)) if got else None


def headline_points(results: dict[str, list[dict]]) -> list[int]:
    n_points = len(results[METHOD][0]["points"])
    return list(range(1, n_points)) if n_points > 1 else [0]


def positive_control(results: dict[str, list[dict]], *, margin: float = MARGIN_CER) -> Test | None:
    """``upper`` (every pool label) vs ``control`` (the initial set only) at the final budget point."""
    if POSITIVE not in results or CONTROL not in results:
        return None
    last = len(results[METHOD][0]["points"]) - 1
    return superiority(cers(results, POSITIVE, last), cers(results, CONTROL, last), margin=margin,
                       higher_is_better=False, min_seeds=MIN_SEEDS,
                       name="positive control: all pool labels (upper) vs the initial set only, final CER (%)",
                       other_name="control")


def decide(results: dict[str, list[dict]], *, margin: float = MARGIN_CER,
           plan: Plan | None = None) -> tuple[Headline, list[dict]]:
    """The rule on per-arm lists (aligned by seed) of trial results: the headline and the claims (the
    first one is the headline)."""
    plan = PLAN if plan is None else plan
    points = headline_points(results)
    tests = []
    for r in points:
        alts = {a: cers(results, a, r) for a in ALTERNATIVES}
        best = strongest(alts, higher_is_better=False)
        tests.append(superiority(cers(results, METHOD, r), alts[best], margin=margin, higher_is_better=False,
                                 min_seeds=MIN_SEEDS,
                                 name=f"test CER (%) at {results[METHOD][0]['points'][r]['labelled']} labelled",
                                 other_name=f"strongest alternative '{best}'"))
    last = len(results[METHOD][0]["points"]) - 1
    ctrl = [superiority(cers(results, arm, last), cers(results, CONTROL, last), margin=margin,
                        higher_is_better=False, min_seeds=MIN_SEEDS, name=f"{arm} vs control CER",
                        other_name="control")
            for arm in results if arm not in (CONTROL, POSITIVE)]
    cal = calibration(cers(results, BASELINE, last), CALIBRATION_CER, name=f"baseline ({BASELINE}) final CER (%)")
    share = pseudo_share(results, METHOD, points)
    mech = None if share is None else threshold(share, at_least=MIN_PSEUDO_SHARE,
                                                name=f"{METHOD} pseudo-labelled share of the unlabelled data")
    pos = positive_control(results, margin=margin)
    head = every_part(tests, negative_control=ctrl, positive_control=pos, calibration=cal, mechanism=mech, plan=plan)
    claims: list[dict] = [claim(CLAIM, head, headline=True)]
    for a, b, text in SUBCLAIMS:
        if a in results and b in results:
            claims.append(claim(text, superiority(cers(results, a, last), cers(results, b, last), margin=margin,
                                                  higher_is_better=False, min_seeds=MIN_SEEDS,
                                                  name="final test CER (%)", other_name=b)))
    ok = all(t.verdict == "held" for t in ctrl)
    claims.append(claim("negative control: the initial labelled set alone loses to every arm that acquires labels",
                        combine(ctrl), "every acquiring arm beats the initial-set-only control at the final budget"
                        if ok else "; ".join(t.evidence for t in ctrl if t.verdict != "held")))
    if pos is not None:
        claims.append(claim("positive control: all pool labels beat the initial set only (known-true effect)",
                            pos))
    return head, claims
