import json
import math

import pytest
from scipy import stats

from reprozoo.errors import ConfigError
from reprozoo.pflayer.experiment import (
    ACC_MARGIN,
    CONVERGED_TRAIN_ACC,
    FULL_SEEDS,
    PLAN,
    OpsConfig,
    decide,
    ordering_claims,
    sweep_claim,
)
from reprozoo.runtime import power
from reprozoo.runtime.runner import run_experiment

PARAMS = {"maxpool": 32_602, "depthwise": 33_834, "avgpool": 32_602, "identity": 32_602}
FAST = {"maxpool": {1: 1.0, 64: 10.0}, "depthwise": {1: 1.5, 64: 14.0}}


def _accs(maxpool, depthwise=(0.80, 0.81, 0.79), avgpool=(0.70, 0.71, 0.69), identity=(0.15, 0.14, 0.16)):
    return {"maxpool": list(maxpool), "depthwise": list(depthwise), "avgpool": list(avgpool),
            "identity": list(identity)}


def test_margin_is_fixed_in_code():
    assert ACC_MARGIN == 0.02


def test_rule_held_when_close_to_depthwise_with_fewer_params_and_faster():
    head = decide(_accs((0.795, 0.80, 0.785)), PARAMS, FAST)
    verdict, evidence = head
    assert verdict == "held", evidence
    assert "strongest cheap alternative 'depthwise'" in evidence and "negative control" in evidence
    # by hand: paired differences -0.005 / -0.01 / -0.005, mean -0.00667, sd 0.002887, t_{0.95,2} = 2.920
    # -> L = -0.00667 - 2.920 * 0.002887 / sqrt(3) = -0.0115 > -0.02
    lower = -0.02 / 3 - stats.t.ppf(0.95, 2) * 0.0028868 / math.sqrt(3)
    assert head.test.lower == pytest.approx(lower, abs=1e-6) and head.test.lower == pytest.approx(-0.0115, abs=1e-4)
    rec = head.record()
    assert rec["plan"]["planned_n"] == PLAN.planned_n == 5 and rec["test"]["kind"] == "noninferiority"
    assert rec["negative_control"][0]["verdict"] == "held"


def test_rule_not_held_when_max_pool_loses_to_the_strongest_alternative():
    # avg-pool is the strongest cheap alternative here, and max-pool trails it by 5 points on every seed
    accs = _accs((0.75, 0.76, 0.74), depthwise=(0.70, 0.71, 0.69), avgpool=(0.80, 0.81, 0.79))
    verdict, evidence = decide(accs, PARAMS, FAST)
    assert verdict == "not held" and "'avgpool'" in evidence


def test_rule_not_held_when_not_faster():
    slow = {"maxpool": {1: 1.0, 64: 15.0}, "depthwise": {1: 1.5, 64: 14.0}}
    head = decide(_accs((0.80, 0.81, 0.79)), PARAMS, slow)
    assert head.verdict == "not held" and "NOT faster" in head.evidence
    acc, params, latency = head.parts
    assert acc.lower > -ACC_MARGIN and acc.verdict == "held"  # the accuracy part alone is held
    assert params.verdict == "held" and latency.verdict == "not held" and head.test is latency  # the deciding part


def test_rule_inconclusive_when_identity_control_does_not_lose():
    accs = _accs((0.80, 0.81, 0.79), identity=(0.79, 0.80, 0.80))
    verdict, evidence = decide(accs, PARAMS, FAST)
    assert verdict == "inconclusive" and "cannot separate arms" in evidence and "(FAILED)" in evidence


def test_ordering_and_sweep_claims():
    accs = {"conv3x3": [0.9, 0.91, 0.9], "hybrid": [0.85, 0.86, 0.85], "depthwise": [0.8, 0.8, 0.81],
            **{k: v for k, v in _accs((0.80, 0.805, 0.80)).items() if k != "depthwise"}}
    got = {c["claim"]: c for c in ordering_claims(accs)}
    assert got["3x3 conv >= hybrid (within the margin)"]["verdict"] == "held"
    same = got["depthwise ~ max-pool (each within the margin of the other)"]
    assert same["verdict"] == "held" and same["test"]["kind"] == "equivalence"  # [-0.0146, +0.0112] inside ±0.02
    assert got["max-pool > avg-pool (by more than the margin)"]["verdict"] == "held"
    assert got["max-pool within the margin of the regular 3x3 conv"]["verdict"] == "not held"
    sweep = sweep_claim({0.5: _accs((0.6, 0.61, 0.6), depthwise=(0.7, 0.7, 0.71)), 1.0: _accs((0.8, 0.8, 0.8))})
    assert sweep["verdict"] == "not held"
    assert sweep_claim({1.0: _accs((0.8, 0.8, 0.8))}) is None


def test_equivalence_is_inconclusive_when_the_interval_straddles_the_margin():
    # max-pool - depthwise = -0.02 / +0.02 / +0.01: [-0.0318, +0.0385] is neither inside ±0.02 nor beyond it
    # (the old pair of 2-SE non-inferiority tests called this "not held")
    accs = {**_accs((0.78, 0.83, 0.80)), "depthwise": [0.80, 0.81, 0.79]}
    got = {c["claim"]: c["verdict"] for c in ordering_claims(accs)}
    assert got["depthwise ~ max-pool (each within the margin of the other)"] == "inconclusive"


@pytest.mark.parametrize("override, msg", [
    (["ops=[maxpool,depthwise]"], "must include"), (["ops=[maxpool,depthwise,identity,sep]"], "unknown spatial op"),
    (["width_mult=0"], "width_mult"), (["sweep_widths=[1.0]"], "must not repeat width_mult"),
    (["spacing_max=12"], "spans"), (["epochs=0"], "epochs"), (["lr=-1"], "lr > 0"),
    (["latency_batches=[]"], "latency"), (["sweep_seeds=[0,0]"], "sweep_seeds must be distinct"),
])
def test_bad_config_values(override, msg):
    with pytest.raises(ConfigError, match=msg):
        OpsConfig.from_preset("smoke", override)


def test_quick_preset_is_the_sized_and_recalibrated_setting():
    cfg = OpsConfig.from_preset("quick")
    assert (cfg.n_train, cfg.epochs, cfg.noise, cfg.seeds, cfg.sweep_seeds) == (2000, 12, 0.1, [0, 1, 2], [0, 1])
    assert cfg.ops == ["conv3x3", "hybrid", "depthwise", "maxpool", "avgpool", "identity"]
    assert (cfg.sweep_widths, cfg.sweep_ops) == ([0.5, 2.0], ["depthwise", "maxpool"])


def test_smoke_preset_runs_the_whole_path(tmp_path):
    out, data = run_experiment("pflayer-ops", "smoke", out_dir=tmp_path / "run", progress=False)
    m = data["metrics"]
    assert m["method/maxpool_params"] == 32_602 and m["baseline/depthwise_params"] == 33_834
    assert m["baseline/conv3x3_macs"] == 2_200_832 and m["method/maxpool_macs"] == 1_316_096
    for op in ("conv3x3", "hybrid", "depthwise", "maxpool", "avgpool", "identity"):
        key = f"{'method' if op == 'maxpool' else 'baseline'}/{op}_acc"
        assert 0.0 <= m[key] <= 1.0 and m[key.replace("_acc", "_latency_b4_ms")] > 0
    assert data["verdict"] == "inconclusive"  # one seed: the rule needs three
    assert {c["claim"] for c in data["claims"]} >= {"depthwise ~ max-pool (each within the margin of the other)"}
    assert len(list((out / "trials").glob("*.json"))) == 6 + 2
    assert {p.name for p in (out / "figures").iterdir()} == {"acc_vs_latency.png", "acc_vs_params.png",
                                                              "width_sweep.png"}
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["verdict"] == data["verdict"]
    assert stored["headline"]["verdict"] == "inconclusive" and stored["headline"]["plan"]["planned_n"] == 5
    assert stored["headline"]["parts"][0]["n"] == 1 and stored["claims"][0]["test"]["parts"][0]["kind"] == "noninferiority"


def test_plan_seeds_come_from_the_power_function():
    # pilot differences -0.066 / -0.041 / -0.054: SD 0.0125; non-inferiority at a true gap of 0 vs bound -0.02
    assert PLAN.pilot_sd == pytest.approx(stats.tstd([-0.066, -0.041, -0.054]), abs=1e-4)
    assert PLAN.planned_n == power.seeds_for_power(0.0, 0.0125, bound=-0.02) == 5
    assert PLAN.power_at(5) >= 0.8 > PLAN.power_at(4)
    assert FULL_SEEDS == 8 and OpsConfig.from_preset("full").seeds == list(range(8))
    full = OpsConfig.from_preset("full")
    assert (full.epochs, full.n_train, full.sweep_widths) == (12, 2000, [])
    assert set(full.ops) == {"maxpool", "depthwise", "avgpool", "identity"}


def test_positive_control_is_depthwise_vs_identity_and_gates_the_headline():
    held = decide(_accs((0.795, 0.80, 0.785)), PARAMS, FAST)
    pos = held.record()["positive_control"][0]
    assert pos["verdict"] == "held" and pos["estimate"] == pytest.approx(0.80 - 0.15, abs=1e-9)
    # depthwise no better than identity: the benchmark cannot see a known effect -> inconclusive, "no power"
    blind = decide(_accs((0.795, 0.80, 0.785), depthwise=(0.15, 0.16, 0.14)), PARAMS, FAST)
    assert blind.verdict == "inconclusive" and "no power" in blind.evidence


def test_convergence_gate_uses_the_headline_arms_train_accuracy():
    accs = _accs((0.795, 0.80, 0.785))
    fitted = {"maxpool": [0.99, 0.98, 0.99], "depthwise": [1.0, 1.0, 1.0], "avgpool": [0.5] * 3, "identity": [0.1] * 3}
    head = decide(accs, PARAMS, FAST, train_accs=fitted)
    assert head.verdict == "held" and [t["name"] for t in head.record()["calibration"]] == [
        "maxpool train accuracy", "depthwise train accuracy"]
    slow = {**fitted, "maxpool": [0.6, 0.5, 0.55]}
    head = decide(accs, PARAMS, FAST, train_accs=slow)
    assert head.verdict == "inconclusive" and "not calibrated" in head.evidence
    assert CONVERGED_TRAIN_ACC == 0.95
