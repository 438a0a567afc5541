"""Running a registered experiment: resolve config, prepare the output folder, call the
experiment, write config.yaml / metrics.json / report.md. Used by the CLI and by tests."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from reprozoo.errors import ConfigError, OutputExistsError
from reprozoo.runtime.config import to_yaml
from reprozoo.runtime.registry import ExperimentSpec, get_experiment
from reprozoo.runtime.report import ExperimentResult, environment, write_metrics, write_report


@dataclass
class RunContext:
    """What an experiment's ``run(cfg, ctx)`` gets besides its config."""

    out_dir: Path
    preset: str
    resume: bool = False
    progress: bool | None = None
    config: Any = None

    def run_trials(self, fn, trials, description: str = "trials") -> list[Any]:
        """Run ``fn(trial, trial_ctx)`` for every trial with the config's executor (see
        :mod:`reprozoo.runtime.trials`); results come back in the order of ``trials``."""
        from reprozoo.runtime.trials import run_trials

        return run_trials(fn, trials, config=self.config, run_dir=self.out_dir,
                          executor=getattr(self.config, "executor", None), resume=self.resume,
                          progress=self.progress, description=description)

    @property
    def figures_dir(self) -> Path:
        path = self.out_dir / "figures"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def subdir(self, name: str) -> Path:
        path = self.out_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def default_out_dir(name: str, runs_root: str | Path = "runs") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Path(runs_root) / name / stamp


def resolve_config(spec: ExperimentSpec, preset: str, seeds: list[int] | None, overrides: list[str]):
    cfg = spec.config_cls.from_preset(preset, overrides)
    if seeds is not None:
        if not seeds:
            raise ConfigError("--seeds needs at least one integer, e.g. --seeds 0,1,2")
        cfg.seeds = list(seeds)
    executor = getattr(cfg, "executor", None)
    if executor is not None:
        executor.validate()
    return cfg


def prepare_out_dir(out_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber a finished run unless ``overwrite``; ``resume`` reuses the folder."""
    holds_run = (out_dir / "metrics.json").exists() or (out_dir / "config.yaml").exists()
    if holds_run and not (resume or overwrite):
        raise OutputExistsError(
            f"{out_dir} already holds a run; pass --overwrite to replace it, --resume to continue it, "
            "or choose another --out"
        )
    if holds_run and overwrite and not resume:
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


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
    cfg = resolve_config(spec, preset, seeds, overrides or [])
    out = Path(out_dir) if out_dir is not None else default_out_dir(name, runs_root)
    prepare_out_dir(out, resume=resume, overwrite=overwrite)
    (out / "config.yaml").write_text(to_yaml(cfg))
    threads_before = torch.get_num_threads()
    if getattr(cfg, "threads", 0):
        torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    try:
        result: ExperimentResult = spec.run(cfg, RunContext(out, preset, resume, progress, cfg))
    finally:
        torch.set_num_threads(threads_before)
    data = {
        "experiment": name,
        "paper": spec.paper,
        "preset": preset,
        "seeds": [int(s) for s in cfg.seeds],
        "claim": result.claim or spec.claim,
        "verdict": result.verdict,
        "evidence": result.evidence,
        "metrics": result.metrics,
        "runtime_s": round(time.perf_counter() - start, 3),
        "environment": environment(),
    }
    if result.claims:
        data["claims"] = result.claims
    write_metrics(out, data)
    write_report(out, data, result, paper=spec.paper)
    return out, data
