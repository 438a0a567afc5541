import json

import numpy as np
import pytest
import soundfile as sf
import torch

from reprozoo.activeasr.experiment import ARMS, ActiveASRConfig, decide
from reprozoo.errors import ConfigError, UnknownNameError
from reprozoo.runtime.runner import run_experiment
from reprozoo.runtime.verdict import HELD, INCONCLUSIVE, NOT_HELD


def _results(cers: dict[str, list[list[float]]]) -> dict:
    """arm -> per seed -> CER per round (labelled 40, 80, 120)."""
    return {arm: [{"points": [{"cer": c, "labelled": 40 * (r + 1)} for r, c in enumerate(seed)]} for seed in rows]
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
    verdict, evidence, claims = decide(_results(BASE))
    assert verdict == HELD
    assert "strongest alternative 'al_sup'" in evidence and "lost as required" in evidence
    subs = {c["claim"]: c["verdict"] for c in claims}
    assert subs["augmented CR beats plain pseudo-labelling without augmentation (AL selection)"] == HELD


def test_rule_not_held_when_the_method_loses_to_the_strongest_alternative_at_one_budget():
    cers = dict(BASE, al_cr=[[45, 30, 29], [46, 31, 29], [45, 29, 29]])  # final point: no better than al_sup
    verdict, evidence, _ = decide(_results(cers))
    assert verdict == NOT_HELD


def test_rule_inconclusive_when_the_control_does_not_lose():
    cers = dict(BASE, control=[[50, 30, 20], [52, 31, 21], [51, 29, 20]])  # as good as the random arms
    verdict, evidence, claims = decide(_results(cers))
    assert verdict == INCONCLUSIVE and "DID NOT LOSE" in evidence
    assert claims[-1]["verdict"] != HELD


def test_rule_inconclusive_when_the_baseline_is_not_calibrated():
    cers = {k: [[min(100.0, c + 70) for c in seed] for seed in v] for k, v in BASE.items()}
    verdict, evidence, _ = decide(_results(cers))
    assert verdict == INCONCLUSIVE and "calibration" in evidence


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
    assert data["verdict"] in (HELD, NOT_HELD, INCONCLUSIVE) and len(data["claims"]) == 6
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

    ckpt = out / "trials" / "al_cr__seed0" / "model.pt"
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
