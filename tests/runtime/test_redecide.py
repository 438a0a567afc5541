"""A finished run decided again from its stored trials under a changed rule: no trial runs again,
the source is untouched, the new verdict follows the new rule and the trials' provenance is kept."""

import json

import pytest

import tests.runtime.toy as toy  # registers `_toy_trials`
from reprozoo.cli import main
from reprozoo.errors import ConfigError, DataError, OutputExistsError
from reprozoo.runtime import verdict
from reprozoo.runtime.redecide import redecide_run
from reprozoo.runtime.runner import run_experiment


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def finished(tmp_path):
    out, data = run_experiment("_toy_trials", "smoke", out_dir=tmp_path / "run", progress=False)
    return out, data


def test_a_changed_rule_gives_a_new_verdict_from_the_same_trials(finished, tmp_path, monkeypatch):
    src, before = finished
    assert before["verdict"] == "held"
    source_files = _snapshot(src)
    trials_before = {k: v for k, v in source_files.items() if k.startswith("trials/")}
    original = verdict.superiority

    def stricter(*args, **kwargs):  # a rule change: a margin no toy gain can clear
        return original(*args, **{**kwargs, "margin": 1e6})

    monkeypatch.setattr(verdict, "superiority", stricter)
    out, data = redecide_run(src, tmp_path / "again", progress=False)
    assert data["verdict"] == "not held" and data["metrics"] == before["metrics"]
    assert _snapshot(src) == source_files  # the source run is untouched
    assert {k: v for k, v in _snapshot(out).items() if k.startswith("trials/")} == trials_before  # none ran
    prov = json.loads((out / "metrics.json").read_text())["provenance"]
    assert prov["date"] == before["provenance"]["date"] and prov["cpu_s"] == before["provenance"]["cpu_s"]
    assert set(prov["decided_again"]) == {"commit", "dirty", "date", "wall_s", "cpu_s"}
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_missing_trials_and_bad_folders_are_refused_before_anything_is_left(finished, tmp_path):
    src, _ = finished
    with pytest.raises(OutputExistsError, match="already exists"):
        redecide_run(src, src)
    with pytest.raises(DataError, match="no finished run"):
        redecide_run(tmp_path, tmp_path / "x")
    for stored in (src / "trials").glob("b__seed1*.json"):
        stored.unlink()  # one trial result lost: its trial would have to run again
    with pytest.raises(ConfigError, match="1 of 6 trials have no stored result"):
        redecide_run(src, tmp_path / "again", progress=False)
    assert not (tmp_path / "again").exists()


def _drop_setting(run, key):
    manifest = json.loads((run / "run.json").read_text())
    del manifest["config"][key]  # as if the run was made before the config had this setting
    (run / "run.json").write_text(json.dumps(manifest))


def test_a_setting_added_since_the_run_at_its_default_is_accepted_and_listed(finished, tmp_path, monkeypatch):
    src, before = finished
    _drop_setting(src, "fail_early")
    out, data = redecide_run(src, tmp_path / "again", progress=False)
    assert data["metrics"] == before["metrics"] and data["verdict"] == before["verdict"]
    assert data["provenance"]["decided_again"]["settings_added"] == ["fail_early=False"]
    assert "fail_early" not in json.loads((src / "run.json").read_text())["config"]  # the source is untouched
    # a new setting the preset moves away from its default is a real change: refused, nothing left behind
    _drop_setting(src, "fail_arm")
    monkeypatch.setitem(toy.TrialsToyConfig.PRESETS, "smoke", {"seeds": [0, 1, 2], "fail_arm": "nothing"})
    with pytest.raises(ConfigError, match="fail_arm None -> 'nothing'"):
        redecide_run(src, tmp_path / "again2", progress=False)
    assert not (tmp_path / "again2").exists()


def test_the_command_line(finished, tmp_path, capsys):
    src, _ = finished
    assert main(["redecide", str(src), "--out", str(tmp_path / "again")]) == 0
    assert "decided again: held" in capsys.readouterr().out
    assert main(["redecide", str(src), "--out", str(tmp_path / "again")]) == 2
    assert "already exists" in capsys.readouterr().err
