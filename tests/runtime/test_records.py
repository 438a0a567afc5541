"""Runs of record as data (results/<experiment>/<preset>.json) and the README/docs text made from them."""

import json
from pathlib import Path

import pytest

import tests.runtime.toy  # noqa: F401  (registers the `_toy` experiment)
from reprozoo.cli import main
from reprozoo.errors import ConfigError, DataError
from reprozoo.runtime import records as R
from reprozoo.runtime.runner import run_experiment

REPO = Path(__file__).resolve().parents[2]


def _repo_like(root: Path, package: str = "toy") -> None:
    (root / "docs" / "experiments").mkdir(parents=True)
    (root / "README.md").write_text(f"# x\n\n{R.BEGIN}\nold table\n{R.END}\n\nrest\n")
    (root / "docs" / f"{package}.md").write_text("# toy\n\nthe user guide: no results block\n")
    (root / "docs" / "experiments" / f"{package}.md").write_text(f"# toy\n\nprose\n\n{R.BEGIN}\n{R.END}\n")


def test_a_run_records_provenance_and_its_headline(tmp_path):
    out, data = run_experiment("_toy", "quick", out_dir=tmp_path / "run", progress=False)
    prov = data["provenance"]
    assert set(prov) >= {"commit", "date", "machine", "threads", "load_avg_start", "wall_s", "cpu_s"}
    assert prov["wall_s"] >= 0 and prov["cpu_s"] >= 0 and prov["threads"] >= 1
    head = data["headline"]
    # seeds 0, 1, 2 and offset 1: every paired difference is 1, so the interval is [1, 1] > margin 0.5
    assert head["verdict"] == data["verdict"] == "held" and head["test"]["interval"] == [1.0, 1.0]
    assert head["plan"]["planned_n"] == 5 and head["test"]["n"] == 3
    assert "Headline test" in (out / "report.md").read_text()


def test_record_then_write_and_check_docs(tmp_path):
    out, _ = run_experiment("_toy", "quick", out_dir=tmp_path / "run", progress=False)
    path = R.record_run(out, tmp_path / "results")
    assert path == tmp_path / "results" / "_toy" / "quick.json"
    records = R.load_records(tmp_path / "results")
    assert records["_toy"]["quick"]["verdict"] == "held"
    root = tmp_path / "repo"
    _repo_like(root)
    packages = {"_toy": "toy"}
    page = root / "docs" / "experiments" / "toy.md"  # a package's results live on its experiment page
    assert R.stale_docs(root, records, packages) == [root / "README.md", page]
    assert len(R.write_docs(root, records, packages)) == 2
    assert R.stale_docs(root, records, packages) == []
    readme = (root / "README.md").read_text()
    assert "| _toy | quick | **held** | 1 [+1, +1] | 0.5 |" in readme and "old table" not in readme
    assert readme.endswith("\n\nrest\n")
    assert "#### `_toy`" in page.read_text()
    assert (root / "docs" / "toy.md").read_text() == "# toy\n\nthe user guide: no results block\n"
    # an earlier run kept under a label is rendered beside the run of record
    old = R.record_run(out, tmp_path / "results", label="before-fix")
    assert old.name == "quick--before-fix.json" and old.parent.name == "history"
    hist = R.load_history(tmp_path / "results")
    assert hist["_toy"][0]["label"] == "before-fix" and R.load_records(tmp_path / "results") == records
    R.write_docs(root, records, packages, hist)
    assert "Earlier runs of record" in page.read_text()
    with pytest.raises(ConfigError, match="label"):
        R.record_run(out, tmp_path / "results", label="a b")
    readme = (root / "README.md").read_text()
    # a number edited by hand in the generated block is caught
    (root / "README.md").write_text(readme.replace("**held**", "**not held**"))
    assert R.stale_docs(root, records, packages, hist) == [root / "README.md"]


def test_a_repeat_on_disjoint_seeds_is_kept_beside_the_run_of_record(tmp_path):
    res = tmp_path / "results"
    first, _ = run_experiment("_toy", "quick", out_dir=tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match="no run of record"):
        R.record_run(first, res, replication=True)
    R.record_run(first, res)
    with pytest.raises(ConfigError, match=r"seeds \[0, 1, 2\] are the record's"):
        R.record_run(first, res, replication=True)
    other, _ = run_experiment("_toy", "quick", seeds=[7, 8, 9], out_dir=tmp_path / "b", progress=False)
    path = R.record_run(other, res, replication=True)
    assert path == res / "_toy" / "replications" / "quick--seeds-7-9.json"
    assert json.loads(path.read_text())["replicates"]["record_seeds"] == [0, 1, 2]
    changed, _ = run_experiment("_toy", "quick", seeds=[10, 11, 12], overrides=["offset=2.0"],
                                out_dir=tmp_path / "c", progress=False)
    with pytest.raises(ConfigError, match="its overrides differ"):
        R.record_run(changed, res, replication=True)
    # the executor is not part of the rule: a repeat run with other workers is still a repeat
    workers, _ = run_experiment("_toy", "quick", seeds=[13, 14, 15], overrides=["executor.workers=3"],
                                out_dir=tmp_path / "d", progress=False)
    assert R.record_run(workers, res, replication=True).name == "quick--seeds-13-15.json"
    with pytest.raises(ConfigError, match="not both"):
        R.record_run(other, res, label="x", replication=True)
    records, reps = R.load_records(res), R.load_replications(res)
    assert list(records["_toy"]) == ["quick"] and sorted(d["seeds"] for d in reps["_toy"]) == [[7, 8, 9], [13, 14, 15]]
    assert "| 3 | same (3 seeds); same (3 seeds) |" in R.results_table(records, replications=reps)
    section = R.experiment_section("_toy", records["_toy"], replications=reps["_toy"])
    assert "Repeats on disjoint seeds" in section and "| quick | [7, 8, 9] |" in section
    again = {**records["_toy"]["quick"]}
    again["provenance"] = {**again["provenance"], "decided_again": {"commit": "abcdef123", "date": "2026-12-06T01:02"}}
    assert R._when(again).endswith("; decided again from its trials 2026-12-06 at abcdef1")
    resumed = {**again, "provenance": {**again["provenance"], "resumed": True}}
    assert "CPU-s of the resumed part; decided again" in R._when(resumed)  # a resume times its own process only


def test_bad_records_say_what_is_wrong(tmp_path):
    with pytest.raises(DataError, match="no metrics.json"):
        R.record_run(tmp_path)
    bad = tmp_path / "results" / "a" / "quick.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(json.dumps({"experiment": "b", "preset": "quick"}))
    with pytest.raises(DataError, match="do not match"):
        R.load_records(tmp_path / "results")
    root = tmp_path / "repo"
    root.mkdir()
    (root / "README.md").write_text("no markers\n")
    with pytest.raises(ConfigError, match="markers"):
        R.generated_docs(root, {}, {})
    # a package whose experiment page is missing is named, with the page it needs
    (root / "README.md").write_text(f"{R.BEGIN}\n{R.END}\n")
    (root / "docs").mkdir()
    (root / "docs" / "toy.md").write_text(f"{R.BEGIN}\n{R.END}\n")  # a user guide is not an experiment page
    with pytest.raises(ConfigError, match=r"no experiment page docs/experiments/toy\.md for the records of _toy"):
        R.generated_docs(root, {"_toy": {}}, {"_toy": "toy"})


def test_results_cli_records_and_checks(tmp_path, capsys):
    from reprozoo.runtime.registry import get_experiment

    out, _ = run_experiment("_toy", "smoke", out_dir=tmp_path / "run", progress=False)
    root = tmp_path / "repo"
    _repo_like(root, get_experiment("_toy").package)
    res = str(tmp_path / "results")
    assert main(["results", "--record", str(out), "--results", res, "--root", str(root), "--check"]) == 1
    assert main(["results", "--results", res, "--root", str(root), "--write-docs", "--check"]) == 0
    assert "agree with results/" in capsys.readouterr().out


def test_the_repository_docs_agree_with_its_results():
    """README.md and docs/*.md carry exactly the text generated from results/."""
    from reprozoo.runtime.registry import list_experiments

    records, history = R.load_records(REPO / "results"), R.load_history(REPO / "results")
    reps = R.load_replications(REPO / "results")
    packages = {s.name: s.package for s in list_experiments()}
    assert R.stale_docs(REPO, records, packages, history, reps) == []
    for name, items in reps.items():  # every stored repeat still matches its run of record's rule
        for d in items:
            base = records[name][d["preset"]]
            assert R._rule_of(d) == R._rule_of(base) and not set(d["seeds"]) & set(base["seeds"])


def test_every_experiment_has_a_quick_run_of_record():
    from reprozoo.runtime.registry import list_experiments

    records = R.load_records(REPO / "results")
    missing = [s.name for s in list_experiments() if not s.name.startswith("_") and "quick" not in records.get(s.name, {})]
    assert missing == []
