"""The manifest lists only what the run created, recorded as it is created: files a user adds to the
run folder while the run is running are never listed, so ``--overwrite`` cannot delete them."""

import json

import tests.runtime.lock_toy  # noqa: F401  (registers _lock_toy)
from reprozoo.cli import main
from tests.runtime.test_run_lock import _err, snapshot, start_held_run

RUN_FILES = {"run.json", "config.yaml", "trials", "cache_from_trial", "scores.csv", "metrics.json", "report.md"}


def test_user_files_added_during_a_run_are_not_the_runs_and_survive_overwrite(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LOCK_TOY_HOLD", raising=False)
    out, hold = tmp_path / "run", tmp_path / "hold"
    proc = start_held_run(out, hold)
    try:
        (out / "notes.txt").write_text("n\n")  # the user's, added while the run is running
        (out / "my_plots").mkdir()
        (out / "my_plots" / "a.png").write_bytes(b"\x89PNG mine")
        hold.unlink()
        _, err = proc.communicate(timeout=60)
    finally:
        hold.unlink(missing_ok=True)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["status"] == "finished"
    assert set(manifest["files"]) == RUN_FILES  # scores.csv: written by the experiment's own code
    before = snapshot(out)
    args = ["run", "_lock_toy", "--preset", "smoke", "--executor", "serial", "--out", str(out), "--overwrite"]
    assert main(args) == 2
    assert "also holds my_plots, notes.txt, which the run did not write" in _err(capsys)
    assert snapshot(out) == before
    (out / "notes.txt").unlink()
    (out / "my_plots" / "a.png").unlink()
    (out / "my_plots").rmdir()
    assert main(args) == 0
    assert set(json.loads((out / "run.json").read_text())["files"]) == RUN_FILES


def test_entries_made_by_worker_processes_are_recorded(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "_lock_toy", "--preset", "smoke", "--executor", "local", "--workers", "2",
                 "--out", str(out)]) == 0
    manifest = json.loads((out / "run.json").read_text())
    assert set(manifest["files"]) == RUN_FILES  # cache_from_trial is made inside a worker
    assert (out / "cache_from_trial").is_dir() and not (out / ".lock").exists()


def test_a_late_error_keeps_a_manifest_of_what_exists(tmp_path, capsys):
    """Entries recorded but gone again (a temporary name) are dropped when the run ends."""
    from reprozoo.runtime.run_folder import RunFolder, note_created

    folder = RunFolder(tmp_path / "r")
    folder.prepare({"experiment": "_lock_toy", "preset": "smoke", "seeds": [0], "config": {}},
                   resume=False, overwrite=False, command="reprozoo run _lock_toy")
    assert (tmp_path / "r" / ".lock").exists()
    (tmp_path / "r" / "made.txt").write_text("x")  # this process writes it: recorded by the hook
    note_created(tmp_path / "r", "never_made")
    note_created(tmp_path / "r", ".lock")
    folder.finish("failed")
    folder.close()
    manifest = json.loads((tmp_path / "r" / "run.json").read_text())
    assert manifest["files"] == ["made.txt", "run.json"] and manifest["status"] == "failed"
    assert not (tmp_path / "r" / ".lock").exists()


def test_figures_and_subfolders_made_by_the_experiment_are_recorded(tmp_path):
    import tests.runtime.toy  # noqa: F401  (registers _toy, which saves a figure)

    out = tmp_path / "run"
    assert main(["run", "_toy", "--preset", "smoke", "--out", str(out)]) == 0
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["files"] == ["config.yaml", "figures", "metrics.json", "report.md", "run.json"]
