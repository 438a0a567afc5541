import json

import pytest

from reprozoo.runtime.report import build_index, validate_metrics, write_metrics


def _data(**kw):
    base = {"experiment": "x", "preset": "smoke", "seeds": [0], "claim": "c", "verdict": "held",
            "evidence": "e", "metrics": {"method/a": 1.0, "baseline/a": 0.5}, "runtime_s": 1.0,
            "environment": {"torch": "t"}}
    base.update(kw)
    return base


@pytest.mark.parametrize("bad, msg", [
    ({"verdict": "yes"}, "verdict must be one of"),
    ({"metrics": {"acc": 1.0}}, "must look like 'method/<name>'"),
    ({"metrics": {}}, "non-empty"),
    ({"seeds": "0"}, "seeds must be a list"),
    ({"claim": ""}, "claim must be a non-empty string"),
])
def test_schema_is_validated_before_writing(tmp_path, bad, msg):
    with pytest.raises(ValueError, match=msg):
        write_metrics(tmp_path, _data(**bad))
    assert not (tmp_path / "metrics.json").exists()


def test_missing_key_and_atomic_write(tmp_path):
    data = _data()
    del data["runtime_s"]
    with pytest.raises(ValueError, match="missing keys: \\['runtime_s'\\]"):
        validate_metrics(data)
    write_metrics(tmp_path, _data(metrics={"method/a": float("nan"), "baseline/a": 2}))
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"] == {"method/a": None, "baseline/a": 2.0}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left behind


def test_index_without_runs_says_so(tmp_path):
    page = build_index(tmp_path).read_text()
    assert "No experiment runs found" in page


def test_index_keeps_latest_run_per_experiment(tmp_path):
    import os
    import time

    write_metrics(tmp_path / "x" / "old", _data(evidence="old run"))
    time.sleep(0.01)
    write_metrics(tmp_path / "x" / "new", _data(evidence="new run", verdict="not held"))
    os.utime(tmp_path / "x" / "old" / "metrics.json", (1, 1))
    page = build_index(tmp_path, {"x": "Some Paper"}).read_text()
    assert "new run" in page and "old run" not in page and "Some Paper" in page and 'class="v not"' in page


def test_summary_shows_the_deciding_part_of_the_evidence(tmp_path):
    evidence = "acc: method 0.9 vs strongest alternative 'x' 0.8; negative control: y lost as required"
    write_metrics(tmp_path / "e" / "r", _data(evidence=evidence))
    page = build_index(tmp_path, {}).read_text()
    summary = page.split("<h2>Summary</h2>")[1].split("<h2 id=")[0]
    assert "strongest alternative &#x27;x&#x27; 0.8" in summary and "negative control" not in summary
    assert "negative control: y lost as required" in page  # the section keeps the whole line
