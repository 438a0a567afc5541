import json
import math

import numpy as np
import pytest
from scipy import stats

from reprozoo.eclips.data import lodo_split
from reprozoo.eclips.experiment import PLAN, V_REL_MARGIN, ECLIPSConfig, decide
from reprozoo.eclips.experiment_rule import (
    FUSION_ENTROPY_MAX,
    entropy_ratio,
    mechanism_gate,
    positive_control,
)
from reprozoo.errors import ConfigError
from reprozoo.runtime.runner import run_experiment

ARMS = ["single", "wide", "ensemble_mean", "eclips_nosampler", "eclips", "control"]


def _numbers(**over):
    """Per-seed (3 seeds) Variance / HTER / AUC per arm; ECLIPS clearly best unless overridden."""
    v = {"single": [0.010, 0.011, 0.012], "wide": [0.010, 0.012, 0.011], "ensemble_mean": [0.006, 0.0062, 0.0065],
         "eclips_nosampler": [0.004, 0.0042, 0.0041], "eclips": [0.003, 0.0031, 0.0032], "control": [0.0, 0.0, 0.0]}
    h = {a: [0.20, 0.21, 0.19] for a in ARMS}
    h["control"] = [0.5, 0.5, 0.5]
    auc = {a: [0.85, 0.86, 0.84] for a in ARMS}
    auc["control"] = [0.51, 0.49, 0.50]
    for key, value in over.items():
        table, arm = key.split("__")
        {"v": v, "h": h, "auc": auc}[table][arm] = value
    return v, h, auc


ACTIVE = dict(entropy=[0.95, 0.96, 0.94], mc_test=True, iters=400)  # the mechanism gate passes


def test_rule_held_when_eclips_wins():
    head, claims = decide(*_numbers(v__wide=[0.0101, 0.0110, 0.0119]), ARMS, **ACTIVE)
    assert head.verdict == "held" and "strongest alternative by Variance: 'ensemble_mean'" in head.evidence
    # by hand: Variance drop vs ensemble_mean 0.0030 / 0.0031 / 0.0033, mean 0.0031333, sd 0.00015275,
    # t_{0.95,2} = 2.920 -> L = 0.0031333 - 2.920 * 0.00015275 / sqrt(3) = 0.002876 > 0.1 x 0.0062333
    assert head.test.lower == pytest.approx(0.0094 / 3 - stats.t.ppf(0.95, 2) * 0.00015275 / math.sqrt(3), rel=1e-4)
    assert head.test.margin == pytest.approx(V_REL_MARGIN * 0.0187 / 3)
    rec = head.record()
    assert rec["plan"]["planned_n"] == PLAN.planned_n and len(rec["negative_control"]) == 2
    assert rec["calibration"][0]["verdict"] == "held" and rec["positive_control"][0]["verdict"] == "held"
    assert [t["verdict"] for t in rec["mechanism"]] == ["held"] * 3
    by = {c["claim"][:3]: c for c in claims}
    # (a) wide - single = +0.0001 / 0 / -0.0001: [-0.00017, +0.00017] inside +-0.0011 (10% of single's Variance)
    assert by["(a)"]["verdict"] == "held" and by["(a)"]["test"]["kind"] == "equivalence"
    assert by["(b)"]["verdict"] == "held" and by["(c)"]["verdict"] == "held"
    assert by["(d)"]["verdict"] == "not held"  # equal HTER: a gain of 0.02 is excluded


def test_scaling_claim_needs_equivalence_not_a_failed_superiority_test():
    # wide - single = 0 / +0.001 / -0.001: wide does not beat single, but [-0.0017, +0.0017] is wider than
    # +-0.0011, so "no reduction" is not shown either: inconclusive (the old flipped test said "held")
    _, claims = decide(*_numbers(), ARMS, **ACTIVE)
    assert next(c for c in claims if c["claim"].startswith("(a)"))["verdict"] == "inconclusive"


def test_rule_not_held_when_the_strongest_alternative_wins():
    # the plain deep ensemble has lower Variance than ECLIPS: not held, although ECLIPS beats the single backbone
    head, claims = decide(*_numbers(v__ensemble_mean=[0.0025, 0.0026, 0.0027]), ARMS, **ACTIVE)
    assert head.verdict == "not held"
    by = {c["claim"][:3]: c["verdict"] for c in claims}
    assert by["(b)"] == "held" and by["(c)"] == "not held"
    # lower Variance but a higher HTER than the alternative is not held either (both parts must hold)
    head, _ = decide(*_numbers(h__eclips=[0.30, 0.31, 0.29]), ARMS, **ACTIVE)
    variance, hter = head.parts
    assert head.verdict == "not held" and variance.lower > variance.margin  # the Variance part alone held
    assert hter.verdict == "not held" and head.test is hter  # the part that decides the verdict


def test_rule_inconclusive_when_the_control_does_not_lose():
    head, _ = decide(*_numbers(auc__control=[0.80, 0.82, 0.81]), ARMS, **ACTIVE)
    assert head.verdict == "inconclusive" and "cannot separate arms" in head.evidence
    assert "NOT inside the band [0.4, 0.6]" in head.evidence
    # and when the baseline is not calibrated (single backbone at chance)
    head, _ = decide(*_numbers(auc__single=[0.52, 0.5, 0.55]), ARMS, **ACTIVE)
    assert head.verdict == "inconclusive" and "not calibrated" in head.evidence
    # no control arm at all: inconclusive, said so
    head, _ = decide(*_numbers(), [a for a in ARMS if a != "control"], **ACTIVE)
    assert head.verdict == "inconclusive" and "no negative control was run" in head.evidence
    assert decide(*_numbers(), ["eclips", "control"], **ACTIVE)[0] is None  # no alternative arm


def test_rule_scaling_reduces_variance_is_reported():
    _, claims = decide(*_numbers(v__wide=[0.005, 0.0052, 0.0051]), ARMS, **ACTIVE)
    # single - wide = 0.005 / 0.0058 / 0.0069: the lower bound 0.0043 is beyond the 0.0011 margin
    assert next(c for c in claims if c["claim"].startswith("(a)"))["verdict"] == "not held"


def test_positive_control_and_mechanism_gate_make_the_headline_inconclusive():
    # the mean-fusion ensemble no better than the single backbone: the benchmark has no power, whatever ECLIPS does
    head, _ = decide(*_numbers(v__ensemble_mean=[0.0099, 0.0112, 0.0118]), ARMS, **ACTIVE)
    assert head.verdict == "inconclusive" and "no power (positive control not detected)" in head.evidence
    # positive-control wiring: method = ensemble_mean, other = single, margin 10% of single's mean Variance
    v = _numbers()[0]
    pos = positive_control(v)
    drops = np.array(v["single"]) - np.array(v["ensemble_mean"])  # 0.004 / 0.0048 / 0.0055
    assert pos.verdict == "held" and pos.estimate == pytest.approx(drops.mean())
    assert pos.margin == pytest.approx(V_REL_MARGIN * 0.011) and "vs single" in pos.evidence
    # fusion weights at uniform (the old quick run: largest weight 0.253-0.269) -> mechanism inactive
    flat = [entropy_ratio([0.26, 0.25, 0.25, 0.24])] * 3
    head, _ = decide(*_numbers(), ARMS, entropy=flat, mc_test=True, iters=400)
    assert head.verdict == "inconclusive" and "mechanism inactive" in head.evidence
    # MC dropout off at test or too few iterations: inactive as well, even with non-uniform weights
    for kw in ({"mc_test": False, "iters": 400}, {"mc_test": True, "iters": 100}):
        gate = mechanism_gate([0.9, 0.91, 0.92], **kw)
        assert gate[0].verdict == "held" and any(t.verdict == "not held" for t in gate[1:])
    assert mechanism_gate(None, mc_test=True, iters=400)[0].verdict == "not held"


def test_entropy_ratio_by_hand():
    assert entropy_ratio([0.25] * 4) == pytest.approx(1.0) and math.isnan(entropy_ratio(None))
    # [0.4, 0.2, 0.2, 0.2]: H = -(0.4 ln 0.4 + 3 x 0.2 ln 0.2) = 1.33218, / ln 4 = 0.96096
    assert entropy_ratio([0.4, 0.2, 0.2, 0.2]) == pytest.approx(0.96096, abs=1e-5)
    assert entropy_ratio([0.4, 0.2, 0.2, 0.2]) < FUSION_ENTROPY_MAX < entropy_ratio([0.269, 0.25, 0.245, 0.236])


def test_lodo_split_has_disjoint_identities_and_held_out_camera():
    s = lodo_split("cam2", size=16, frames_train=2, frames_test=3, n_train_ids=4, n_val_ids=2, n_test_ids=3)
    train_ids, val_ids, test_ids = (set(x.identity.tolist()) for x in (s.train, s.val, s.test))
    assert train_ids == {0, 1, 2, 3} and val_ids == {4, 5} and test_ids == {6, 7, 8}
    assert set(s.test.domain.tolist()) == {2} and 2 not in set(s.val.domain.tolist())
    assert set(s.train.domain.tolist()) == {0, 1, 2}  # renumbered source cameras 0, 1, 3
    assert len(s.train) == 3 * 4 * 3 * 2 and len(s.test) == 3 * 3 * 3


def test_config_errors():
    with pytest.raises(ConfigError, match="targets must be"):
        ECLIPSConfig.from_preset("smoke", ["targets=camX"])
    with pytest.raises(ConfigError, match="unknown arm 'big'"):
        ECLIPSConfig.from_preset("smoke", ["arms=single,big,eclips"])
    with pytest.raises(ConfigError, match="<= 100"):
        ECLIPSConfig.from_preset("smoke", ["n_train_ids=95"])
    with pytest.raises(ConfigError, match="fit.eta"):
        ECLIPSConfig.from_preset("smoke", ["fit.eta=2"])


def test_bad_override_writes_nothing(tmp_path):
    with pytest.raises(ConfigError):
        run_experiment("eclips-fas", "smoke", overrides=["k=1"], out_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_smoke_preset_end_to_end(tmp_path):
    out, data = run_experiment("eclips-fas", "smoke", out_dir=tmp_path / "run", progress=False)
    assert data["verdict"] == "inconclusive"  # one seed: the rules need three
    assert "fewer than 3 seeds" in data["evidence"] and data["headline"]["plan"]["planned_n"] == PLAN.planned_n
    m = data["metrics"]
    for arm in ARMS:
        group = "method" if arm == "eclips" else ("control" if arm == "control" else "baseline")
        assert 0.0 <= m[f"{group}/{arm}_auc"] <= 1.0 and m[f"{group}/{arm}_variance"] >= 0.0
        assert 0.0 <= m[f"{group}/{arm}_hter"] <= 1.0
    assert m["baseline/single_params"] == 1_758 and m["baseline/wide_params"] == 6_370
    assert m["method/eclips_params"] == 2 * 1_758 + 2 and m["baseline/ensemble_mean_params"] == 2 * 1_758
    for fig in ("frame_probability_strips", "roc_per_domain", "bias_variance_bars"):
        assert (out / "figures" / f"{fig}.png").exists()
    assert (out / "eclips.safetensors").exists() and len(list((out / "trials").glob("*.json"))) == 6
    trial = json.loads((out / "trials" / "eclips__seed0__targetcam3.json").read_text())["result"]
    assert trial["refreshes"] == 1 and trial["video"]["threshold_source"] == "val_eer"
    assert trial["video"]["n_videos"] == 12 and trial["video"]["n_frames"] == 48
    assert np.isclose(sum(trial["fusion_weights"]), 1.0)
    # the mechanism per trial: fusion weights and their entropy ratio (6 iterations: still about uniform)
    assert m["method/eclips_fusion_entropy_cam3_seed0"] == pytest.approx(entropy_ratio(trial["fusion_weights"]))
    assert m["method/eclips_fusion_entropy_cam3_seed0"] > 0.99 and "method/eclips_fusion_w1_cam3_seed0" in m
    assert "baseline/eclips_nosampler_fusion_entropy_cam3_seed0" in m and "mechanism inactive" in data["evidence"]
    assert len(data["claims"]) == 5 and data["claims"][0]["headline"]


def test_presets_reach_the_planned_power():
    # quick (the demo) and full share the benchmark fixed before the pilot: held-out cam0, 400 iterations, MC dropout
    # at test; full runs the seeds the power function asks for at the pilot SD; the pilot's seeds are disjoint
    quick, full, pilot = (ECLIPSConfig.from_preset(p) for p in ("quick", "full", "pilot"))
    for cfg in (quick, full, pilot):
        assert cfg.targets == ["cam0"] and cfg.fit.iters == 400 and cfg.mc_test and cfg.test_mc_samples == 4
        assert cfg.width == 8 and cfg.k == 4 and cfg.frames_test == 8 and cfg.fit.refresh_every == 100
    assert quick.seeds == [0, 1, 2] and quick.arms == ARMS and full.arms == ARMS
    assert len(full.seeds) == PLAN.planned_n >= 3 and PLAN.power_at(len(full.seeds)) >= 0.8
    assert not set(pilot.seeds) & set(full.seeds)
    assert pilot.arms == ["single", "ensemble_mean", "eclips", "control"]
    assert ECLIPSConfig.from_preset("paper").targets == ["cam0", "cam1", "cam2", "cam3"]
