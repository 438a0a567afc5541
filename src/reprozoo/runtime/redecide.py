"""Deciding a finished run again from its stored trials, under the rule the code holds now.

A rule may change after a run (a gate the project's rule required but the experiment lacked, a
mistake in how parts combine). The trials need not run again when only the decision changed:
:func:`redecide_run` copies the run folder to a new one, resumes it with every trial taken from the
copy (a trial without a stored result is an error: then the trials themselves changed and the
experiment must run again) and writes the new verdict. The new ``metrics.json`` keeps the original
run's provenance (commit, date, load, wall and CPU seconds: what the trials cost) and adds
``provenance.decided_again`` (commit and date of the decision; ``settings_added`` lists the settings the
config gained since the run, which the resume accepts at their defaults). The source folder is not touched; keep
its record as an earlier run (``reprozoo results --record SRC --label ...``) and record the new folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from reprozoo.errors import ConfigError, DataError, OutputError, OutputExistsError
from reprozoo.runtime.report import atomic_write_text, read_metrics, write_metrics
from reprozoo.runtime.run_folder import MANIFEST, added_at_default
from reprozoo.runtime.run_lock import LOCK_NAME


def _source(run_dir: Path) -> dict[str, Any]:
    if not (run_dir / "metrics.json").is_file() or not (run_dir / MANIFEST).is_file():
        raise DataError(f"{run_dir} holds no finished run (metrics.json and {MANIFEST}); only a finished run can be "
                        "decided again")
    return read_metrics(run_dir / "metrics.json")


def redecide_run(run_dir: str | Path, out_dir: str | Path, *, progress: bool | None = None
                 ) -> tuple[Path, dict[str, Any]]:
    """Decide the finished run in ``run_dir`` again into the new folder ``out_dir``; returns
    ``(out_dir, metrics)`` like :func:`reprozoo.runtime.runner.run_experiment`."""
    from reprozoo.runtime.registry import get_experiment
    from reprozoo.runtime.runner import config_defaults, manifest_identity, resolve_config, run_experiment
    from reprozoo.runtime.trials import STORED_ONLY

    src, out = Path(run_dir), Path(out_dir)
    old = _source(src)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputExistsError(f"{out} already exists; give a new folder to decide {src} again into")
    if out.resolve().is_relative_to(src.resolve()):
        raise ConfigError(f"{out} is inside the run it decides again ({src}); choose a folder outside it")
    cfg = resolve_config(get_experiment(old["experiment"]), old["preset"], old["seeds"], old.get("overrides") or [])
    shutil.copytree(src, out, ignore=shutil.ignore_patterns(LOCK_NAME, "*.tmp"), dirs_exist_ok=True)
    token = STORED_ONLY.set(True)
    try:
        manifest = json.loads((out / MANIFEST).read_text())
        manifest["status"] = "interrupted"  # resumable: every trial is in the copy
        identity = manifest_identity(old["experiment"], old["preset"], cfg)
        added = added_at_default(manifest, identity, config_defaults(cfg))  # accepted by the resume below
        atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1))
        _, data = run_experiment(old["experiment"], old["preset"], seeds=old["seeds"],
                                 overrides=old.get("overrides") or [], out_dir=out, resume=True, progress=progress)
    except OutputError as err:
        shutil.rmtree(out, ignore_errors=True)
        raise ConfigError(f"{src} cannot be decided again: {err} (its settings changed since it ran; run the "
                          "experiment again)") from None
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        STORED_ONLY.reset(token)
    prov = {k: v for k, v in (old.get("provenance") or {}).items() if k != "decided_again"}
    now = data.get("provenance") or {}
    prov["decided_again"] = {k: now.get(k) for k in ("commit", "dirty", "date", "wall_s", "cpu_s")}
    if added:
        prov["decided_again"]["settings_added"] = [f"{k}={v!r}" for k, v in added.items()]
    data["provenance"] = prov
    write_metrics(out, data)
    return out, data


__all__ = ["redecide_run"]
