"""The headline rule on crafted per-seed A_last values (%): it can say held, not held and inconclusive."""

import numpy as np
import pytest

from reprozoo.rainbow.experiment import CALIBRATION, MARGIN, attribution, decide
from reprozoo.runtime.verdict import HELD, INCONCLUSIVE, NOT_HELD

FT = [16.0, 15.0, 17.0, 16.5, 15.5]
ER = [60.0, 62.0, 58.0, 61.0, 59.0]
BAL = [80.0, 81.0, 79.0, 80.5, 79.5]


def test_margins_are_fixed_constants():
    assert MARGIN == 1.0 and CALIBRATION == (20.0, 97.0)


def test_rm_beating_the_strongest_alternative_is_held():
    rm = [b + 3.0 + 0.1 * i for i, b in enumerate(BAL)]
    verdict, evidence = decide({"rm": rm, "er": ER, "balanced": BAL, "finetune": FT})
    assert verdict == HELD
    assert "strongest alternative 'balanced'" in evidence and "negative control" in evidence and "(passed)" in evidence


def test_rm_losing_to_the_strongest_alternative_is_not_held_even_if_it_beats_er():
    # RM is 20 points above ER-reservoir on every seed, but class-balanced random memory is 1 point higher
    rm = [b - 1.0 for b in BAL]
    values = {"rm": rm, "er": ER, "balanced": BAL, "gdumb": [50.0] * 5, "finetune": FT}
    verdict, evidence = decide(values)
    assert verdict == NOT_HELD
    assert "strongest alternative 'balanced'" in evidence and "-1, 90% CI [-1, -1]" in evidence
    assert "comes from the class-balanced quota" in attribution(values)


def test_a_gain_inside_the_margin_is_not_held_and_noise_is_inconclusive():
    tiny = [b + 0.5 for b in BAL]  # consistent, but below the 1-point margin: a 1-point gain is excluded
    assert decide({"rm": tiny, "er": ER, "balanced": BAL, "finetune": FT})[0] == NOT_HELD
    noisy = [b + d for b, d in zip(BAL, [8.0, -4.0, 7.0, -3.0, 6.0])]  # mean +2.8, paired SD 5.805
    head = decide({"rm": noisy, "er": ER, "balanced": BAL, "finetune": FT})
    # 2.8 -+ t(0.95, 4) * 5.805 / sqrt(5) = [-2.73, +8.33]: contains the margin -> could not tell
    assert head.verdict == INCONCLUSIVE and head.test.lower == pytest.approx(-2.73, abs=0.01)
    assert head.test.upper == pytest.approx(8.33, abs=0.01)


def test_rm_vs_er_at_the_recorded_spread_is_held():
    # +18 points on every seed with a paired SD of 9 over 10 seeds: L = 18 - 1.833 * 9 / sqrt(10) = 12.8 > 1
    gains = [18 + 9 * z for z in (-1.4, -0.9, -0.5, -0.2, 0.0, 0.0, 0.2, 0.5, 0.9, 1.4)]
    er = [60.0] * 10
    head = decide({"rm": [e + g for e, g in zip(er, gains)], "er": er, "finetune": [15.0] * 10})
    assert head.verdict == HELD and head.test.lower > 12


def test_a_control_that_does_not_lose_makes_the_verdict_inconclusive():
    rm = [b + 3.0 + 0.1 * i for i, b in enumerate(BAL)]
    control = [r + 0.2 for r in rm]  # fine-tune without memory as good as RM: the benchmark is broken
    verdict, evidence = decide({"rm": rm, "er": ER, "balanced": BAL, "finetune": control})
    assert verdict == INCONCLUSIVE and "cannot separate arms" in evidence


def test_a_saturated_benchmark_is_inconclusive():
    bal = [98.5, 98.0, 99.0, 98.2, 98.8]
    rm = [min(100.0, b + 1.2) for b in bal]
    verdict, evidence = decide({"rm": rm, "er": ER, "balanced": bal, "finetune": FT})
    assert verdict == INCONCLUSIVE and "not calibrated" in evidence and "NOT inside the band [20, 97]" in evidence


def test_fewer_than_three_seeds_is_inconclusive_and_arms_are_required():
    assert decide({"rm": [90.0, 91.0], "er": [60.0, 61.0], "finetune": [15.0, 16.0]})[0] == INCONCLUSIVE
    with pytest.raises(ValueError, match="decide needs"):
        decide({"rm": [1.0], "finetune": [1.0]})


def test_attribution_names_the_stride_only_when_it_beats_class_balance():
    rm = [b + 3.0 + 0.1 * i for i, b in enumerate(BAL)]
    assert "the uncertainty stride adds" in attribution({"rm": rm, "er": ER, "balanced": BAL})
    assert "not ahead of ER-reservoir" in attribution({"rm": ER, "er": ER, "balanced": BAL})
    noisy = [e + d for e, d in zip(ER, [20.0, 2.0, 22.0, 1.0, 21.0])]  # ahead of ER, noisy against balanced
    part = attribution({"rm": noisy, "er": ER, "balanced": [e + 5.0 for e in ER]})
    assert "recovers only part" in part
    assert attribution({"rm": rm, "er": ER}) == ""


# ---- the redesign: plan, positive control, mechanism gate
def test_plan_seeds_come_from_the_power_function():
    from reprozoo.rainbow.experiment_rule import HEADLINE_K, PLAN
    from reprozoo.runtime import power

    assert PLAN.margin == MARGIN and PLAN.sesoi > MARGIN and HEADLINE_K == 40
    # 80% power at the SESOI (46 seeds) and 80% power to "not held" at no true gain (100 seeds): the larger
    n_sesoi = power.seeds_for_power(PLAN.sesoi, PLAN.pilot_sd, bound=MARGIN)
    n = power.seeds_for_power(MARGIN, PLAN.pilot_sd, bound=0.0)
    assert (n_sesoi, n) == (46, 100) and PLAN.null_power and PLAN.seeds == n
    assert power.power(PLAN.sesoi, PLAN.pilot_sd, n, bound=MARGIN) >= 0.8
    assert power.power(MARGIN, PLAN.pilot_sd, n, bound=0.0) >= 0.8 > power.power(MARGIN, PLAN.pilot_sd, n - 1)


def test_uncertainty_spread_is_the_mean_per_class_range():
    from reprozoo.rainbow.experiment_rule import SPREAD_MIN, mechanism_gate, uncertainty_spread

    sel = [{"labels": [0, 0, 0, 1, 1], "u": [0.0, 0.25, 0.5, 0.0, 0.0]},  # ranges 0.5 and 0
           {"labels": [2, 2], "u": [1 / 12, 4 / 12]}]  # range 0.25
    assert uncertainty_spread(sel) == pytest.approx((0.5 + 0.0 + 0.25) / 3)
    assert np.isnan(uncertainty_spread([]))
    spread, slots = mechanism_gate([0.3, 0.2], 40, 10)
    assert spread.verdict == HELD and spread.estimate == pytest.approx(0.25) and slots.verdict == HELD
    spread, slots = mechanism_gate([0.0, 0.0], 20, 10)  # all-certain memory, 2 slots per class
    assert spread.verdict == NOT_HELD and slots.verdict == NOT_HELD and slots.estimate == 2
    assert SPREAD_MIN == pytest.approx(2 / 12)


def test_positive_control_is_balanced_vs_er_and_gates_the_headline():
    from reprozoo.rainbow.experiment_rule import mechanism_gate, positive_control

    rm = [b + 3.0 + 0.1 * i for i, b in enumerate(BAL)]
    values = {"rm": rm, "er": ER, "balanced": BAL, "finetune": FT}
    pos = positive_control(values)
    assert pos.verdict == HELD and pos.estimate == pytest.approx(np.mean(BAL) - np.mean(ER))
    mech = mechanism_gate([0.3] * 5, 40, 10)
    head = decide(values, positive=True, mechanism=mech)
    assert head.verdict == HELD and set(head.gates) >= {"positive_control", "mechanism", "negative_control"}
    # balanced no better than ER: the benchmark could not see a known effect -> inconclusive, "no power"
    flat = {**values, "er": [b - 0.2 for b in BAL]}
    head = decide(flat, positive=True, mechanism=mech)
    assert head.verdict == INCONCLUSIVE and "positive control not detected" in head.evidence
    # the mechanism gate failing (2 slots per class) makes a winning headline inconclusive
    head = decide(values, positive=True, mechanism=mechanism_gate([0.3] * 5, 20, 10))
    assert head.verdict == INCONCLUSIVE and "mechanism inactive" in head.evidence
    with pytest.raises(ValueError, match="positive control needs"):
        decide({"rm": rm, "er": ER, "finetune": FT}, positive=True)
