import json

import numpy as np
import pytest
from scipy import stats

from reprozoo.errors import ConfigError
from reprozoo.gmp.data import make_split, make_world
from reprozoo.gmp.experiment import (
    SINGLE_MARGIN,
    SINGLE_PLAN,
    TWO_PART_MARGIN,
    TWO_PART_PLAN,
    GmpConfig,
    decide,
)
from reprozoo.gmp.experiment_rule import PLATEAU_GAIN_MAX, late_gain
from reprozoo.runtime.power import seeds_for_mde, seeds_for_power
from reprozoo.runtime.runner import run_experiment
from reprozoo.runtime.verdict import HELD, INCONCLUSIVE, NOT_HELD


def _scores(pps, cpl, pps1g, whole, single=(0.6, 0.62, 0.61), cpl_single=(0.6, 0.61, 0.6)):
    def arm(two, sing):
        return {"two-part": list(two), "single": list(sing), "ramp": [0.5, 0.5, 0.5]}

    return {"pps": arm(pps, single), "cpl": arm(cpl, cpl_single), "pps1g": arm(pps1g, single),
            "whole": arm(whole, (0.1, 0.1, 0.1))}


GATES = {"oracle": [0.48, 0.52, 0.50], "nondominant": [0.3, 0.35, 0.4], "centre_span": [0.1, 0.12, 0.2],
         "centre_rule": [0.5, 0.52, 0.55]}


def test_rule_holds_when_pps_beats_the_strongest_alternative_and_ties_on_single():
    head, claims = decide(_scores((0.60, 0.62, 0.64), (0.40, 0.43, 0.41), (0.45, 0.47, 0.46), (0.2, 0.2, 0.21)),
                          **GATES)
    assert head.verdict == HELD and "strongest alternative PPS-1G" in head.evidence
    assert [c["verdict"] for c in claims] == [HELD, HELD, HELD, HELD, INCONCLUSIVE, HELD, HELD, HELD, HELD]  # ramp: zero difference
    assert {"positive_control", "mechanism", "negative_control"} <= set(claims[0]["test"])
    assert head.plan == TWO_PART_PLAN and claims[1]["test"]["plan"]["sesoi"] == SINGLE_PLAN.sesoi
    # single-block: differences 0, +0.01, +0.01 -> L = 0.0067 - t(0.95, 2) * 0.0058 / sqrt(3) = -0.0031 > -0.03
    single = claims[1]["test"]["test"]
    assert single["kind"] == "noninferiority" and single["interval"][0] == pytest.approx(-0.0031, abs=1e-4)


def test_rule_is_not_held_when_pps_loses_to_the_strongest_alternative():
    # PPS beats CPL clearly but not PPS-1G: the gain comes from the scheme, not the mixture
    head, claims = decide(_scores((0.60, 0.62, 0.64), (0.40, 0.43, 0.41), (0.63, 0.65, 0.66), (0.2, 0.2, 0.21)),
                          **GATES)
    assert head.verdict == NOT_HELD and claims[0]["verdict"] == NOT_HELD
    # gains over PPS-1G -0.03, -0.03, -0.02: mean -0.0267, SD 0.00577, U = mean + t(0.95, 2) SD / sqrt(3) < 0
    want = -0.08 / 3 + stats.t.ppf(0.95, 2) * np.std([-0.03, -0.03, -0.02], ddof=1) / np.sqrt(3)
    assert head.test.upper == pytest.approx(want) and head.test.upper < TWO_PART_MARGIN == 0
    vs = {c["claim"].split(" on two-part")[0]: c["verdict"] for c in claims if not c["headline"]}
    assert vs["PPS beats CPL"] == HELD and vs["PPS beats PPS-1G"] == NOT_HELD


def test_rule_is_inconclusive_when_the_interval_cannot_tell():
    # gains over PPS-1G of +0.02, +0.20, +0.05: the interval contains the margin; underpowered
    head, claims = decide(_scores((0.47, 0.67, 0.51), (0.40, 0.43, 0.41), (0.45, 0.47, 0.46), (0.2, 0.2, 0.21)),
                          **GATES)
    assert head.verdict == INCONCLUSIVE and head.test.lower < TWO_PART_MARGIN < head.test.upper
    assert "underpowered" in head.evidence


def test_positive_control_and_mechanism_gate_the_headline():
    scores = _scores((0.60, 0.62, 0.64), (0.40, 0.43, 0.41), (0.45, 0.47, 0.46), (0.2, 0.2, 0.21))
    # the oracle splice does not beat CPL: no power, whatever PPS does
    head, claims = decide(scores, **{**GATES, "oracle": [0.40, 0.42, 0.42]})
    assert head.verdict == INCONCLUSIVE and "no power (positive control not detected)" in head.evidence
    # the mixtures are not used (mean non-dominant importance 0.1 < 0.2): mechanism inactive
    head, claims = decide(scores, **{**GATES, "nondominant": [0.05, 0.1, 0.15]})
    assert head.verdict == INCONCLUSIVE and "mechanism inactive" in head.evidence
    assert head.gates["mechanism"][0].estimate == pytest.approx(0.1) and claims[-2]["verdict"] == NOT_HELD
    # the importance is split but the Gaussians sit on one spot (the pilot's case): mechanism inactive
    head, claims = decide(scores, **{**GATES, "centre_span": [0.004, 0.011, 0.006]})
    assert head.verdict == INCONCLUSIVE and "mechanism inactive" in head.evidence
    assert [t.verdict for t in head.gates["mechanism"]] == [HELD, NOT_HELD]


def test_late_gain_is_the_rise_of_the_best_validation_score_in_the_last_third():
    assert late_gain([0.47, 0.55, 0.65, 0.73, 0.76, 0.79]) == pytest.approx(0.79 - 0.73)  # first full run, CPL seed 0
    assert late_gain([0.4, 0.6, 0.6, 0.59, 0.58, 0.6]) == 0.0  # no rise: at its plateau
    assert late_gain([0.3, 0.5, 0.55]) == pytest.approx(0.05) and np.isnan(late_gain([0.3, 0.5]))


def test_rule_2_gates_both_parts_and_asks_every_arm_for_its_plateau():
    scores = _scores((0.60, 0.62, 0.64), (0.40, 0.43, 0.41), (0.45, 0.47, 0.46), (0.2, 0.2, 0.21),
                     single=(0.50, 0.52, 0.51))  # single-block events clearly worse
    flat = [[0.5, 0.6, 0.61, 0.61, 0.6, 0.61]] * 3
    rising = [[0.4, 0.5, 0.55, 0.6, 0.65, 0.7]] * 3  # +0.10 in the last third > 0.0299
    head, _ = decide(scores, **GATES, val_curves={"pps": flat, "cpl": flat, "pps1g": flat})
    assert head.verdict == NOT_HELD and PLATEAU_GAIN_MAX == TWO_PART_PLAN.sesoi
    head, claims = decide(scores, **GATES, val_curves={"pps": rising, "cpl": flat, "pps1g": flat})
    assert head.verdict == INCONCLUSIVE and [c["verdict"] for c in claims[-3:]] == [NOT_HELD, HELD, HELD]
    # an inactive mechanism makes the single-block part inconclusive too (rule 1 left it ungated)
    head, claims = decide(scores, **{**GATES, "centre_span": [0.004, 0.011, 0.006]})
    assert claims[1]["verdict"] == INCONCLUSIVE and head.verdict == INCONCLUSIVE


def test_plans_give_power_only_above_their_bounds():
    assert TWO_PART_MARGIN < TWO_PART_PLAN.sesoi and TWO_PART_PLAN.margin == TWO_PART_MARGIN
    n_power = seeds_for_power(TWO_PART_PLAN.sesoi, TWO_PART_PLAN.pilot_sd, bound=0.0)
    n_mde = seeds_for_mde(TWO_PART_PLAN.sesoi, TWO_PART_PLAN.pilot_sd, bound=0.0, assurance=0.8)
    assert TWO_PART_PLAN.planned_n == max(n_power, n_mde) == n_mde
    assert SINGLE_PLAN.planned_n == seeds_for_power(0.0, SINGLE_PLAN.pilot_sd, bound=-SINGLE_MARGIN)
    assert TWO_PART_PLAN.power_at(TWO_PART_PLAN.planned_n) >= 0.8
    # SESOI 0.0457 x 0.6543 = 0.0299; plan 2: pooled SD 0.0382 (pilot, record, repeat; 14 df) at its 80% upper
    # limit 0.0465 -> 17 seeds for power, 21 for an 80% chance of MDE <= SESOI; single-block 0.066 -> 0.0804, 46
    assert TWO_PART_PLAN.sesoi == pytest.approx(0.0299) and TWO_PART_PLAN.pilot_sd == 0.0465
    assert (n_power, TWO_PART_PLAN.planned_n, SINGLE_PLAN.planned_n) == (17, 21, 46)
    full = GmpConfig.from_preset("full")
    assert full.seeds == list(range(14, 35)) and full.n_test == 2000 and full.fit.epochs == 6


def test_rule_is_inconclusive_when_the_whole_video_control_does_not_lose():
    head, claims = decide(_scores((0.60, 0.62, 0.64), (0.40, 0.43, 0.41), (0.45, 0.47, 0.46), (0.45, 0.46, 0.47)),
                          **GATES)
    assert claims[0]["verdict"] == INCONCLUSIVE and head.verdict == INCONCLUSIVE
    assert "cannot separate arms" in head.evidence


def test_rule_fails_when_single_block_events_get_worse():
    head, claims = decide(_scores((0.60, 0.62, 0.64), (0.40, 0.43, 0.41), (0.45, 0.47, 0.46), (0.2, 0.2, 0.21),
                                  single=(0.50, 0.52, 0.51)), **GATES)
    assert claims[0]["verdict"] == HELD and claims[1]["verdict"] == NOT_HELD and head.verdict == NOT_HELD
    assert head.test.kind == "noninferiority" and head.test.upper < -SINGLE_MARGIN  # the deciding part


def test_bad_settings_are_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="arms must be distinct"):
        GmpConfig(arms=["pps", "svm"]).validate()
    with pytest.raises(ConfigError, match="arch.grid"):
        run_experiment("gmp-grounding", "smoke", overrides=["arch.grid=100"], out_dir=tmp_path / "r", progress=False)
    with pytest.raises(ConfigError, match="fit.vote"):
        run_experiment("gmp-grounding", "smoke", overrides=["fit.vote=max"], out_dir=tmp_path / "s", progress=False)
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()


def test_smoke_preset_runs_the_whole_path(tmp_path):
    out, m = run_experiment("gmp-grounding", "smoke", out_dir=tmp_path / "run", progress=False)
    assert m["verdict"] in (HELD, NOT_HELD, INCONCLUSIVE) and len(m["claims"]) == 12  # 9 + a plateau gate per arm
    assert m["headline"]["verdict"] == m["verdict"] and len(m["headline"]["negative_control"]) == 2
    assert len(m["headline"]["calibration"]) == 3
    assert len(m["headline"]["positive_control"]) == 1 and len(m["headline"]["mechanism"]) == 2
    assert m["headline"]["plan"]["sesoi"] in (TWO_PART_PLAN.sesoi, SINGLE_PLAN.sesoi)
    met = m["metrics"]
    for arm in ("pps", "cpl", "pps1g", "whole"):
        group = {"pps": "method", "whole": "control"}.get(arm, "baseline")
        for scope in ("overall", "single", "two-part", "ramp"):
            assert 0.0 <= met[f"{group}/{arm}_{scope}_R1@0.5"] <= 1.0
            assert met[f"{group}/{arm}_{scope}_R5@0.3"] >= met[f"{group}/{arm}_{scope}_R1@0.3"] - 1e-9 or arm == "whole"
    # the whole-video control's IoU is the GT length: its mIoU is the mean normalised GT length of
    # each seed's test split, and single blocks (<= 0.4 of the video) never reach IoU 0.5
    cfg = GmpConfig.from_preset("smoke")
    lengths = {t: [] for t in ("single", "two-part", "ramp")}
    for seed in cfg.seeds:
        test = make_split(make_world(cfg.data, seed=seed), cfg.n_test, seed=1000 * seed + 3)
        for t in lengths:
            lengths[t].append(np.mean([e - s for (s, e), k in zip(test.gt, test.types) if k == t]))
    for t, vals in lengths.items():
        assert met[f"control/whole_{t}_mIoU"] == pytest.approx(np.mean(vals), abs=1e-6)
    assert met["control/whole_single_R1@0.5"] == 0.0
    # the mechanism per trial and the rules' model-free check: the planted mixture scores 1 / 0
    assert 0 <= met["mechanism/pps_seed0_nondominant"] <= 1 and "mechanism/pps_seed2_rule_changed" in met
    assert met["control/planted_mixture_two-part_R1@0.5_density_rule"] == 1.0
    assert met["control/planted_mixture_two-part_R1@0.5_centre_rule"] == 0.0
    assert met["oracle/cpl_two-part_R1@0.5"] >= met["baseline/cpl_two-part_R1@0.5"]
    assert (out / "figures" / "r1_per_type.png").is_file() and (out / "figures" / "examples.png").is_file()
    assert (out / "trials" / "pps__seed0" / "grounder.safetensors").is_file()
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["claims"][0]["headline"] is True
