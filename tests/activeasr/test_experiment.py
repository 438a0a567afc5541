import json

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import stats

from reprozoo.activeasr.experiment import (
    ARMS,
    CR_TAU,
    FULL_SEEDS,
    MARGIN_CER,
    MIN_PSEUDO_SHARE,
    PLAN,
    ActiveASRConfig,
    decide,
)
from reprozoo.errors import ConfigError, UnknownNameError
from reprozoo.runtime.power import mde_quantile, power, seeds_for_mde, seeds_for_power
from reprozoo.runtime.runner import run_experiment
from reprozoo.runtime.verdict import HELD, INCONCLUSIVE, NOT_HELD


def _results(cers: dict[str, list[list[float]]], kept: float | None = None) -> dict:
    """arm -> per seed -> CER per round (labelled 40, 80, 120); ``kept`` = the logged pseudo-labelled
    share of the unlabelled batch (only the CR / PL arms have one)."""
    def point(arm, r, c):
        out = {"cer": c, "labelled": 40 * (r + 1)}
        if kept is not None:
            out["kept"] = kept if arm in ("random_cr", "al_cr", "al_pl") and r > 0 else 0.0
        return out

    return {arm: [{"points": [point(arm, r, c) for r, c in enumerate(seed)]} for seed in rows]
            for arm, rows in cers.items()}


BASE = {
    "random_sup": [[50, 40, 30], [52, 41, 31], [51, 39, 29]],
    "al_sup": [[50, 38, 28], [52, 39, 29], [51, 37, 28]],
    "random_cr": [[45, 35, 25], [46, 36, 26], [45, 34, 25]],
    "al_cr": [[45, 30, 20], [46, 31, 21], [45, 29, 20]],
    "al_pl": [[49, 37, 27], [50, 38, 28], [50, 36, 27]],
    "upper": [[20, 15, 10], [21, 15, 11], [20, 14, 10]],
    "control": [[50, 48, 47], [52, 50, 49], [51, 49, 48]],
}


def test_rule_held_on_a_clear_gain():
    head, claims = decide(_results(BASE))
    assert head.verdict == claims[0]["verdict"] == HELD
    assert "strongest alternative 'al_sup'" in head.evidence and "(passed)" in head.evidence
    assert "at 80 labelled" in head.evidence and "at 120 labelled" in head.evidence  # every budget point
    # no pseudo-label log: no mechanism gate
    assert set(head.gates) == {"negative_control", "positive_control", "calibration"}
    assert claims[0]["test"]["plan"]["planned_n"] == PLAN.planned_n
    subs = {c["claim"]: c["verdict"] for c in claims}
    assert subs["augmented CR beats plain pseudo-labelling without augmentation (AL selection)"] == HELD


def test_rule_not_held_when_the_method_loses_to_the_strongest_alternative_at_one_budget():
    cers = dict(BASE, al_cr=[[45, 30, 29], [46, 31, 29], [45, 29, 29]])  # final point: no better than al_sup
    head, _ = decide(_results(cers))
    assert head.verdict == NOT_HELD and "at 120 labelled" in head.test.evidence  # the deciding part
    # CER reductions vs al_sup [28, 29, 28]: -1, 0, -1 -> mean -2/3, sd 1/sqrt(3): U = -2/3 + t * (1/3) < 1
    d = np.array([-1.0, 0.0, -1.0])
    assert head.test.upper == pytest.approx(d.mean() + stats.t.ppf(0.95, 2) * d.std(ddof=1) / np.sqrt(3))
    assert head.test.upper == pytest.approx(0.3066, abs=1e-4) and head.test.upper < MARGIN_CER


def test_rule_inconclusive_when_a_budget_point_cannot_tell():
    # at 120 labelled the reductions 2, 9, 0.5 give an interval around the margin
    cers = dict(BASE, al_cr=[[45, 30, 26], [46, 31, 20], [45, 29, 27.5]])
    head, _ = decide(_results(cers))
    assert head.verdict == INCONCLUSIVE and head.test.lower < MARGIN_CER < head.test.upper


def test_rule_inconclusive_when_the_control_does_not_lose():
    cers = dict(BASE, control=[[50, 30, 20], [52, 31, 21], [51, 29, 20]])  # as good as the random arms
    head, claims = decide(_results(cers))
    assert head.verdict == INCONCLUSIVE and "cannot separate arms" in head.evidence
    assert next(c for c in claims if c["claim"].startswith("negative control"))["verdict"] != HELD


def test_rule_inconclusive_when_the_baseline_is_not_calibrated():
    cers = {k: [[min(100.0, c + 70) for c in seed] for seed in v] for k, v in BASE.items()}
    head, _ = decide(_results(cers))
    assert head.verdict == INCONCLUSIVE and "not calibrated" in head.evidence
    assert head.gates["calibration"][0].verdict == NOT_HELD


def test_mechanism_gate_on_the_pseudo_labelled_share():
    assert MIN_PSEUDO_SHARE == 0.25
    head, _ = decide(_results(BASE, kept=0.2))  # CR on a fifth of the pool: a clear gain is not credited to it
    assert head.verdict == INCONCLUSIVE and "mechanism inactive" in head.evidence
    assert head.gates["mechanism"][0].estimate == pytest.approx(0.2)
    assert decide(_results(BASE, kept=0.4))[0].verdict == HELD


def test_positive_control_is_upper_vs_control_and_must_be_detected():
    head, claims = decide(_results(BASE))
    pos = head.gates["positive_control"][0]
    # final CER: control 47, 49, 48 vs upper 10, 11, 10 -> paired reductions 37, 38, 38
    assert pos.verdict == HELD and pos.estimate == pytest.approx((37 + 38 + 38) / 3) and pos.n == 3
    assert claims[-1]["claim"].startswith("positive control") and claims[-1]["verdict"] == HELD
    # upper no better than control: the known-true effect is not seen, so the headline cannot be trusted
    flat = dict(BASE, upper=[[50, 48, 47], [52, 50, 49], [51, 49, 48]])
    head, _ = decide(_results(flat))
    assert head.verdict == INCONCLUSIVE and head.gates["positive_control"][0].verdict != HELD
    assert "positive control" in head.evidence and "(FAILED)" in head.evidence
    # the positive-control arm is not one of the negative-control comparisons
    assert all("upper" not in t.name for t in head.gates["negative_control"])


def test_plan_seeds_from_the_power_function():
    n_power = seeds_for_power(PLAN.sesoi, PLAN.pilot_sd, bound=PLAN.margin)
    n = seeds_for_mde(PLAN.sesoi, PLAN.pilot_sd, bound=PLAN.margin, assurance=0.8)
    assert PLAN.planned_n == n == max(n, n_power) and FULL_SEEDS == max(n, 8)
    assert power(PLAN.sesoi, PLAN.pilot_sd, FULL_SEEDS, bound=PLAN.margin) >= 0.8
    assert mde_quantile(PLAN.pilot_sd, FULL_SEEDS, bound=PLAN.margin) <= PLAN.sesoi  # run's MDE <= SESOI in 80%
    full, quick = ActiveASRConfig.from_preset("full"), ActiveASRConfig.from_preset("quick")
    # design 4: the 63-seed pooled SD (4.59) at its 80% upper limit, and an 80% chance of MDE <= SESOI
    assert (n_power, n, FULL_SEEDS, PLAN.pilot_sd) == (19, 23, 23, 5.01)
    assert PLAN.record()["mde_assurance"] == 0.8
    assert full.seeds == list(range(80, 103)) and quick.seeds == [0, 1, 2]  # disjoint from the pilot's 0-62
    for cfg in (full, quick):  # the pilot's threshold, CR from round 1
        assert cfg.train.tau == CR_TAU == 0.65 and cfg.train.start_step == cfg.al.steps_per_round == 100
    assert (full.corpus, full.al, full.train, full.model) == (quick.corpus, quick.al, quick.train, quick.model)
    assert full.arms == ["random_sup", "al_sup", "al_cr", "upper", "control"] and len(quick.arms) == len(ARMS)


def test_fewer_than_three_seeds_is_inconclusive():
    two = {k: v[:2] for k, v in BASE.items()}
    assert decide(_results(two))[0].verdict == INCONCLUSIVE


def test_config_checks_happen_before_any_work():
    with pytest.raises(ConfigError, match="exceeds the pool"):
        ActiveASRConfig.from_preset("smoke", ["al.rounds=10"])
    with pytest.raises(UnknownNameError, match="unknown arm"):
        ActiveASRConfig.from_preset("smoke", ["arms=al_cr,random_sup,al_sup,control,nope"])
    with pytest.raises(ConfigError, match="arms must include"):
        ActiveASRConfig.from_preset("smoke", ["arms=al_cr,random_sup"])
    with pytest.raises(ConfigError, match="train.tau"):
        ActiveASRConfig.from_preset("smoke", ["train.tau=2"])
    with pytest.raises(UnknownNameError, match="unknown model"):
        ActiveASRConfig.from_preset("smoke", ["model=resnet"])


def test_smoke_run_and_transcribe_command(tmp_path, capsys):
    torch.set_num_threads(1)
    out, data = run_experiment("active-asr", "smoke", out_dir=tmp_path / "run", progress=False)
    m = data["metrics"]
    assert data["verdict"] == INCONCLUSIVE and len(data["claims"]) == 7  # one seed: the rule needs three
    assert data["headline"]["plan"]["planned_n"] == PLAN.planned_n and "mechanism" in data["headline"]
    assert m["method/pseudo_share_round1"] == data["headline"]["mechanism"][0]["estimate"]
    # the pseudo-labelled share per round, for the arms that use the unlabelled pool only
    assert {k for k in m if "pseudo_share" in k} == {f"{a}/pseudo_share_round{r}" for a in ("method", "random_cr", "al_pl")
                                                     for r in (0, 1)}
    assert m["baseline/labelled_round0"] == 8 and m["baseline/labelled_round1"] == 16
    assert m["method/labelled_round1"] == 16 and m["control/labelled_round1"] == 8 and m["upper/labelled_round0"] == 32
    for arm in ("baseline", "method", "al_pl", "upper", "control"):
        assert 0 <= m[f"{arm}/cer_round1"] and 0 <= m[f"{arm}/wer_round1"]
    assert (out / "figures" / "cer_vs_hours.png").exists() and (out / "figures" / "test_transcripts.png").exists()
    assert len(list((out / "trials").glob("*.json"))) == len(ARMS)
    # a stored trial equals a rerun of the same spec (resume would reuse it)
    stored = json.loads((out / "trials" / "al_cr__seed0.json").read_text())["result"]
    assert stored["points"][-1]["cer"] == pytest.approx(m["method/cer_round1"])

    from reprozoo.cli import main

    ckpt = out / "trials" / "al_cr__seed0" / "model.safetensors"
    assert ckpt.exists()
    t = np.arange(22050) / 22050
    tone = 0.3 * np.sin(2 * np.pi * 300 * t)
    sf.write(tmp_path / "stereo.wav", np.stack([tone, tone], 1), 22050)  # any rate, stereo: mixed down
    sf.write(tmp_path / "silent.wav", np.zeros(1600), 16000)
    capsys.readouterr()
    assert main(["transcribe", "--checkpoint", str(ckpt), "--json", str(tmp_path / "stereo.wav")]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["file"].endswith("stereo.wav") and isinstance(line["text"], str)
    assert main(["transcribe", "--checkpoint", str(ckpt), str(tmp_path / "stereo.wav"), str(tmp_path / "silent.wav")]) == 2
    err = capsys.readouterr().err
    assert "silent.wav" in err and "1 of 2 file(s)" in err
    assert main(["transcribe", "--checkpoint", str(tmp_path / "none.pt"), str(tmp_path / "stereo.wav")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_real_data_manifests_are_checked_up_front(tmp_path):
    with pytest.raises(ConfigError, match="set both pool_data and test_data"):
        ActiveASRConfig.from_preset("smoke", [f"pool_data={tmp_path}"])
    with pytest.raises(ConfigError, match="no such manifest or folder"):
        ActiveASRConfig.from_preset("smoke", [f"pool_data={tmp_path / 'a.jsonl'}", f"test_data={tmp_path}"])
