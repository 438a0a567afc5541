"""The run folder as a contract: manifest, --resume / --overwrite, early and late errors, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tests.runtime.toy  # noqa: F401  (registers _toy and _toy_trials)
from reprozoo.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _err(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: "), err
    return err


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_manifest_is_written_and_lists_the_run_files(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "_toy_trials", "--preset", "smoke", "--executor", "serial", "--out", str(out)]) == 0
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["experiment"] == "_toy_trials" and manifest["preset"] == "smoke"
    assert manifest["seeds"] == [0, 1, 2] and manifest["status"] == "finished"
    assert set(manifest["files"]) == {"run.json", "config.yaml", "metrics.json", "report.md", "trials"}
    assert len(list((out / "trials").glob("*.json"))) == 6
    data = json.loads((out / "metrics.json").read_text())
    assert data["claims"][0]["headline"] is True and data["verdict"] == "held"


def test_overwrite_removes_only_what_the_run_wrote(tmp_path, capsys):
    v = tmp_path / "v"
    v.mkdir()
    (v / "photo.png").write_bytes(b"\x89PNG user file")
    (v / "notes.txt").write_text("mine")
    before = _snapshot(v)
    assert main(["run", "_toy", "--preset", "smoke", "--out", str(v)]) == 2
    assert "files that are not a reprozoo run" in _err(capsys)
    assert main(["run", "_toy", "--preset", "smoke", "--out", str(v), "--overwrite"]) == 2
    _err(capsys)
    assert _snapshot(v) == before
    run = tmp_path / "run"
    assert main(["run", "_toy", "--preset", "smoke", "--out", str(run)]) == 0
    (run / "notes.txt").write_text("added later by the user")
    assert main(["run", "_toy", "--preset", "smoke", "--out", str(run), "--overwrite"]) == 2
    assert "also holds notes.txt" in _err(capsys)
    assert (run / "notes.txt").read_text() == "added later by the user"
    (run / "notes.txt").unlink()
    assert main(["run", "_toy", "--preset", "quick", "--out", str(run), "--overwrite"]) == 0
    assert json.loads((run / "run.json").read_text())["preset"] == "quick"


def test_resume_checks_the_folder_holds_the_same_unfinished_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "_toy", "--preset", "smoke", "--out", str(run)]) == 0
    before = _snapshot(run)
    assert main(["run", "_toy", "--preset", "smoke", "--resume", "--out", str(run)]) == 2
    assert "holds a finished run; nothing to resume" in _err(capsys)
    assert main(["run", "_toy_trials", "--preset", "smoke", "--resume", "--out", str(run)]) == 2
    assert "holds a different run (experiment '_toy' -> '_toy_trials'" in _err(capsys)
    assert main(["run", "_toy", "--preset", "quick", "--resume", "--out", str(run)]) == 2
    assert "preset 'smoke' -> 'quick'" in _err(capsys)
    assert main(["run", "_toy", "--preset", "smoke", "--set", "offset=3", "--resume", "--out", str(run)]) == 2
    assert "offset 1.0 -> 3.0" in _err(capsys)
    assert _snapshot(run) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["run", "_toy", "--resume", "--out", str(empty)]) == 2
    assert "holds no run to continue" in _err(capsys)


def test_resume_accepts_a_run_made_before_a_setting_existed_only_at_its_default(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "_toy", "--preset", "smoke", "--out", str(run)]) == 0
    manifest = json.loads((run / "run.json").read_text())
    del manifest["config"]["mode"]  # as if the run was made before the config had `mode` (default "add")
    manifest["status"] = "interrupted"
    (run / "run.json").write_text(json.dumps(manifest))
    assert main(["run", "_toy", "--preset", "smoke", "--set", "mode=mul", "--resume", "--out", str(run)]) == 2
    assert "mode None -> 'mul'" in _err(capsys)  # away from its default: another run
    assert main(["run", "_toy", "--preset", "smoke", "--resume", "--out", str(run)]) == 0
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0,0,0,0,0"], "seeds must be distinct"),
    (["--seeds", "-1"], "seeds must be integers in [0,"),
    (["--set", "threads=-3"], "threads must be an integer >= 0"),
    (["--set", "device=banana"], "device must be auto, cpu, cuda"),
    (["--set", "offset=nan"], "'offset' expects a finite number"),
    (["--set", "offset=inf"], "'offset' expects a finite number"),
    (["--set", "data_root=/nonexistent/reprozoo-data"], "does not exist"),
    (["--executor", "threads"], "executor.kind must be one of serial, local, ray"),
    (["--workers", "-2"], "executor.workers must be >= 0"),
])
def test_bad_values_are_refused_before_any_work(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main(["run", "_toy", "--preset", "smoke", "--out", str(out), *args]) == 2
    assert message in _err(capsys)
    assert not out.exists()


def test_missing_cuda_is_an_error(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["run", "_toy", "--set", "device=cuda", "--out", str(tmp_path / "r")]) == 2
    assert "CUDA is not available" in _err(capsys)


def test_rule_constants_cannot_be_overridden(tmp_path, capsys):
    assert main(["run", "_toy_trials", "--set", "margin=-1", "--out", str(tmp_path / "r")]) == 2
    assert "'margin' cannot be overridden: it is the rule's margin" in _err(capsys)


def test_out_paths_that_cannot_be_used(tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert main(["run", "_toy", "--out", str(f)]) == 2
    assert "is a file, not a folder" in _err(capsys)
    assert main(["run", "_toy", "--out", str(f / "sub")]) == 2
    assert "is a file" in _err(capsys)
    assert f.read_text() == "x"
    uni = tmp_path / "résultats ünïcode"
    assert main(["run", "_toy", "--preset", "smoke", "--out", str(uni)]) == 0
    assert (uni / "metrics.json").exists()


def test_error_before_the_first_trial_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "deep" / "run"
    assert main(["run", "_toy_trials", "--set", "fail_early=true", "--out", str(out)]) == 2
    assert "found a problem before the first trial" in _err(capsys)
    assert not (tmp_path / "deep").exists()


def test_a_failing_trial_leaves_a_resumable_run(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    args = ["run", "_toy_trials", "--preset", "smoke", "--executor", "serial", "--set", "fail_arm=b",
            "--out", str(out)]
    assert main(args) == 2
    err = _err(capsys)
    assert "Trial(arm='b', seed=0) failed: RuntimeError: arm b is broken" in err and "--resume" in err
    assert json.loads((out / "run.json").read_text())["status"] == "failed"
    assert len(list((out / "trials").glob("a__*.json"))) == 3
    monkeypatch.setenv("TOY_FIXED", "1")
    assert main(args + ["--resume"]) == 0
    assert json.loads((out / "metrics.json").read_text())["verdict"] == "held"


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if "zombie" not in Path(f"/proc/{pid}/status").read_text().lower():
                alive.append(pid)
        except OSError:
            pass
    return alive


def _wait_gone(pids: list[int], seconds: float = 15.0) -> bool:
    deadline = time.time() + seconds
    while _alive(pids) and time.time() < deadline:
        time.sleep(0.2)
    return not _alive(pids)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_keeps_finished_trials_and_leaves_no_orphans(tmp_path, sig):
    out = tmp_path / "run"
    # a shell that starts jobs in the background (`cmd &`, nohup) makes them ignore SIGINT, and Python then
    # installs no KeyboardInterrupt handler: restore the default so the test means the same everywhere
    code = ("import signal, sys, tests.runtime.toy; from reprozoo.cli import main; "
            "signal.signal(signal.SIGINT, signal.default_int_handler); "
            f"sys.exit(main(['run', '_toy_trials', '--preset', 'quick', '--executor', 'local', '--workers', '2', "
            f"'--set', 'sleep=2', '--out', {str(out)!r}]))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "REPROZOO_PROGRESS": "0"})
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "trials").glob("*.json")):
        time.sleep(0.1)
    workers = _children(proc.pid)
    assert workers, "the local executor should have started worker processes"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted; resume with: reprozoo run _toy_trials --preset quick --seeds 0,1,2,3" in err
    assert err.strip().endswith("--resume")
    assert _wait_gone(workers), f"orphaned workers: {_alive(workers)}"
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["status"] == "interrupted"
    kept = list((out / "trials").glob("*.json"))
    assert 1 <= len(kept) < 8
    assert not list(out.rglob("*.tmp"))


def test_workers_die_with_a_killed_parent(tmp_path):
    out = tmp_path / "run"
    code = ("import sys, tests.runtime.toy; from reprozoo.cli import main; "
            f"sys.exit(main(['run', '_toy_trials', '--preset', 'quick', '--executor', 'local', '--workers', '2', "
            f"'--set', 'sleep=5', '--out', {str(out)!r}]))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("trials/*/started"))) < 2:
        time.sleep(0.2)
    workers = _children(proc.pid)
    assert len(workers) >= 2
    proc.kill()
    proc.wait()
    assert _wait_gone(workers), f"workers outlived their parent: {_alive(workers)}"


def test_version_and_python_m(capsys):
    from reprozoo import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"reprozoo {__version__}"
    res = subprocess.run([sys.executable, "-m", "reprozoo", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and res.stdout.strip() == f"reprozoo {__version__}"


def test_report_and_bench_paths(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a folder of runs" in _err(capsys)
    assert not (tmp_path / "missing").exists()
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "runs" / "x" / "metrics.json").write_text("{not json")
    assert main(["report", str(tmp_path / "runs")]) == 0
    assert "warning: skipped" in capsys.readouterr().err
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["bench", "nara", "--out", str(f / "results")]) == 2
    assert "is a file, not a folder" in _err(capsys)
