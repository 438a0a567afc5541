import json

import pytest

import tests.runtime.toy  # noqa: F401  (registers the `_toy` experiment)
from reprozoo.cli import main


def _err_line(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_unknown_experiment_lists_known_ones(capsys):
    assert main(["run", "nosuch"]) == 2
    err = _err_line(capsys)
    assert err.startswith("error: unknown experiment 'nosuch'") and "_toy" in err


def test_bad_override_and_bad_preset(capsys, tmp_path):
    assert main(["run", "_toy", "--set", "nosuch=1", "--out", str(tmp_path / "a")]) == 2
    assert "unknown config key 'nosuch'; valid keys: seeds, device, threads, data_root, executor.kind, executor.workers, executor.address, executor.cpus_per_trial, executor.gpus_per_trial, offset" in _err_line(capsys)
    assert main(["run", "_toy", "--set", "steps=two", "--out", str(tmp_path / "a")]) == 2
    assert "'steps' expects an integer, got 'two'" in _err_line(capsys)
    assert main(["run", "_toy", "--preset", "nope", "--out", str(tmp_path / "a")]) == 2
    assert "unknown preset 'nope'" in _err_line(capsys)
    assert main(["run", "_toy", "--seeds", "1,x"]) == 2
    assert "--seeds expects comma-separated integers" in _err_line(capsys)
    assert main(["frobnicate"]) == 2
    assert "No such command" in _err_line(capsys)
    assert not (tmp_path / "a").exists()  # bad input never creates or corrupts an output folder


def test_run_writes_the_contract_and_refuses_to_clobber(capsys, tmp_path):
    out = tmp_path / "run"
    assert main(["run", "_toy", "--preset", "quick", "--set", "offset=2.5", "--out", str(out)]) == 0
    data = json.loads((out / "metrics.json").read_text())
    assert data["experiment"] == "_toy" and data["preset"] == "quick" and data["seeds"] == [0, 1, 2]
    assert data["paper"] == "Nobody et al. (test only)"
    assert data["verdict"] == "held"
    assert data["metrics"] == {"method/value": 3.5, "baseline/value": 1.0}
    assert "wins 3/3" in data["evidence"]
    assert "offset: 2.5" in (out / "config.yaml").read_text()
    assert (out / "figures" / "curve.png").stat().st_size > 1000
    report = (out / "report.md").read_text()
    assert "**Verdict:** held" in report and "![curve](figures/curve.png)" in report
    capsys.readouterr()
    assert main(["run", "_toy", "--out", str(out)]) == 2
    assert "already holds a finished run of _toy; pass --overwrite" in _err_line(capsys)
    assert main(["run", "_toy", "--out", str(out), "--overwrite", "--set", "offset=-1", "--seeds", "4,5,6"]) == 0
    data = json.loads((out / "metrics.json").read_text())
    assert data["verdict"] == "not held" and data["seeds"] == [4, 5, 6]


def test_smoke_preset_with_one_seed_is_inconclusive(tmp_path):
    assert main(["run", "_toy", "--preset", "smoke", "--out", str(tmp_path / "s")]) == 0
    assert json.loads((tmp_path / "s" / "metrics.json").read_text())["verdict"] == "inconclusive"


def test_run_all_builds_an_index(tmp_path, capsys):
    assert main(["run", "all", "--preset", "smoke", "--out", str(tmp_path)]) == 0
    page = (tmp_path / "index.html").read_text()
    assert "_toy" in page and "data:image/png;base64," in page and "adding an offset" in page
    assert main(["report", str(tmp_path)]) == 0


def test_list_shows_experiments(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "_toy" in out and "claim: adding an offset raises a number" in out


@pytest.mark.parametrize("argv", [["run", "_toy", "--resume"]])
def test_resume_needs_out(argv, capsys):
    assert main(argv) == 2
    assert "--resume needs --out" in _err_line(capsys)


def test_run_all_keeps_going_past_a_failing_experiment(tmp_path, capsys, monkeypatch):
    from dataclasses import replace

    from reprozoo.runtime import registry

    toy = registry.get_experiment("_toy")

    def explode(cfg, ctx):
        raise RuntimeError("boom")

    broken = replace(toy, name="_broken", run=explode)
    monkeypatch.setattr(registry, "list_experiments", lambda: [broken, toy])
    monkeypatch.setitem(registry._EXPERIMENTS, "_broken", broken)
    assert main(["run", "all", "--preset", "smoke", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "FAILED: RuntimeError: boom" in captured.err
    assert "1 experiment(s) failed: _broken" in captured.err
    assert (tmp_path / "_toy" / "metrics.json").exists() and (tmp_path / "index.html").exists()


def test_bench_options_are_checked_and_passed(tmp_path, capsys, monkeypatch):
    from reprozoo.runtime import registry

    seen = {}

    def fake(quick: bool = False, size: int = 8):
        seen.update(quick=quick, size=size)
        return {"rows": [{"model": "x", "ms": 1.5}], "ratios": {"x/y": 0.5}, "goal": "x faster", "met": True}

    monkeypatch.setitem(registry._BENCHMARKS, "_fake", registry.BenchmarkSpec("_fake", "a fake", fake))
    assert main(["bench", "_fake", "--quick", "--option", "size=32", "--out", str(tmp_path)]) == 0
    assert seen == {"quick": True, "size": 32}
    out = capsys.readouterr().out
    assert "ratio x/y: 0.5" in out and "goal: x faster -> met" in out
    assert json.loads((tmp_path / "_fake.json").read_text())["ratios"] == {"x/y": 0.5}
    assert main(["bench", "_fake", "--option", "colour=red", "--out", str(tmp_path)]) == 2
    assert "takes options ['size'], got ['colour']" in _err_line(capsys)
