import numpy as np
import pytest
from scipy import stats

from reprozoo.errors import ConfigError
from reprozoo.nara.costs import equivalent_calls
from reprozoo.nara.experiment import (
    CALL_MARGIN,
    CALL_PLAN,
    CONTROL,
    TIME_PLAN,
    NaraConfig,
    claim_text,
    decide,
    quality_verdict,
)
from reprozoo.runtime.runner import run_experiment
from reprozoo.runtime.verdict import HELD, INCONCLUSIVE, NOT_HELD


def _ev(calls: dict, wall: dict, gap: float = 0.002, mmd_gap: float = 0.0, length: int = 64, c_cost: float = 0.5):
    """One crafted trial result: per sampler family its test calls / CPU time and quality gaps."""
    test = {}
    costs = {"confidence_over_mother": c_cost, "prior_over_mother": 0.2}
    for fam in calls:
        exact = fam in ("sequential", "jacobi", "jacobi+prior")
        test[fam] = {"setting": "-", "calls": calls[fam], "time_ratio": wall[fam] / wall["sequential"],
                     "eq_calls": equivalent_calls(fam, calls[fam], costs),
                     "nll_gap": 0.0 if exact else gap, "nll": 20.0 * (1 + (0.0 if exact else gap)),
                     "mmd_gap": 0.0 if exact else mmd_gap, "deviation": 0.0, "equal_quality": True}
    return {"test": test, "spread": {"mmd": 0.01}, "length": length, "chosen": {"nara": "tau=0.9"}, "costs": costs}


def _seeds(nara, jp, control, jac=6.0, wall_scale=1.0, **kw):
    out = []
    for i, eps in enumerate((0.0, 0.1, -0.1)):
        calls = {"sequential": 64.0, "jacobi": jac + eps, "jacobi+prior": jp + eps, "nara": nara + eps,
                 CONTROL: control + eps}
        wall = {k: wall_scale * v + 0.01 * i for k, v in calls.items()}
        out.append(_ev(calls, wall, **kw))
    return out


def _head(claims):
    return [c for c in claims if c["headline"]]


def test_headline_held_when_nara_beats_the_strongest_alternative_and_the_control_loses():
    head, claims, metrics = decide({"digits": _seeds(nara=3.0, jp=4.6, control=6.5)})
    (h,) = _head(claims)
    assert h["verdict"] == head.verdict == HELD
    assert "strongest alternative 'jacobi+prior'" in h["evidence"]  # 4.6 calls beats exact Jacobi's 6
    assert metrics["method/digits_calls_best_alternative_over_nara"] == pytest.approx(4.6 / 3.0)
    assert metrics["method/digits_nara_speedup"] == pytest.approx(64 / 3.0)
    # the plan is declared relative to the alternative's mean and recorded in calls
    assert head.plan.margin == pytest.approx(CALL_MARGIN * 4.6) and head.plan.sesoi == pytest.approx(0.10 * 4.6)
    assert head.plan.planned_n == CALL_PLAN.planned_n


def test_headline_inconclusive_when_the_saving_is_noisy():
    evs = _seeds(nara=3.0, jp=4.6, control=6.5)
    for ev, saving in zip(evs, (0.5, 0.05, 0.4)):  # calls saved against Jacobi from Q, per seed
        ev["test"]["nara"]["calls"] = ev["test"]["jacobi+prior"]["calls"] - saving
    head, claims, _ = decide({"digits": evs})
    # mean 0.3167, SD 0.2363: L = 0.3167 - t(0.95, 2) * 0.2363 / sqrt(3) = -0.082 < 0.23 (5% of 4.6) < U
    d = np.array([0.5, 0.05, 0.4])
    assert head.test.lower == pytest.approx(d.mean() - stats.t.ppf(0.95, 2) * d.std(ddof=1) / np.sqrt(3))
    assert head.test.lower == pytest.approx(-0.0816, abs=1e-4) and head.test.upper > CALL_MARGIN * 4.6
    assert head.verdict == INCONCLUSIVE and "underpowered" in head.evidence


def test_headline_not_held_when_nara_loses_to_the_strongest_alternative():
    # NARA (5.0) beats exact Jacobi (6.0) but not Jacobi from the prior (4.6); the control loses
    head, claims, _ = decide({"digits": _seeds(nara=5.0, jp=4.6, control=8.0)})
    (h,) = _head(claims)
    assert h["verdict"] == head.verdict == NOT_HELD
    # the sub-claim against sequential still holds: 64 / 5 = 12.8x fewer calls
    assert claims[1]["verdict"] == HELD


def test_headline_inconclusive_when_the_control_does_not_lose():
    head, claims, _ = decide({"digits": _seeds(nara=3.0, jp=4.6, control=3.0)})
    (h,) = _head(claims)
    assert h["verdict"] == INCONCLUSIVE and "cannot separate arms" in h["evidence"]


def test_fewer_calls_but_more_cpu_time_is_not_held():
    evs = _seeds(nara=3.0, jp=4.6, control=6.5)
    for ev in evs:  # NARA's iterations cost twice as much (a slow confidence predictor)
        ev["test"]["nara"]["time_ratio"] = 2.5 * ev["test"]["jacobi+prior"]["time_ratio"]
        ev["test"][CONTROL]["time_ratio"] = 4.0 * ev["test"]["jacobi+prior"]["time_ratio"]  # the control still loses
    head, claims, _ = decide({"digits": evs})
    (h,) = _head(claims)
    assert h["verdict"] == NOT_HELD and "CPU time" in h["evidence"]
    assert head.test.name == "CPU time per batch / sequential's" and head.plan.pilot_sd == pytest.approx(
        TIME_PLAN.pilot_sd * head.plan.margin / TIME_PLAN.margin)  # the deciding part and its plan


def test_positive_control_is_exact_jacobi_on_digits_and_tolerance_on_sines():
    head, _, _ = decide({"digits": _seeds(nara=3.0, jp=4.6, control=6.5)})
    calls_part = head.parts[0].parts[0]
    (pos,) = calls_part.gates["positive_control"]
    assert pos.verdict == HELD and pos.estimate == pytest.approx(64.0 - 6.0)  # exact Jacobi's 6 calls vs 64
    evs = _seeds(nara=3.0, jp=4.6, control=6.5, length=48)
    for ev in evs:
        ev["test"]["tolerance"] = dict(ev["test"]["jacobi"], calls=40.0, nll_gap=0.0, mmd_gap=0.0)
        ev["test"]["sequential"]["calls"] = 48.0
    (pos,) = decide({"sine": evs})[0].parts[0].parts[0].gates["positive_control"]
    assert pos.estimate == pytest.approx(8.0) and "tolerance vs sequential" in pos.evidence
    evs = _seeds(nara=3.0, jp=4.6, control=6.5)
    for ev in evs:  # a benchmark in which even exact Jacobi cannot be told from sequential: no power
        ev["test"]["jacobi"]["calls"] = 64.0
    head, _, _ = decide({"digits": evs})
    assert head.verdict == INCONCLUSIVE and "benchmark has no power" in head.evidence


def test_mechanism_gate_reads_c_cost_in_mother_calls():
    head, claims, metrics = decide({"digits": _seeds(nara=3.0, jp=4.6, control=6.5)})
    assert head.verdict == HELD and metrics["mechanism/digits_confidence_over_mother"] == pytest.approx(0.5)
    (mech,) = head.parts[0].parts[1].gates["mechanism"]
    assert mech.verdict == HELD and mech.estimate == pytest.approx(0.5)
    head, claims, _ = decide({"digits": _seeds(nara=3.0, jp=4.6, control=6.5, c_cost=1.5)})
    (h,) = _head(claims)
    assert h["verdict"] == INCONCLUSIVE and "mechanism inactive" in h["evidence"]
    # net of C's cost (3 calls x 1.5 + Q 0.2 = 7.7 equivalent calls vs 4.8) the saving is gone
    net = next(c for c in claims if "net of its own cost" in c["claim"])
    assert net["verdict"] == NOT_HELD
    assert net["test"]["estimate"] == pytest.approx((4.6 + 0.2) - (3.0 * 2.5 + 0.2))


def test_equivalent_calls_price_c_and_q_in_mother_calls():
    costs = {"confidence_over_mother": 0.5, "prior_over_mother": 0.25}
    assert equivalent_calls("jacobi", 6.0, costs) == 6.0
    assert equivalent_calls("jacobi+prior", 4.0, costs) == 4.25
    assert equivalent_calls("nara", 4.0, costs) == 4.0 + 2.0 + 0.25
    assert equivalent_calls("nara", 4.0, costs, reprior=True) == 4.0 + 2.0 + 1.0 + 0.25


def test_quality_does_not_degrade_is_an_equivalence_test():
    _, claims, _ = decide({"digits": _seeds(nara=3.0, jp=4.6, control=6.5, gap=0.002)})
    tost = next(c for c in claims if "TOST" in c["claim"])
    assert tost["verdict"] == HELD and tost["test"]["kind"] == "equivalence"
    _, claims, _ = decide({"digits": _seeds(nara=3.0, jp=4.6, control=6.5, gap=0.03)})
    assert next(c for c in claims if "TOST" in c["claim"])["verdict"] == NOT_HELD


def test_quality_rule_nll_and_mmd():
    assert quality_verdict(_seeds(3.0, 4.6, 6.5, gap=0.009), "nara")[0] == HELD
    assert quality_verdict(_seeds(3.0, 4.6, 6.5, gap=0.011), "nara")[0] == NOT_HELD  # NLL gap > 1%
    assert quality_verdict(_seeds(3.0, 4.6, 6.5, mmd_gap=0.02), "nara")[0] == NOT_HELD  # > sequential spread
    (h,) = _head(decide({"digits": _seeds(nara=3.0, jp=4.6, control=6.5, gap=0.02)})[1])
    assert h["verdict"] == NOT_HELD  # fast but not of equal quality


def test_fewer_than_three_seeds_is_inconclusive():
    (h,) = _head(decide({"digits": _seeds(nara=3.0, jp=4.6, control=6.5)[:2]})[1])
    assert h["verdict"] == INCONCLUSIVE


def test_every_task_must_hold():
    head, claims, _ = decide({"digits": _seeds(nara=3.0, jp=4.6, control=6.5),
                              "sine": _seeds(nara=5.0, jp=4.6, control=8.0)})
    assert [c["verdict"] for c in _head(claims)] == [HELD, NOT_HELD] and head.verdict == NOT_HELD
    assert "digits (held)" in head.evidence and "sine (not held)" in head.evidence


def test_config_validation_and_locked_rule_keys():
    with pytest.raises(ConfigError, match=r"threshold must lie in \(0, 1\]"):
        NaraConfig.from_preset("smoke", ["thresholds=[0.9,1.5]"])
    with pytest.raises(ConfigError, match="tasks must be"):
        NaraConfig.from_preset("smoke", ["tasks=[text]"])
    with pytest.raises(ConfigError, match="tolerances"):
        NaraConfig.from_preset("smoke", ["tolerances=[0]"])
    for key in ("margin=-1", "margin=inf", "nll_margin=0.5", "call_margin=0"):
        with pytest.raises(ConfigError, match="cannot be overridden: rule constants"):
            NaraConfig.from_preset("smoke", [key], locked=True)
    # no CPU-only refusal: the device is the runtime's business
    assert NaraConfig.from_preset("smoke", ["device=cuda"]).device == "cuda"


def test_claim_text_describes_the_tasks_run():
    assert "binarised digits and noisy sines" in claim_text(["digits", "sine"])
    one = claim_text(["digits"])
    assert "on binarised digits, over" in one and "sines" not in one and "tolerance" not in one


def test_smoke_preset_runs_end_to_end(tmp_path):
    out, data = run_experiment("nara", "smoke", out_dir=tmp_path / "run",
                               overrides=["executor.kind=serial", "tasks=[digits,sine]"])
    assert len(data["claims"]) == 10 and sum(c["headline"] for c in data["claims"]) == 2
    assert data["headline"]["verdict"] == data["verdict"] and "test" in data["headline"]
    m = data["metrics"]
    assert m["baseline/digits_sequential_calls"] == 64.0 and m["baseline/sine_sequential_calls"] == 16.0
    assert 1.0 <= m["baseline/digits_jacobi_calls"] <= 64.0
    assert m["baseline/digits_jacobi_deviation"] == 0.0  # exact Jacobi reproduces the sequential samples
    assert m["baseline/digits_jacobi_prior_deviation"] == 0.0
    assert m["baseline/digits_jacobi_nll_gap_pct"] == 0.0
    assert m["baseline/digits_sequential_time_ratio"] == 1.0 and m["mechanism/digits_confidence_over_mother"] > 0
    for name in ("speed_quality", "digits_samples", "sine_samples"):
        assert (out / "figures" / f"{name}.png").is_file()
    assert len(list((out / "trials").glob("*.json"))) == 6  # task x seed on the trial executor
    assert "noisy sines" in data["claim"]


def test_smoke_claim_follows_the_tasks(tmp_path):
    _, data = run_experiment("nara", "smoke", out_dir=tmp_path / "run", seeds=[0, 1, 2],
                             overrides=["executor.kind=serial", "tasks=[digits]"])
    assert data["claim"] == claim_text(["digits"]) and len(data["claims"]) == 5


def test_presets_resolve():
    quick = NaraConfig.from_preset("quick")
    assert quick.seeds == [0, 1, 2] and quick.tasks == ["digits", "sine"]
    paper = NaraConfig.from_preset("paper")
    assert len(paper.seeds) == 5 and paper.sine.n_train == 8000 and paper.digits.confidence.epochs == 40
    smoke = NaraConfig.from_preset("smoke", ["sine.observed=4", "rejected=reprior"])
    assert tuple(smoke.sine.dilations) == (1, 2)
    with pytest.raises(ConfigError, match="sine.observed"):
        NaraConfig.from_preset("smoke", ["sine.observed=24"])
    with pytest.raises(ConfigError, match=r"digits.observed must lie in \[0, 64\)"):
        NaraConfig.from_preset("smoke", ["digits.observed=64"])
    with pytest.raises(ConfigError, match="confidence_kind"):
        NaraConfig.from_preset("smoke", ["digits.confidence_kind=huge"])


def test_validation_and_test_prefixes_must_be_disjoint():
    with pytest.raises(ConfigError, match=r"sine.n_test must be >= 2 \* eval_samples = 600"):
        NaraConfig.from_preset("quick", ["sine.n_test=400"])
    assert NaraConfig.from_preset("quick", ["tasks=[digits]", "sine.n_test=10"]).tasks == ["digits"]
