"""runtime.power: the noncentral-t power of the paired one-sided test, seeds for a target power, MDE."""

import math

import numpy as np
import pytest
from scipy import stats

from reprozoo.runtime import power as P


def test_power_at_the_bound_is_alpha_and_grows_with_effect_and_n():
    assert P.power(1.0, 2.0, 5, bound=1.0) == pytest.approx(0.05)
    assert P.power(2.0, 1.0, 5) < P.power(2.0, 1.0, 10) < P.power(3.0, 1.0, 10)


def test_power_matches_a_hand_computed_noncentral_t():
    n, sd, effect = 6, 2.0, 2.5
    crit = stats.t.ppf(0.95, n - 1)
    delta = effect * math.sqrt(n) / sd
    assert P.power(effect, sd, n) == pytest.approx(stats.nct.sf(crit, n - 1, delta))


def test_seeds_for_power_is_the_smallest_n_that_reaches_the_target():
    n = P.seeds_for_power(1.0, 1.0)
    assert P.power(1.0, 1.0, n) >= 0.8 > P.power(1.0, 1.0, n - 1)
    assert n == 8  # textbook value: d = 1, one-sided 5%, 80% power
    assert P.seeds_for_power(3.0, 1.0, bound=0.5, min_n=3) == 3
    with pytest.raises(ValueError, match="must exceed"):
        P.seeds_for_power(0.5, 1.0, bound=0.5)


def test_mde_inverts_power():
    for n in (3, 5, 10, 30):
        e = P.mde(1.5, n, bound=0.2)
        assert P.power(e, 1.5, n, bound=0.2) == pytest.approx(0.8, abs=1e-6)
    assert P.mde(1.0, 10) < P.mde(1.0, 5)


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        P.power(1.0, 1.0, 1)
    with pytest.raises(ValueError):
        P.mde(-1.0, 5)


def test_sd_upper_limit_is_the_chi2_bound_and_covers_at_its_level():
    # 3 seeds (2 df) at 80%: x sqrt(2 / chi2_0.2(2)) = x 2.117, the factor the 3-seed plans use
    assert P.sd_upper_limit(1.0, 2) == pytest.approx(2.11694, abs=1e-5)
    assert P.sd_upper_limit(3.5528, 14) == pytest.approx(4.320, abs=1e-3)  # active-asr's pooled 16-seed SD
    rng = np.random.default_rng(3)
    sds = rng.normal(0.0, 1.0, (20_000, 3)).std(axis=1, ddof=1)  # true SD 1: the limit covers it ~80% of the time
    covered = np.mean([P.sd_upper_limit(s, 2) >= 1.0 for s in sds])
    assert abs(covered - 0.8) < 0.015
    with pytest.raises(ValueError, match="df"):
        P.sd_upper_limit(1.0, 0)
    with pytest.raises(ValueError, match="level"):
        P.sd_upper_limit(1.0, 2, level=1.0)


def test_mde_quantile_is_the_mde_at_the_sd_quantile():
    # the run's MDE is linear in its sample SD: its quantile is the MDE at the SD's chi2 quantile
    s_q = 2.0 * math.sqrt(stats.chi2.ppf(0.8, 9) / 9)
    assert P.mde_quantile(2.0, 10, bound=1.0, level=0.8) == pytest.approx(P.mde(s_q, 10, bound=1.0))
    assert P.mde_quantile(2.0, 10, level=0.5) < P.mde(2.0, 10) < P.mde_quantile(2.0, 10, level=0.8)


def test_seeds_for_mde_makes_a_runs_mde_below_the_sesoi_that_likely():
    """Simulated: at the planned n the reported MDE (at the sample SD) is <= SESOI in >= 80% of draws
    (- 3 MC standard errors); at the plain power plan's n it is not, so a run can miss by a hair."""
    sd, sesoi, bound = 4.1, 4.0, 1.0
    n_power, n = P.seeds_for_power(sesoi, sd, bound=bound), P.seeds_for_mde(sesoi, sd, bound=bound)
    assert (n_power, n) == (14, 17)
    assert P.mde_quantile(sd, n, bound=bound) <= sesoi < P.mde_quantile(sd, n - 1, bound=bound)
    rng = np.random.default_rng(3)
    draws = 2000

    def share(k):
        sds = rng.normal(0, sd, (draws, k)).std(axis=1, ddof=1)
        unit = P.mde(1.0, k, bound=0.0)  # MDE - bound per unit SD
        return float(np.mean(bound + unit * sds <= sesoi))

    assert share(n) >= 0.8 - 3 * (0.16 / draws) ** 0.5
    assert share(n_power) < 0.7  # about 0.6: a coin flip, a little better for the rounding of n
    with pytest.raises(ValueError, match="must exceed"):
        P.seeds_for_mde(1.0, 2.0, bound=1.0)


def test_plan_with_mde_assurance_takes_the_larger_n_and_records_it():
    from reprozoo.runtime.plan import Plan
    kw = dict(sesoi=4.0, sesoi_source="s", margin=1.0, pilot_sd=4.1, pilot_source="p")
    plain, sure = Plan(**kw), Plan(**kw, mde_assurance=0.8)
    assert (plain.seeds, sure.seeds) == (14, 17)
    assert sure.record(n_run=17)["mde_assurance"] == 0.8 and "mde_assurance" not in plain.record()
    with pytest.raises(ValueError, match="probability"):
        Plan(**kw, mde_assurance=1.5)


def test_the_plan_row_of_a_report_says_what_the_seeds_were_planned_for():
    from reprozoo.runtime.plan import Plan
    from reprozoo.runtime.report import headline_rows
    kw = dict(sesoi=4.0, sesoi_source="s", margin=1.0, pilot_sd=4.1, pilot_source="p")
    head = {"test": {"verdict": "held", "estimate": 5.0, "interval": [4.5, 5.5], "margin": 1.0, "n": 17},
            "plan": Plan(**kw, mde_assurance=0.8).record(n_run=17)}
    row = headline_rows(head)[-1]
    assert row["role"] == "plan" and row["n"] == 17
    assert "17 seeds for 80% power and an 80% chance that the run's MDE <= SESOI" in row["what"]
    head["plan"] = Plan(**kw).record(n_run=14)
    assert "chance" not in headline_rows(head)[-1]["what"]


def test_pooled_sd_weights_each_run_by_its_degrees_of_freedom():
    sd, df = P.pooled_sd([(3.0, 5), (6.0, 3)])  # (4 x 9 + 2 x 36) / 6 = 18
    assert (df, sd) == (6, pytest.approx(math.sqrt(18.0)))
    assert P.pooled_sd([(2.5, 10)]) == (2.5, 9)
    with pytest.raises(ValueError, match=">= 2 seeds"):
        P.pooled_sd([(1.0, 1)])
