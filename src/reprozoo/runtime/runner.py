"""Running a registered experiment: resolve and check the config, prepare the run folder under its
lock and manifest, call the experiment, write config.yaml / metrics.json / report.md. Used by the
CLI and by tests.

A run folder is a contract (see :mod:`reprozoo.runtime.run_folder`). One process at a time owns it
(an advisory lock on ``<run>/.lock``; a second run on the same folder is refused with the first
one's PID and changes nothing). ``run.json`` (the manifest) is written first and names the
experiment, preset, seeds, overrides, resolved config, code version, status and every top-level
entry the run created, recorded as it is created. ``--resume`` continues only an unfinished run
with the same experiment, preset, seeds and config (and says what differs otherwise);
``--overwrite`` removes only what the manifest lists and refuses a folder that holds anything
else; the two together are refused; an error found before the first trial finished leaves nothing
behind; a later one leaves a resumable run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from reprozoo.errors import ConfigError, RunInterrupted
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
from reprozoo.runtime.run_folder import MANIFEST, RunFolder, differences  # noqa: F401  (re-exported)

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
        if self._folder is not None:
            self._folder.own(name.split("/")[0])  # recorded as it is created
        path.mkdir(parents=True, exist_ok=True)
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
def _manifest_config(cfg: Any) -> dict[str, Any]:
    return {k: v for k, v in to_plain_dict(cfg).items() if k not in _EXECUTION_KEYS}


def manifest_identity(name: str, preset: str, cfg: Any) -> dict[str, Any]:
    """What a run folder's manifest records to tell one run from another (execution settings left out)."""
    return {"experiment": name, "preset": preset, "seeds": [int(s) for s in cfg.seeds],
            "config": _manifest_config(cfg)}


def config_defaults(cfg: Any) -> dict[str, Any] | None:
    """The config class's defaults as a manifest records them, or None for a class that has no default for
    every field."""
    try:
        return _manifest_config(type(cfg)())
    except TypeError:
        return None


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
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite cannot be combined: --resume continues the run in --out, "
                          "--overwrite replaces it; pass one of them")
    spec = get_experiment(name)
    overrides = list(overrides or [])
    cfg = resolve_config(spec, preset, seeds, overrides)
    if resume and out_dir is None:
        raise ConfigError("--resume needs --out pointing at the run to continue")
    out = Path(out_dir) if out_dir is not None else default_out_dir(name, runs_root)
    folder = RunFolder(out)
    folder.prepare(manifest_identity(name, preset, cfg), resume=resume, overwrite=overwrite,
                   command=resume_command(name, preset, list(cfg.seeds), overrides, out).rsplit(" --resume", 1)[0],
                   defaults=config_defaults(cfg) if resume else None)
    threads_before = torch.get_num_threads()
    start = time.perf_counter()
    prov = start_provenance()
    try:
        folder.own("config.yaml")
        atomic_write_text(out / "config.yaml", to_yaml(cfg))
        if getattr(cfg, "threads", 0):
            torch.set_num_threads(cfg.threads)
        ctx = RunContext(out, preset, resume, progress, cfg, folder)
        result: ExperimentResult = spec.run(cfg, ctx)
        data = _metrics(spec, name, preset, cfg, overrides, result, time.perf_counter() - start)
        data["provenance"] = finish_provenance(prov, torch.get_num_threads())
        if resume:
            data["provenance"]["resumed"] = True  # wall and CPU seconds cover this process only
        folder.own("metrics.json")
        write_metrics(out, data)
        folder.own("report.md")
        write_report(out, data, result, paper=spec.paper)
        folder.finish("finished")
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
        folder.close()  # the lock is released last, after the final manifest
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
