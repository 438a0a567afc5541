import math

import numpy as np
import pytest
from scipy import stats

from reprozoo.errors import ConfigError
from reprozoo.genas.correlation import (
    bootstrap_ci,
    correlation_report,
    kendall,
    regret,
    spearman,
    top_k_agreement,
)
from reprozoo.genas.experiment import PROXIES, TARGETS, TAU_MARGIN, TAU_PLAN, CorrelationConfig, decide
from reprozoo.runtime.runner import run_experiment


def test_rank_statistics_on_hand_computed_cases():
    assert kendall([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)
    assert kendall([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))  # tau-b with a tie
    assert spearman([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(0.8)
    assert kendall([1, np.nan, 3], [1, 5, 2], nan_policy="omit") == pytest.approx(1.0)  # NaN pairs dropped
    assert math.isnan(kendall([1, 1, 1], [1, 2, 3]))
    assert top_k_agreement([4, 3, 2, 1], [1, 4, 3, 2], 2) == 0.5
    assert regret([0.1, 0.9, 0.5], [0.7, 0.6, 0.8]) == pytest.approx(0.2)
    lo, hi = bootstrap_ci(kendall, [(np.arange(30), np.arange(30) + 0.0)], n_boot=50)
    assert lo == pytest.approx(1.0) and hi == pytest.approx(1.0)
    rep = correlation_report({"a": [1, 2, 3, 4, 5]}, [5, 4, 3, 2, 1], k=2, n_boot=20)
    assert rep["a"]["kendall"] == pytest.approx(-1) and rep["a"]["topk"] == 0 and rep["a"]["regret"] == 4


def _taus(flat, acc, loss, rand=(0.0, 0.01, -0.01), oracle=(0.6, 0.62, 0.65)):
    base = {p: [0.0, 0.0, 0.0] for p in PROXIES}
    base.update({"flatness": list(flat), "val_acc": list(acc), "val_loss": list(loss), "random": list(rand),
                 "oracle": list(oracle)})
    return {t: {p: list(v) for p, v in base.items()} for t in TARGETS}


CI_OK = {t: (-0.1, 0.1) for t in TARGETS}


def test_rule_held_when_flatness_beats_both():
    head, claims = decide(_taus([0.5, 0.55, 0.6], [0.1, 0.15, 0.2], [0.3, 0.32, 0.35]), CI_OK)
    assert head.verdict == "held" and [c["verdict"] for c in claims] == ["held", "held"]
    # the gains over val_loss are 0.20, 0.23, 0.25: L = 0.2267 - t(0.95, 2) * 0.0252 / sqrt(3) = 0.184 > 0.05
    d = np.array([0.2, 0.23, 0.25])
    assert head.test.verdict == "held"
    low = d.mean() - stats.t.ppf(0.95, 2) * d.std(ddof=1) / np.sqrt(3)
    assert low == pytest.approx(0.1842, abs=1e-4) and low > TAU_MARGIN
    assert head.gates["negative_control"][0].verdict == "held" and head.plan == TAU_PLAN


def test_rule_not_held_when_the_loss_term_explains_the_gain():
    head, claims = decide(_taus([0.5, 0.55, 0.6], [0.1, 0.15, 0.2], [0.5, 0.56, 0.6]), CI_OK)
    assert head.verdict == "not held" and "explained by the loss" in head.evidence
    assert [c["verdict"] for c in claims] == ["held", "not held"]
    # the deciding part: gains over val_loss 0, -0.01, 0 -> U = -0.0033 + t * 0.00577 / sqrt(3) = 0.0064 < 0.05
    assert head.test.upper == pytest.approx(-0.01 / 3 + stats.t.ppf(0.95, 2) * np.std([0, -0.01, 0], ddof=1) / np.sqrt(3))
    assert head.test.upper < TAU_MARGIN


def test_rule_not_held_when_flatness_loses_to_the_strongest_alternative():
    head, _ = decide(_taus([0.2, 0.25, 0.3], [0.1, 0.15, 0.2], [0.5, 0.55, 0.6]), CI_OK)
    assert head.verdict == "not held"


def test_rule_inconclusive_when_the_intervals_cannot_tell():
    # gains over val_acc of 0.10, 0.02, 0.18: the interval [-0.035, +0.235] contains the margin
    head, claims = decide(_taus([0.5, 0.42, 0.68], [0.4, 0.4, 0.5], [0.1, 0.1, 0.1]), CI_OK)
    assert head.verdict == "inconclusive" and claims[0]["verdict"] == "inconclusive"
    assert (head.test.lower, head.test.upper) == pytest.approx((-0.0349, 0.2349), abs=1e-4)
    assert "underpowered" in head.evidence  # the run's MDE is far above the plan's SESOI


def test_headline_faces_the_strongest_alternative_on_each_target():
    taus = _taus([0.5, 0.55, 0.6], [0.1, 0.15, 0.2], [0.3, 0.32, 0.35])
    taus["shift"]["val_acc"], taus["shift"]["val_loss"] = [0.45, 0.5, 0.55], [0.0, 0.05, 0.1]
    head, claims = decide(taus, CI_OK)
    assert "strongest alternative (test: val_loss, shift: val_acc)" in head.evidence
    # shift: gains over val_acc 0.05, 0.05, 0.05 -> L = U = 0.05, not above the margin: inconclusive; test holds
    assert [p.verdict for p in head.parts] == ["held", "inconclusive"] and head.verdict == "inconclusive"
    # the weaker alternatives are the sub-claims: (a) vs val_acc on both targets, (b) vs val_loss on both
    assert [c["verdict"] for c in claims] == ["inconclusive", "held"]


def test_rule_inconclusive_when_the_random_control_correlates():
    head, _ = decide(_taus([0.5, 0.55, 0.6], [0.1, 0.15, 0.2], [0.3, 0.32, 0.35]),
                     {"test": (0.05, 0.3), "shift": (-0.1, 0.1)})
    assert head.verdict == "inconclusive" and "cannot separate arms" in head.evidence
    assert [g.verdict for g in head.gates["negative_control"]] == ["not held", "held"]


def test_fewer_than_three_seeds_is_inconclusive():
    taus = {t: {p: v[:2] for p, v in d.items()} for t, d in _taus([0.5, 0.55, 0.6], [0.1, 0.15, 0.2],
                                                                 [0.3, 0.32, 0.35]).items()}
    assert decide(taus, CI_OK)[0].verdict == "inconclusive"


def test_config_checks_before_any_work():
    for bad, match in ((["n_genotypes=2"], "n_genotypes"), (["recal_protocol=ema"], "recal_protocol"),
                       (["sigmas=[0.003,0.001]"], "increasing"), (["n_train=5"], "n_train"),
                       (["top_k=100"], "top_k"), (["supernet.lr=-1"], "lr")):
        with pytest.raises(ConfigError, match=match):
            CorrelationConfig.from_preset("smoke", bad)


def test_smoke_preset_runs_the_whole_path(tmp_path):
    out, data = run_experiment("genas-correlation", "smoke", out_dir=tmp_path,
                               overrides=["executor.kind=serial"], progress=False)
    m = data["metrics"]
    assert data["verdict"] == "inconclusive"  # one seed: the rule needs three
    assert data["headline"]["plan"]["planned_n"] == TAU_PLAN.planned_n
    assert len(data["headline"]["negative_control"]) == 2  # the random score, test and shifted test
    assert m["data/n_architectures"] == 6
    assert all(-1 <= m[f"{g}/{p}_tau_test"] <= 1 for p in PROXIES
               for g in ("method", "baseline", "control") if f"{g}/{p}_tau_test" in m)
    # the official score ranks exactly like the validation loss on these 6 cells
    assert m["method/flatness_tau_test"] == pytest.approx(m["baseline/val_loss_tau_test"])
    assert len(list((tmp_path / "trials").glob("*.json"))) == 1 + 6
    assert (tmp_path / "figures" / "kendall_tau_per_proxy.png").exists()
    assert (tmp_path / "figures" / "proxy_vs_ground_truth.png").exists()
    assert [c["headline"] for c in data["claims"]][:1] == [True]
