"""One process at a time per run folder: a second run is refused (naming the first one's PID) and
changes nothing; Ctrl-C releases the lock and the run can be resumed; a stale lock is taken over."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import tests.runtime.lock_toy  # noqa: F401  (registers _lock_toy)
import tests.runtime.toy  # noqa: F401  (registers _toy)
from reprozoo.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: "), err
    return err


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path below ``folder`` (hidden ones too) with its bytes (None for folders)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")}


def start_held_run(out: Path, hold: Path, *extra: str) -> subprocess.Popen:
    """``run _lock_toy`` in a subprocess whose first trial waits while ``hold`` exists."""
    hold.touch()
    # a shell that starts jobs in the background makes them ignore SIGINT: restore the default
    code = ("import signal, sys, tests.runtime.lock_toy; from reprozoo.cli import main; "
            "signal.signal(signal.SIGINT, signal.default_int_handler); "
            f"sys.exit(main(['run', '_lock_toy', '--preset', 'smoke', '--executor', 'serial', "
            f"'--out', {str(out)!r}, *{list(extra)!r}]))")
    env = {**os.environ, "REPROZOO_PROGRESS": "0", "LOCK_TOY_HOLD": str(hold)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not list(out.glob("trials/*/started")):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    assert list(out.glob("trials/*/started")), "the held run did not start its first trial"
    return proc


def test_a_second_run_is_refused_and_ctrl_c_releases_the_lock(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LOCK_TOY_HOLD", raising=False)
    out, hold = tmp_path / "run", tmp_path / "hold"
    proc = start_held_run(out, hold)
    try:
        assert (out / ".lock").read_text().strip() == str(proc.pid)
        assert json.loads((out / "run.json").read_text())["status"] == "running"
        before = snapshot(out)
        base = ["run", "_lock_toy", "--preset", "smoke", "--executor", "serial", "--out", str(out)]
        for extra in ([], ["--overwrite"], ["--resume"], ["--seeds", "7", "--overwrite"]):
            assert main(base + extra) == 2, extra
            err = _err(capsys)
            assert f"is in use by a running reprozoo run (process {proc.pid})" in err, err
        assert main(["run", "_toy", "--preset", "smoke", "--out", str(out), "--overwrite"]) == 2
        assert f"(process {proc.pid})" in _err(capsys)
        assert snapshot(out) == before
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        hold.unlink(missing_ok=True)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("interrupted; resume with: reprozoo run _lock_toy")
    assert not (out / ".lock").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    assert main(["run", "_lock_toy", "--preset", "smoke", "--executor", "serial", "--out", str(out),
                 "--resume"]) == 0
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["status"] == "finished" and manifest["resumed"] == 1
    assert not (out / ".lock").exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "_lock_toy", "--preset", "smoke", "--executor", "serial", "--out", str(out)]
    assert main(args) == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    manifest = json.loads((out / "run.json").read_text())
    manifest["status"] = "running"  # as a run killed with SIGKILL leaves it
    (out / "run.json").write_text(json.dumps(manifest))
    (out / ".lock").write_text(f"{dead.pid}\n")
    before = snapshot(out)
    assert main(args) == 2
    assert "already holds an unfinished run (its process has ended)" in _err(capsys)
    assert snapshot(out) == before  # a refused run leaves even the stale lock file as it was
    assert main(args + ["--overwrite"]) == 0
    assert not (out / ".lock").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_resume_with_overwrite_and_dangling_out_are_one_line_errors(tmp_path, capsys):
    run = tmp_path / "run"
    base = ["run", "_toy", "--preset", "smoke"]
    assert main(base + ["--out", str(run), "--resume", "--overwrite"]) == 2
    assert "--resume and --overwrite cannot be combined" in _err(capsys)
    assert not run.exists()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone")
    assert main(base + ["--out", str(link)]) == 2
    err = _err(capsys)
    assert "is a symbolic link to" in err and "which does not exist" in err and "File exists" not in err
    assert main(base + ["--out", str(link / "sub")]) == 2
    assert "which does not exist" in _err(capsys)
    assert link.is_symlink() and not (tmp_path / "gone").exists()
