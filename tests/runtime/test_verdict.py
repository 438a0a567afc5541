"""The verdict rule is a paired one-sided t-test: hand cases for every branch, a simulation of its
error rate at the margin, and its power against the power function."""

import math

import numpy as np
import pytest
from scipy import stats

from reprozoo.runtime import power as P
from reprozoo.runtime import verdict as V


def _t(n):
    return stats.t.ppf(0.95, n - 1)


# ----------------------------------------------------------------------------- hand cases
def test_interval_matches_the_t_formula_and_scipy():
    d = [1.0, 2.0, 4.0]
    m, lo, hi, sd = V.interval(d)
    assert m == pytest.approx(7 / 3) and sd == pytest.approx(np.std(d, ddof=1))
    assert lo == pytest.approx(7 / 3 - _t(3) * sd / math.sqrt(3))
    assert hi == pytest.approx(7 / 3 + _t(3) * sd / math.sqrt(3))
    ci = stats.ttest_1samp(d, 0.0, alternative="greater").confidence_interval(0.95)
    assert lo == pytest.approx(ci.low)


def test_superiority_branches():
    base = [10.0, 10.0, 10.0, 10.0]
    held = V.superiority([13, 14, 13.5, 14.5], base, margin=2.0)  # L ~ 2.9 > 2
    assert held.verdict == "held" and held.lower > 2
    excluded = V.superiority([10.5, 10.2, 10.4, 10.1], base, margin=2.0)  # U ~ 0.5 < 2
    assert excluded.verdict == "not held" and excluded.upper < 2
    unsure = V.superiority([9, 14, 10, 15], base, margin=2.0)  # L < 2 < U
    assert unsure.verdict == "inconclusive" and unsure.lower < 2 < unsure.upper
    assert V.superiority([12, 13], [10, 10], margin=0, min_seeds=3).verdict == "inconclusive"  # too few
    lower_better = V.superiority([1, 1.1, 0.9], [3, 3.1, 2.9], margin=1.0, higher_is_better=False)
    assert lower_better.verdict == "held" and lower_better.estimate == pytest.approx(2.0)
    assert V.superiority([1.0, float("nan"), 2.0], [0, 0, 0], margin=0).verdict == "inconclusive"


def test_evidence_prints_estimate_interval_margin_and_n():
    t = V.superiority([13, 14, 13.5, 14.5], [10] * 4, margin=2.0, name="acc", other_name="b")
    assert "+3.75" in t.evidence and f"[{t.lower:+.4g}, {t.upper:+.4g}]" in t.evidence
    assert "L > 2" in t.evidence and "n=4" in t.evidence and "wins 4/4" in t.evidence
    verdict, evidence = t  # unpacks like the old (verdict, evidence) pairs
    assert verdict == "held" and evidence == t.evidence and t[0] == "held"


def test_noninferiority_branches():
    base = [80.0, 81.0, 79.0]
    assert V.noninferiority([79.5, 80.6, 78.4], base, margin=2.0).verdict == "held"  # loses ~0.5
    assert V.noninferiority([75, 76.2, 73.9], base, margin=2.0).verdict == "not held"  # loses ~5
    assert V.noninferiority([78, 82, 76], base, margin=2.0).verdict == "inconclusive"


def test_equivalence_never_follows_from_a_failed_superiority_test():
    a = [1.0, 1.1, 0.9, 1.05, 0.95]
    same = [1.02, 1.08, 0.93, 1.01, 0.96]
    assert V.equivalence(a, same, margin=0.1).verdict == "held"
    noisy = [0.5, 1.6, 0.4, 1.7, 1.0]
    assert V.superiority(noisy, a, margin=0.1).verdict != "held"
    assert V.equivalence(noisy, a, margin=0.1).verdict == "inconclusive"  # could not tell: not "no effect"
    assert V.equivalence([2.0, 2.1, 1.9], [1.0, 1.0, 1.0], margin=0.1).verdict == "not held"


def test_calibration_gate_uses_the_interval():
    assert V.calibration([86, 87, 88], (85, 92)).verdict == "held"
    assert V.calibration([84.9, 85.5, 86.2], (85, 92)).verdict == "not held"  # mean inside, interval not
    assert V.calibration([93, 94, 95], (85, 92)).verdict == "not held"


def test_combine_needs_every_part_held():
    assert V.combine(["held", "held"]) == "held"
    assert V.combine(["held", "inconclusive"]) == "inconclusive"
    assert V.combine(["held", "not held", "inconclusive"]) == "not held"
    assert V.combine([]) == "inconclusive"


def test_threshold_gate():
    assert V.threshold(0.3, at_least=0.2).verdict == "held"
    assert V.threshold(0.05, at_least=0.2).verdict == "not held"
    assert V.threshold(float("nan"), at_least=0.2).verdict == "not held"


def _arms(gain, n=8, sd=1.0, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(50, 5, n)
    return base + gain + rng.normal(0, sd, n), base


def test_headline_gates_make_it_inconclusive_and_say_why():
    method, alt = _arms(5.0)
    ctrl_lost, ctrl_won = method - 20, method + 1
    held = V.headline(method, {"alt": alt, "weak": alt - 3}, ctrl_lost, margin=1.0)
    assert held.verdict == "held" and "strongest alternative 'alt'" in held.evidence
    no_sep = V.headline(method, {"alt": alt}, ctrl_won, margin=1.0)
    assert no_sep.verdict == "inconclusive" and "cannot separate arms" in no_sep.evidence
    pos_fail = V.superiority(alt, alt + 0.01, margin=1.0)
    no_power = V.headline(method, {"alt": alt}, ctrl_lost, margin=1.0, positive_control=pos_fail)
    assert no_power.verdict == "inconclusive" and "no power" in no_power.evidence
    off = V.headline(method, {"alt": alt}, ctrl_lost, margin=1.0,
                     mechanism=V.threshold(0.01, at_least=0.2, name="pseudo-labelled share"))
    assert off.verdict == "inconclusive" and "mechanism inactive" in off.evidence
    uncal = V.headline(method, {"alt": alt}, ctrl_lost, margin=1.0, calibration=V.calibration(alt, (80, 90)))
    assert uncal.verdict == "inconclusive" and "not calibrated" in uncal.evidence
    # a "not held" headline with a failed gate is not reported as "not held"
    lost = V.headline(alt, {"m": method}, ctrl_won, margin=1.0)
    assert lost.verdict == "inconclusive"


def test_headline_records_plan_mde_and_gates_as_data():
    method, alt = _arms(0.3, n=4, sd=3.0)
    plan = V.Plan(sesoi=2.0, sesoi_source="paper, scaled", margin=0.5, pilot_sd=3.0, pilot_source="pilot run")
    h = V.headline(method, {"alt": alt}, method - 30, margin=0.5, plan=plan)
    rec = h.record()
    assert rec["verdict"] == h.verdict == "inconclusive"
    assert rec["plan"]["planned_n"] == P.seeds_for_power(2.0, 3.0, bound=0.5)
    assert rec["test"]["mde"] == pytest.approx(P.mde(h.test.sd, 4, bound=0.5))
    assert rec["test"]["mde"] > 2.0 and any("underpowered" in r for r in rec["reasons"])
    assert rec["negative_control"][0]["verdict"] == "held"
    entry = V.claim("m beats alt", h, headline=True)
    assert entry["verdict"] == "inconclusive" and entry["test"]["plan"]["sesoi"] == 2.0


def test_null_power_plan_also_decides_a_zero_gain():
    kw = dict(sesoi=2.5, sesoi_source="paper, scaled", margin=1.0, pilot_sd=3.99, pilot_source="pilot run")
    sesoi_only, both = V.Plan(**kw), V.Plan(**kw, null_power=True)
    assert sesoi_only.seeds == P.seeds_for_power(2.5, 3.99, bound=1.0) == 46
    assert both.seeds == P.seeds_for_power(1.0, 3.99, bound=0.0) == 100  # the null end needs more here
    assert both.null_power_at(both.seeds) >= 0.8 > both.null_power_at(both.seeds - 1)
    assert both.power_at(both.seeds) > sesoi_only.power_at(sesoi_only.seeds)
    rec = both.record(n_run=100)
    assert rec["null_power"] is True and rec["null_power_at_run_n"] == pytest.approx(both.null_power_at(100))
    assert "null_power" not in sesoi_only.record(n_run=46)
    with pytest.raises(ValueError, match="superiority"):
        V.Plan(**{**kw, "margin": 2.0}, kind="noninferiority", null_power=True)
    with pytest.raises(ValueError, match="margin > 0"):
        V.Plan(**{**kw, "margin": 0.0}, null_power=True)


def test_null_power_seeds_give_not_held_at_zero_gain_in_80_percent_of_draws():
    """Simulated: true paired gain 0, SD 2, margin 1: at the planned n the rule says "not held" in
    >= 80% of draws (- 3 MC standard errors); at the SESOI-only n it does not."""
    plan = V.Plan(sesoi=3.0, sesoi_source="s", margin=1.0, pilot_sd=2.0, pilot_source="p", null_power=True)
    n_both = plan.seeds
    n_sesoi = P.seeds_for_power(3.0, 2.0, bound=1.0)
    assert n_sesoi < n_both
    rng = np.random.default_rng(7)
    draws = 2000
    rates = {}
    for n in (n_sesoi, n_both):
        not_held = sum(V.superiority(rng.normal(0, 2.0, n), np.zeros(n), margin=1.0).verdict == "not held"
                       for _ in range(draws))
        rates[n] = not_held / draws
    assert rates[n_both] >= 0.8 - 3 * (0.16 / draws) ** 0.5
    assert rates[n_sesoi] < 0.7


# ----------------------------------------------------------------------------- simulation
@pytest.mark.parametrize("n", [3, 5, 10, 30])
def test_false_held_rate_at_the_margin_is_at_most_alpha(n):
    """True gain = margin exactly: "held" must come out in <= 5% of draws (+ 3 MC standard errors)."""
    rng = np.random.default_rng(n)
    draws, margin, sd = 4000, 1.0, 2.0
    held = 0
    for _ in range(draws):
        base = rng.normal(0, 5, n)
        method = base + margin + rng.normal(0, sd, n)
        held += V.superiority(method, base, margin=margin).verdict == "held"
    rate = held / draws
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / draws)
    assert rate >= 0.05 - 3 * math.sqrt(0.05 * 0.95 / draws)  # and the test is not needlessly conservative


@pytest.mark.parametrize("n", [3, 5, 10])
def test_power_at_margin_plus_three_sd_matches_the_power_function(n):
    rng = np.random.default_rng(100 + n)
    draws, margin, sd = 3000, 0.5, 1.0
    gain = margin + 3 * sd
    held = sum(V.superiority(rng.normal(gain, sd, n), np.zeros(n), margin=margin).verdict == "held"
               for _ in range(draws))
    predicted = P.power(gain, sd, n, bound=margin)
    assert abs(held / draws - predicted) <= 3 * math.sqrt(predicted * (1 - predicted) / draws) + 1e-3


def test_noninferiority_false_held_rate_at_minus_margin():
    rng = np.random.default_rng(7)
    draws, n, margin = 4000, 5, 1.0
    held = sum(V.noninferiority(rng.normal(-margin, 1.0, n), np.zeros(n), margin=margin).verdict == "held"
               for _ in range(draws))
    assert held / draws <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / draws)


def test_every_part_needs_every_part_held_and_keeps_them_all():
    method, alt = _arms(5.0)
    good = V.superiority(method, alt, margin=1.0, name="a")
    bad = V.superiority(alt, method, margin=1.0, name="b")
    both = V.every_part([good, V.threshold(3.0, at_least=1.0, name="c")], negative_control=good)
    assert both.verdict == "held" and both.test is good and len(both.record()["parts"]) == 2
    unsure = V.superiority(method, alt, margin=4.0, name="u")  # L = 3.62 < 4 < U = 4.61
    part_unsure = V.every_part([good, unsure])
    assert part_unsure.verdict == "inconclusive" and part_unsure.test is unsure  # the deciding part
    mixed = V.every_part([good, bad], labels=["first", "second"])
    assert mixed.verdict == "not held" and mixed.test is bad and "first: " in mixed.evidence
    gated = V.every_part([good, good], mechanism=V.threshold(0.0, at_least=1.0))
    assert gated.verdict == "inconclusive" and "mechanism inactive" in gated.evidence
    heads = V.every_part([V.decide(good), V.decide(bad, negative_control=bad)])
    assert heads.verdict == "inconclusive"  # the second part's failed gate
    with pytest.raises(ValueError):
        V.every_part([V.decide(good)], mechanism=good)
