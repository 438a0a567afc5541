"""The output folder of one run: its lock, its manifest (``run.json``) and what the run owns.

The manifest lists only what the run itself created, each entry recorded when it is created: the
runtime's own files (config, trials, metrics, report) by :meth:`RunFolder.own`, and anything the
experiment's code creates at the top of the folder (figures, CSV files, checkpoints) through a
Python audit hook that sees this process's file creations (``open`` for writing, ``mkdir``,
renames and copies) below an active run folder. Files a user adds while the run is running are
never listed, so ``--overwrite`` (which removes only listed entries and refuses a folder holding
anything else) cannot delete them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from reprozoo.errors import OutputError, OutputExistsError
from reprozoo.runtime.report import atomic_write_text
from reprozoo.runtime.run_lock import LOCK_NAME, RunLock

MANIFEST = "run.json"
_PROBE = ".reprozoo-write-test-"


# ------------------------------------------------------------------------ ownership (audit hook)
_ACTIVE: dict[str, Any] = {}  # absolute folder path -> callback(name) recording a top-level entry
_HOOK = {"installed": False}
_LOCAL = threading.local()
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_DST_EVENTS = {"os.rename": 1, "os.link": 1, "os.symlink": 1, "shutil.copyfile": 1, "shutil.copytree": 1,
               "shutil.move": 1, "os.mkdir": 0}


def _path_arg(value: Any) -> str | None:
    if isinstance(value, int) or value is None:
        return None
    try:
        return os.path.abspath(os.fsdecode(os.fspath(value)))
    except TypeError:
        return None


def _created_path(event: str, args: tuple) -> str | None:
    if event == "open":
        mode, flags = args[1], args[2]
        writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
        return _path_arg(args[0]) if writes else None
    index = _DST_EVENTS.get(event)
    return None if index is None or len(args) <= index else _path_arg(args[index])


def _audit(event: str, args: tuple) -> None:
    if not _ACTIVE or getattr(_LOCAL, "busy", False):
        return
    if event != "open" and event not in _DST_EVENTS:
        return
    _LOCAL.busy = True
    try:
        path = _created_path(event, args)
        if path is not None:
            for root, record in list(_ACTIVE.items()):
                if path.startswith(root + os.sep):
                    name = path[len(root) + 1:].split(os.sep, 1)[0]
                    if owned_name(name):
                        record(name)
    except Exception:  # noqa: BLE001 - an audit hook must never break the operation it watches
        pass
    finally:
        _LOCAL.busy = False


def owned_name(name: str) -> bool:
    """Whether a top-level entry can belong to a run (not the lock, a probe or a temporary file)."""
    return bool(name) and name != LOCK_NAME and not name.startswith(_PROBE) \
        and not (name.startswith(".") and name.endswith(".tmp"))


def watch(folder: Path, record) -> None:
    """Call ``record(name)`` for every top-level entry this process creates below ``folder``."""
    if not _HOOK["installed"]:
        sys.addaudithook(_audit)
        _HOOK["installed"] = True
    _ACTIVE[os.path.abspath(folder)] = record


def unwatch(folder: Path) -> None:
    _ACTIVE.pop(os.path.abspath(folder), None)


def note_created(folder: Path | str, name: str) -> None:
    """Record ``name`` as created in ``folder`` by the run watching it (e.g. by one of its worker
    processes); nothing happens when no run in this process watches the folder."""
    record = _ACTIVE.get(os.path.abspath(folder))
    if record is not None and owned_name(name):
        record(name)


def added_at_default(old: dict[str, Any], new: dict[str, Any], defaults: dict[str, Any] | None) -> dict[str, Any]:
    """Settings the config gained after the run in ``old`` was made (absent from its manifest) that ``new``
    leaves at their class default (``defaults``, a config as a plain dict), flattened to ``key: value``. A new
    setting defaults to the behaviour the code had before it (a project convention), so such a setting
    changes nothing the run computed."""
    if defaults is None:
        return {}
    oc, nc, dc = _flatten(old.get("config", {})), _flatten(new["config"]), _flatten(defaults)
    return {k: nc[k] for k in sorted(set(nc) - set(oc)) if k in dc and dc[k] == nc[k]}


def differences(old: dict[str, Any], new: dict[str, Any], defaults: dict[str, Any] | None = None) -> list[str]:
    """What makes the run in ``old`` (a manifest) another run than ``new`` (an identity); settings added since
    the run at their ``defaults`` do not count (:func:`added_at_default`)."""
    out = []
    for key in ("experiment", "preset", "seeds"):
        if old.get(key) != new[key]:
            out.append(f"{key} {old.get(key)!r} -> {new[key]!r}")
    oc, nc = _flatten(old.get("config", {})), _flatten(new["config"])
    added = added_at_default(old, new, defaults)
    for key in sorted(set(oc) | set(nc)):
        if key != "seeds" and key not in added and oc.get(key) != nc.get(key):
            out.append(f"{key} {oc.get(key)!r} -> {nc.get(key)!r}")
    return out


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[prefix + k] = v
    return flat


# ------------------------------------------------------------------------------------ the folder
class RunFolder:
    """The output folder of one run and its manifest."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.manifest: dict[str, Any] = {}
        self.created: list[Path] = []  # folders this run created (removed again on an early error)
        self.lock = RunLock(self.path)

    # -- reading
    def read_manifest(self) -> dict[str, Any] | None:
        path = self.path / MANIFEST
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise OutputError(f"{path} is not a readable run manifest ({err}); choose another --out") from None
        if not isinstance(data, dict) or "experiment" not in data:
            raise OutputError(f"{path} is not a run manifest; choose another --out")
        return data

    def entries(self) -> list[str]:
        """The folder's top-level names, without the lock file."""
        return sorted(p.name for p in self.path.iterdir() if p.name != LOCK_NAME) if self.path.is_dir() else []

    def foreign_entries(self, manifest: dict[str, Any] | None) -> list[str]:
        owned = set(manifest.get("files", [])) | {MANIFEST} if manifest else set()
        return [name for name in self.entries() if name not in owned]

    # -- preparing
    def prepare(self, identity: dict[str, Any], *, resume: bool, overwrite: bool, command: str,
                defaults: dict[str, Any] | None = None) -> None:
        """Lock the folder, check everything about it, then write the manifest. A refused run
        leaves the folder as it found it (and releases the lock). ``defaults`` (the config class's
        defaults) lets ``--resume`` accept a run made before the config gained a setting left at its default."""
        path = self.path
        if path.is_symlink() and not path.exists():
            raise OutputError(f"--out {path} is a symbolic link to {os.readlink(path)}, which does not exist; "
                              "give a folder path")
        if path.exists() and not path.is_dir():
            raise OutputError(f"--out {path} is a file, not a folder; choose a folder path")
        self._make_dirs()
        try:
            self.lock.acquire()
        except BaseException:
            self.remove_created()
            raise
        try:
            manifest = self._check(identity, resume=resume, overwrite=overwrite, defaults=defaults)
            self.lock.mark()
            self._probe_writable()
        except BaseException:
            self.close(remove_lock=self.lock.created)
            self.remove_created()
            raise
        if manifest is not None and not resume:
            self._remove_entries(manifest.get("files", []))
        if resume and manifest is not None:
            self.manifest = dict(manifest)
            self.manifest.update(status="running", resumed=int(manifest.get("resumed", 0)) + 1)
        else:
            from reprozoo import __version__

            self.manifest = {**identity, "command": command, "code_version": __version__,
                             "created": datetime.now().isoformat(timespec="seconds"), "status": "running",
                             "files": [MANIFEST]}
        self.write_manifest()
        watch(self.path, self.own)

    def _check(self, identity: dict[str, Any], *, resume: bool, overwrite: bool,
               defaults: dict[str, Any] | None = None) -> dict[str, Any] | None:
        path = self.path
        manifest = self.read_manifest()
        if resume:
            self._check_resume(manifest, identity, defaults)
        elif self.entries():
            if manifest is None:
                legacy = (path / "metrics.json").exists() or (path / "config.yaml").exists()
                what = "a run without a manifest" if legacy else "files that are not a reprozoo run"
                raise OutputExistsError(f"{path} holds {what} ({', '.join(self.foreign_entries(None)[:3])}...); "
                                        "choose an empty or new --out")
            if not overwrite:
                status = manifest.get("status", "previous")
                what = "an unfinished run (its process has ended)" if status == "running" else f"a {status} run"
                raise OutputExistsError(
                    f"{path} already holds {what} of {manifest['experiment']}; pass "
                    "--overwrite to replace it, --resume to continue it, or choose another --out")
            foreign = self.foreign_entries(manifest)
            if foreign:
                raise OutputExistsError(f"--overwrite refused: {path} also holds {', '.join(foreign[:5])}, which "
                                        "the run did not write; move them away or choose another --out")
        return manifest

    def _check_resume(self, manifest: dict[str, Any] | None, identity: dict[str, Any],
                      defaults: dict[str, Any] | None = None) -> None:
        if manifest is None:
            raise OutputError(f"--resume: {self.path} holds no run to continue (no {MANIFEST}); "
                              "drop --resume to start a new run there")
        diff = differences(manifest, identity, defaults)
        if diff:
            raise OutputError(f"--resume: {self.path} holds a different run ({'; '.join(diff[:4])}); "
                              "resume with the same settings, or choose another --out")
        if manifest.get("status") == "finished":
            raise OutputError(f"--resume: {self.path} holds a finished run; nothing to resume "
                              "(pass --overwrite to run it again)")

    def _make_dirs(self) -> None:
        missing = []
        p = self.path
        while not p.exists():
            if p.is_symlink():
                raise OutputError(f"cannot create --out {self.path}: {p} is a symbolic link to "
                                  f"{os.readlink(p)}, which does not exist")
            missing.append(p)
            p = p.parent
        if not p.is_dir():
            raise OutputError(f"cannot create --out {self.path}: {p} is a file")
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:
                continue  # made by a run starting beside this one: the lock decides who proceeds
            except OSError as err:
                self.remove_created()
                raise OutputError(f"cannot create {d}: {err.strerror}") from None
            self.created.append(d)

    def _probe_writable(self) -> None:
        probe = self.path / f"{_PROBE}{time.monotonic_ns()}"
        try:
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            raise OutputError(f"cannot write into {self.path}: {err.strerror}") from None

    # -- bookkeeping
    def own(self, name: str) -> None:
        """Record the top-level entry ``name`` as the run's own (call it when creating the entry)."""
        if owned_name(name) and name not in self.manifest.get("files", []):
            self.manifest.setdefault("files", []).append(name)
            self.write_manifest()

    def write_manifest(self) -> None:
        atomic_write_text(self.path / MANIFEST, json.dumps(self.manifest, indent=2, default=str) + "\n")

    def finish(self, status: str) -> None:
        """Set the final status; entries recorded but never created (or gone again) are dropped."""
        unwatch(self.path)
        files = self.manifest.get("files", [])
        self.manifest["files"] = sorted(n for n in files if n == MANIFEST or os.path.lexists(self.path / n))
        self.manifest["status"] = status
        self.manifest["updated"] = datetime.now().isoformat(timespec="seconds")
        self.write_manifest()

    def close(self, remove_lock: bool = True) -> None:
        """Stop recording and give the folder back (the lock file goes with it)."""
        unwatch(self.path)
        self.lock.release(remove=remove_lock)

    def has_finished_trials(self) -> bool:
        trials = self.path / "trials"
        return trials.is_dir() and any(trials.glob("*.json"))

    def remove_tmp_files(self) -> None:
        for tmp in self.path.rglob("*.tmp"):
            if tmp.is_file():
                tmp.unlink()

    def _remove_entries(self, names: list[str]) -> None:
        for name in names:
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            elif target.exists() or target.is_symlink():
                target.unlink()

    def remove_run_files(self) -> None:
        """Remove what this run wrote (it had not produced a finished trial), then the lock."""
        unwatch(self.path)
        self._remove_entries(self.manifest.get("files", []))
        self.close()
        self.remove_created()

    def remove_created(self) -> None:
        for d in reversed(self.created):
            try:
                d.rmdir()
            except OSError:
                break
        self.created = []
