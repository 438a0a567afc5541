"""When stdout is not a terminal, ``run`` prints one plain line per finished trial on stderr."""

import json
import re

import pytest

import tests.runtime.toy  # noqa: F401  (registers _toy_trials)
from reprozoo.cli import main
from reprozoo.runtime import progress

LINE = re.compile(r"^\[(\d+)/6\] ([ab]) seed(\d) done in \d+\.\d s$")


def _trial_lines(err: str) -> list[re.Match]:
    return [m for m in map(LINE.match, err.splitlines()) if m]


@pytest.mark.parametrize("kind", ["serial", "local"])
def test_one_line_per_finished_trial_on_stderr(tmp_path, capsys, monkeypatch, kind):
    monkeypatch.delenv("REPROZOO_PROGRESS", raising=False)  # the default: stdout (captured) is no terminal
    assert main(["run", "_toy_trials", "--preset", "smoke", "--executor", kind, "--workers", "2",
                 "--out", str(tmp_path / "run")]) == 0
    cap = capsys.readouterr()
    lines = _trial_lines(cap.err)
    assert [int(m.group(1)) for m in lines] == [1, 2, 3, 4, 5, 6]  # counted in the order they finish
    assert sorted((m.group(2), m.group(3)) for m in lines) == [(a, s) for a in "ab" for s in "012"]
    assert not any(LINE.match(line) for line in cap.out.splitlines())


def test_resumed_trials_are_counted_and_progress_off_is_quiet(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    args = ["run", "_toy_trials", "--preset", "smoke", "--executor", "serial", "--set", "fail_arm=b", "--out", str(out)]
    monkeypatch.setenv("REPROZOO_PROGRESS", "0")
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")  # off: no progress lines at all
    monkeypatch.setenv("REPROZOO_PROGRESS", "lines")
    monkeypatch.setenv("TOY_FIXED", "1")
    assert main(args + ["--resume"]) == 0
    err = capsys.readouterr().err
    assert "[3/6] toy trials: 3 finished before, resumed" in err
    assert [int(m.group(1)) for m in _trial_lines(err)] == [4, 5, 6]
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_the_bar_and_the_lines_exclude_each_other(monkeypatch):
    monkeypatch.delenv("REPROZOO_PROGRESS", raising=False)
    monkeypatch.setattr(progress.sys.stdout, "isatty", lambda: True, raising=False)
    assert progress.progress_enabled() and not progress.lines_enabled()
    monkeypatch.setattr(progress.sys.stdout, "isatty", lambda: False, raising=False)
    assert not progress.progress_enabled() and progress.lines_enabled()
    assert not progress.lines_enabled(progress=False)  # a caller that turns progress off
    monkeypatch.setenv("REPROZOO_PROGRESS", "off")
    assert not progress.progress_enabled() and not progress.lines_enabled()
    assert progress.fmt_seconds(4.14) == "4.1 s" and progress.fmt_seconds(125) == "2 min 05 s"
