"""Running a registered experiment: resolve and check the config, prepare the run folder under its
manifest, call the experiment, write config.yaml / metrics.json / report.md. Used by the CLI and
by tests.

A run folder is a contract. ``run.json`` (the manifest) is written first and names the experiment,
preset, seeds, overrides, resolved config, code version, status and every top-level entry the run
wrote. ``--resume`` continues only an unfinished run with the same experiment, preset, seeds and
config (and says what differs otherwise); ``--overwrite`` removes only what the manifest lists and
refuses a folder that holds anything else; an error found before the first trial finished leaves
nothing behind; a later one leaves a resumable run.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from reprozoo.errors import ConfigError, OutputError, OutputExistsError, RunInterrupted
from reprozoo.runtime.config import check_common, to_plain_dict, to_yaml
from reprozoo.runtime.records import finish_provenance, start_provenance
from reprozoo.runtime.registry import ExperimentSpec, get_experiment
from reprozoo.runtime.report import (
    ExperimentResult,
    atomic_write_text,
    environment,
    write_metrics,
    write_report,
)

MANIFEST = "run.json"
MAX_SEED = 2**31 - 1
# config groups that say how a run executes, not what it computes (may differ on --resume)
_EXECUTION_KEYS = ("executor", "threads", "device")


@dataclass
class RunContext:
    """What an experiment's ``run(cfg, ctx)`` gets besides its config."""

    out_dir: Path
    preset: str
    resume: bool = False
    progress: bool | None = None
    config: Any = None
    _folder: RunFolder | None = field(default=None, repr=False)

    @property
    def figures_dir(self) -> Path:
        return self.subdir("figures")

    def subdir(self, name: str) -> Path:
        path = self.out_dir / name
        path.mkdir(parents=True, exist_ok=True)
        if self._folder is not None:
            self._folder.own(name.split("/")[0])
        return path

    def run_trials(self, fn, trials, description: str = "trials") -> list[Any]:
        """Run ``fn(trial, trial_ctx)`` for every trial with the config's executor (see
        :mod:`reprozoo.runtime.trials`); results come back in the order of ``trials``."""
        from reprozoo.runtime.trials import run_trials

        if self._folder is not None:
            self._folder.own("trials")
        return run_trials(fn, trials, config=self.config, run_dir=self.out_dir,
                          executor=getattr(self.config, "executor", None), resume=self.resume,
                          progress=self.progress, description=description)


def default_out_dir(name: str, runs_root: str | Path = "runs") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Path(runs_root) / name / stamp


def check_seeds(seeds: list[int]) -> None:
    if not seeds:
        raise ConfigError("--seeds needs at least one integer, e.g. --seeds 0,1,2")
    bad = [s for s in seeds if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= MAX_SEED]
    if bad:
        raise ConfigError(f"seeds must be integers in [0, {MAX_SEED}], got {bad[0]!r}")
    dup = sorted({s for s in seeds if seeds.count(s) > 1})
    if dup:
        raise ConfigError(f"seeds must be distinct (a repeated seed is not another sample), got {dup[0]} "
                          f"{seeds.count(dup[0])} times")


def resolve_config(spec: ExperimentSpec, preset: str, seeds: list[int] | None, overrides: list[str]):
    """The experiment's config for ``preset`` + ``overrides`` + ``seeds``, fully checked."""
    cfg = spec.config_cls.from_preset(preset, overrides, locked=True)
    if seeds is not None:
        cfg.seeds = list(seeds)
        validate = getattr(cfg, "validate", None)
        if callable(validate):
            validate()  # again: a rule may depend on the seeds
    check_seeds(list(cfg.seeds))
    check_common(cfg, preset)
    return cfg


# ------------------------------------------------------------------------------------------ folder
def _manifest_identity(name: str, preset: str, cfg: Any) -> dict[str, Any]:
    config = {k: v for k, v in to_plain_dict(cfg).items() if k not in _EXECUTION_KEYS}
    return {"experiment": name, "preset": preset, "seeds": [int(s) for s in cfg.seeds], "config": config}


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for key in ("experiment", "preset", "seeds"):
        if old.get(key) != new[key]:
            out.append(f"{key} {old.get(key)!r} -> {new[key]!r}")
    oc, nc = _flatten(old.get("config", {})), _flatten(new["config"])
    for key in sorted(set(oc) | set(nc)):
        if key != "seeds" and oc.get(key) != nc.get(key):
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


class RunFolder:
    """The output folder of one run and its manifest."""

    def __init__(self, path: Path):
        self.path = path
        self.manifest: dict[str, Any] = {}
        self.created: list[Path] = []  # folders this run created (removed again on an early error)

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

    def foreign_entries(self, manifest: dict[str, Any] | None) -> list[str]:
        owned = set(manifest.get("files", [])) | {MANIFEST} if manifest else set()
        return sorted(p.name for p in self.path.iterdir() if p.name not in owned) if self.path.is_dir() else []

    # -- preparing
    def prepare(self, identity: dict[str, Any], *, resume: bool, overwrite: bool, command: str) -> None:
        """Check everything about the folder, then create it and write the manifest."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise OutputError(f"--out {path} is a file, not a folder; choose a folder path")
        manifest = self.read_manifest() if path.is_dir() else None
        if resume:
            self._check_resume(manifest, identity)
        elif path.is_dir() and any(path.iterdir()):
            if manifest is None:
                legacy = (path / "metrics.json").exists() or (path / "config.yaml").exists()
                what = "a run without a manifest" if legacy else "files that are not a reprozoo run"
                raise OutputExistsError(f"{path} holds {what} ({', '.join(self.foreign_entries(None)[:3])}...); "
                                        "choose an empty or new --out")
            if not overwrite:
                raise OutputExistsError(
                    f"{path} already holds a {manifest.get('status', 'previous')} run of {manifest['experiment']}; pass "
                    "--overwrite to replace it, --resume to continue it, or choose another --out")
            foreign = self.foreign_entries(manifest)
            if foreign:
                raise OutputExistsError(f"--overwrite refused: {path} also holds {', '.join(foreign[:5])}, which "
                                        "the run did not write; move them away or choose another --out")
        self._make_dirs()
        self._probe_writable()
        if manifest is not None and not resume:
            for name in manifest.get("files", []):
                target = path / name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                elif target.exists() or target.is_symlink():
                    target.unlink()
        if resume and manifest is not None:
            self.manifest = dict(manifest)
            self.manifest.update(status="running", resumed=int(manifest.get("resumed", 0)) + 1)
        else:
            from reprozoo import __version__

            self.manifest = {**identity, "command": command, "code_version": __version__,
                             "created": datetime.now().isoformat(timespec="seconds"), "status": "running",
                             "files": [MANIFEST]}
        self.write_manifest()

    def _check_resume(self, manifest: dict[str, Any] | None, identity: dict[str, Any]) -> None:
        if manifest is None:
            raise OutputError(f"--resume: {self.path} holds no run to continue (no {MANIFEST}); "
                              "drop --resume to start a new run there")
        diff = _differences(manifest, identity)
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
            missing.append(p)
            p = p.parent
        if not p.is_dir():
            raise OutputError(f"cannot create --out {self.path}: {p} is a file")
        for d in reversed(missing):
            try:
                d.mkdir()
            except OSError as err:
                self.remove_created()
                raise OutputError(f"cannot create {d}: {err.strerror}") from None
            self.created.append(d)

    def _probe_writable(self) -> None:
        probe = self.path / f".reprozoo-write-test-{time.monotonic_ns()}"
        try:
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            self.remove_created()
            raise OutputError(f"cannot write into {self.path}: {err.strerror}") from None

    # -- bookkeeping
    def own(self, name: str) -> None:
        if name and name not in self.manifest.get("files", []):
            self.manifest.setdefault("files", []).append(name)
            self.write_manifest()

    def record_entries(self) -> None:
        names = set(self.manifest.get("files", []))
        names |= {p.name for p in self.path.iterdir() if not p.name.startswith(".reprozoo-write-test")}
        self.manifest["files"] = sorted(names)

    def write_manifest(self) -> None:
        atomic_write_text(self.path / MANIFEST, json.dumps(self.manifest, indent=2, default=str) + "\n")

    def finish(self, status: str) -> None:
        self.record_entries()
        self.manifest["status"] = status
        self.manifest["updated"] = datetime.now().isoformat(timespec="seconds")
        self.write_manifest()

    def has_finished_trials(self) -> bool:
        trials = self.path / "trials"
        return trials.is_dir() and any(trials.glob("*.json"))

    def remove_tmp_files(self) -> None:
        for tmp in self.path.rglob("*.tmp"):
            if tmp.is_file():
                tmp.unlink()

    def remove_run_files(self) -> None:
        """Remove what this run wrote (it had not produced a finished trial)."""
        self.record_entries()
        for name in self.manifest.get("files", []):
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            elif target.exists() or target.is_symlink():
                target.unlink()
        self.remove_created()

    def remove_created(self) -> None:
        for d in reversed(self.created):
            try:
                d.rmdir()
            except OSError:
                break
        self.created = []


def resume_command(name: str, preset: str, seeds: list[int], overrides: list[str], out: Path) -> str:
    import shlex

    parts = ["reprozoo", "run", name, "--preset", preset, "--seeds", ",".join(map(str, seeds))]
    for o in overrides:
        parts += ["--set", o]
    parts += ["--out", str(out), "--resume"]
    return " ".join(shlex.quote(p) for p in parts)


def run_experiment(
    name: str,
    preset: str = "quick",
    *,
    seeds: list[int] | None = None,
    overrides: list[str] | None = None,
    out_dir: str | Path | None = None,
    runs_root: str | Path = "runs",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Run experiment ``name`` and return ``(out_dir, metrics.json contents)``.

    Everything that can be checked is checked before the output folder is touched.
    """
    spec = get_experiment(name)
    overrides = list(overrides or [])
    cfg = resolve_config(spec, preset, seeds, overrides)
    if resume and out_dir is None:
        raise ConfigError("--resume needs --out pointing at the run to continue")
    out = Path(out_dir) if out_dir is not None else default_out_dir(name, runs_root)
    folder = RunFolder(out)
    folder.prepare(_manifest_identity(name, preset, cfg), resume=resume, overwrite=overwrite,
                   command=resume_command(name, preset, list(cfg.seeds), overrides, out).rsplit(" --resume", 1)[0])
    threads_before = torch.get_num_threads()
    start = time.perf_counter()
    prov = start_provenance()
    try:
        atomic_write_text(out / "config.yaml", to_yaml(cfg))
        folder.own("config.yaml")
        if getattr(cfg, "threads", 0):
            torch.set_num_threads(cfg.threads)
        ctx = RunContext(out, preset, resume, progress, cfg, folder)
        result: ExperimentResult = spec.run(cfg, ctx)
        data = _metrics(spec, name, preset, cfg, overrides, result, time.perf_counter() - start)
        data["provenance"] = finish_provenance(prov, torch.get_num_threads())
        if resume:
            data["provenance"]["resumed"] = True  # wall and CPU seconds cover this process only
        write_metrics(out, data)
        write_report(out, data, result, paper=spec.paper)
    except KeyboardInterrupt:
        folder.remove_tmp_files()
        folder.finish("interrupted")
        raise RunInterrupted(resume_command(name, preset, list(cfg.seeds), overrides, out)) from None
    except BaseException:
        folder.remove_tmp_files()
        if resume or folder.has_finished_trials():
            folder.finish("failed")  # resumable: the finished trials are kept
        else:
            folder.remove_run_files()
        raise
    finally:
        torch.set_num_threads(threads_before)
    folder.finish("finished")
    return out, data


def _metrics(spec, name, preset, cfg, overrides, result: ExperimentResult, runtime_s: float) -> dict[str, Any]:
    data = {
        "experiment": name,
        "paper": spec.paper,
        "preset": preset,
        "seeds": [int(s) for s in cfg.seeds],
        "overrides": list(overrides),
        "claim": result.claim or spec.claim,
        "verdict": result.verdict,
        "evidence": result.evidence,
        "metrics": result.metrics,
        "runtime_s": round(runtime_s, 3),
        "environment": environment(),
    }
    if result.headline is not None:
        data["headline"] = result.headline.record()
    if result.claims:
        data["claims"] = [{**c, "headline": bool(c.get("headline", False))} for c in result.claims]
    return data
