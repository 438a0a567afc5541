"""One executor for an experiment's independent trials (arm x seed x setting).

An experiment declares its trials as small picklable :class:`Trial` specs and a module-level
function ``fn(trial, ctx) -> plain data`` (dicts, lists, numbers, strings). :func:`run_trials`
runs them with one of three executors and hands the results back in the order of the specs::

    trials = [Trial("rm", s, k=20) for s in cfg.seeds] + [Trial("er", s, k=20) for s in cfg.seeds]
    results = ctx.run_trials(run_one, trials)          # list aligned with ``trials``

- ``serial``: in this process, one after the other;
- ``local``: worker processes (``spawn``), each running trials with ``config.threads`` torch threads, each
  killed with its parent (no orphans), one GPU per worker when GPUs are used;
- ``ray``: tasks on a Ray cluster (``executor.address=auto`` or ``host:port``; a local one
  otherwise), with ``executor.cpus_per_trial`` / ``executor.gpus_per_trial``.

Every finished trial is written at once, atomically, to ``<run>/trials/<key>.json``; a resumed
run loads those and runs only the missing ones. Before a trial runs, Python, NumPy and torch are
seeded from the trial's seed and settings, *not its arm*: the arms of one seed draw common random
numbers (the same dropout masks, shuffles and initial draws wherever their code consumes the streams
alike), so paired differences measure the arms, not the noise. Every trial runs with the same number
of torch CPU threads under every executor (``config.threads``, default 1), so a trial's result
depends on its spec alone, never on the executor, the worker it landed on or the completion order.
When no progress bar is shown (stdout is not a terminal), every finished trial prints one line on
stderr, ``[12/40] rm seed3 done in 4.1 s`` (see :mod:`reprozoo.runtime.progress`).
The executors themselves live in :mod:`reprozoo.runtime.executors`.
"""

from __future__ import annotations

import contextvars
import json
import math
import os
import re
import time
import traceback
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprozoo.errors import ConfigError, ReproZooError

EXECUTORS = ("serial", "local", "ray")


@dataclass
class ExecutorConfig:
    """How the trials of one run are executed (part of every experiment config as ``executor``)."""

    kind: str = "local"  # serial | local | ray
    workers: int = 0  # local: processes (0 = as many as fit: CPU cores, or GPUs when on GPU)
    address: str = ""  # ray: "" starts a local Ray, "auto" joins the running cluster, or host:port
    cpus_per_trial: float = 1.0  # ray: CPUs reserved per trial
    gpus_per_trial: float = 0.0  # ray: GPUs reserved per trial (fractions share a GPU)

    def validate(self) -> None:
        if self.kind not in EXECUTORS:
            raise ConfigError(f"executor.kind must be one of {', '.join(EXECUTORS)}, got '{self.kind}'")
        if self.workers < 0:
            raise ConfigError(f"executor.workers must be >= 0 (0 = automatic), got {self.workers}")
        for name in ("cpus_per_trial", "gpus_per_trial"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"executor.{name} must be a finite number >= 0, got {value}")
        if self.cpus_per_trial == 0 and self.gpus_per_trial == 0 and self.kind == "ray":
            raise ConfigError("executor.cpus_per_trial and executor.gpus_per_trial cannot both be 0")


@dataclass(frozen=True)
class Trial:
    """One independent unit of work: an arm, a seed and optional settings (``Trial("rm", 0, k=20)``)."""

    arm: str
    seed: int
    params: tuple[tuple[str, Any], ...] = ()

    def __init__(self, arm: str, seed: int, params: Any = (), **kw: Any):
        items = dict(params) if params else {}
        items.update(kw)
        object.__setattr__(self, "arm", str(arm))
        object.__setattr__(self, "seed", int(seed))
        object.__setattr__(self, "params", tuple(sorted(items.items())))

    def __getitem__(self, name: str) -> Any:
        return dict(self.params)[name]

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)

    @property
    def key(self) -> str:
        """A stable, file-name-safe identifier, e.g. ``rm__seed0__k20``."""
        parts = [self.arm, f"seed{self.seed}"] + [f"{k}{_short(v)}" for k, v in self.params]
        return re.sub(r"[^A-Za-z0-9_.=+-]", "-", "__".join(parts))

    def label(self) -> str:
        """Short human form for log lines: ``rm seed3 k=20``."""
        return " ".join([self.arm, f"seed{self.seed}"] + [f"{k}={_short(v)}" for k, v in self.params])

    def describe(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.params)
        return f"Trial(arm={self.arm!r}, seed={self.seed}{extra})"


def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(_short(v) for v in value)
    return str(value)


@dataclass
class TrialContext:
    """What a trial function gets besides its spec."""

    config: Any  # the experiment's resolved config
    run_dir: Path
    trial_key: str
    resume: bool = False
    device: str = "auto"  # the device this worker should use ("auto" -> the config's choice)
    _dir: Path | None = field(default=None, repr=False)

    @property
    def workdir(self) -> Path:
        """A folder of this trial's own (checkpoints, per-epoch logs), created on first use."""
        if self._dir is None:
            self._dir = self.run_dir / "trials" / self.trial_key
            self._dir.mkdir(parents=True, exist_ok=True)
        return self._dir


class TrialError(ReproZooError):
    """A trial raised; the finished trials are kept in the run folder for ``--resume``."""


def trial_seed(key: str) -> int:
    return zlib.crc32(key.encode())


def stream_key(trial: Trial) -> str:
    """The part of a trial's key its random streams are seeded from: seed and settings, no arm,
    so the arms of one seed share their streams (common random numbers)."""
    return "__".join([f"seed{trial.seed}"] + [f"{k}{_short(v)}" for k, v in trial.params])


def trial_threads(config: Any) -> int:
    """Torch CPU threads of every trial, the same under every executor: ``config.threads``, or 1.
    (Float sums split over a different number of threads round differently.)"""
    return int(getattr(config, "threads", 0) or 0) or 1


def plain(obj: Any) -> Any:
    """numpy / torch scalars and arrays -> JSON-ready Python values."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if hasattr(obj, "tolist") and callable(obj.tolist):
        return obj.tolist()
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    return obj


def _seed_all(seed: int) -> None:
    from reprozoo.runtime.seeding import seed_everything

    seed_everything(seed)


def call_trial(fn: Callable, trial: Trial, ctx: TrialContext) -> Any:
    """Seed the random streams from the trial's seed and settings, run it, return plain data."""
    _seed_all(trial_seed(stream_key(trial)))
    return plain(fn(trial, ctx))


def _call_here(fn: Callable, trial: Trial, ctx: TrialContext, threads: int) -> Any:
    """Run one trial in this process with ``threads`` torch threads, restoring the count after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return call_trial(fn, trial, ctx)
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------ storage
def _trials_dir(run_dir: Path) -> Path:
    return run_dir / "trials"


def _result_path(run_dir: Path, trial: Trial) -> Path:
    return _trials_dir(run_dir) / f"{trial.key}.json"


def _store(run_dir: Path, trial: Trial, result: Any) -> None:
    from reprozoo.runtime.report import atomic_write_text

    record = {"trial": {"arm": trial.arm, "seed": trial.seed, "params": plain(dict(trial.params))},
              "result": result}
    atomic_write_text(_result_path(run_dir, trial), json.dumps(record, allow_nan=True) + "\n")


def load_finished(run_dir: Path, trials: Sequence[Trial]) -> dict[int, Any]:
    """Results already stored for ``trials`` (index -> result); unreadable files count as missing."""
    done = {}
    for i, t in enumerate(trials):
        path = _result_path(run_dir, t)
        if path.exists():
            try:
                done[i] = json.loads(path.read_text())["result"]
            except (ValueError, KeyError):
                path.unlink()
    return done


# ------------------------------------------------------------------------------------------ the API
# set by reprozoo.runtime.redecide: every trial must come from the run folder, none may run
STORED_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("reprozoo_stored_only", default=False)


def run_trials(
    fn: Callable[[Trial, TrialContext], Any],
    trials: Sequence[Trial],
    *,
    config: Any,
    run_dir: str | Path,
    executor: ExecutorConfig | None = None,
    resume: bool = False,
    progress: bool | None = None,
    description: str = "trials",
) -> list[Any]:
    """Run every trial (skipping those stored in ``run_dir`` when ``resume``) and return their
    results in the order of ``trials``. ``fn`` must be a module-level function (it is pickled)."""
    from reprozoo.runtime.progress import fmt_seconds, lines_enabled, log_line, progress_bar

    trials = list(trials)
    keys = [t.key for t in trials]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ConfigError(f"duplicate trials {dup[:3]}: every (arm, seed, settings) must be distinct")
    executor = executor or ExecutorConfig(kind="serial")
    executor.validate()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # under `accelerate launch` / `torchrun` every rank runs the same trials in the same order,
        # each training spread over all ranks; separate worker processes would break that
        executor = ExecutorConfig(kind="serial")
    run_dir = Path(run_dir)
    _trials_dir(run_dir).mkdir(parents=True, exist_ok=True)
    done = load_finished(run_dir, trials) if resume else {}
    todo = [i for i in range(len(trials)) if i not in done]
    if todo and STORED_ONLY.get():
        raise ConfigError(f"{len(todo)} of {len(trials)} trials have no stored result (first: {trials[todo[0]].key}); "
                          "a run is decided again only from trials it finished: run the experiment again instead")
    errors: list[tuple[int, str]] = []

    lines = lines_enabled(progress)
    if lines and done:
        log_line(f"[{len(done)}/{len(trials)}] {description}: {len(done)} finished before, resumed")
    with progress_bar(len(trials), description, progress) as bar:
        bar.update(len(done))

        def on_done(index: int, result: Any, seconds: float) -> None:
            _store(run_dir, trials[index], result)
            done[index] = result
            bar.update(1)
            if lines:
                log_line(f"[{len(done)}/{len(trials)}] {trials[index].label()} done in {fmt_seconds(seconds)}")

        def on_error(index: int, message: str) -> None:
            errors.append((index, message))
            raise _StopRun

        try:
            if not todo:
                pass
            elif executor.kind == "serial" or (executor.kind == "local" and len(todo) == 1
                                               and not executor.workers):
                for i in todo:
                    ctx = TrialContext(config, run_dir, trials[i].key, resume)
                    start = time.perf_counter()
                    try:
                        result = _call_here(fn, trials[i], ctx, trial_threads(config))
                    except (KeyboardInterrupt, ReproZooError):
                        raise
                    except Exception as err:
                        on_error(i, f"{type(err).__name__}: {err}\n{traceback.format_exc()}")
                    on_done(i, result, time.perf_counter() - start)
            else:
                from reprozoo.runtime.executors import run_local, run_ray

                runner = run_local if executor.kind == "local" else run_ray
                runner(fn, todo, trials, config, run_dir, resume, executor, on_done, on_error)
        except _StopRun:
            pass
    if errors:
        index, message = errors[0]
        first_line, _, tb = message.partition("\n")
        log = _trials_dir(run_dir) / f"{trials[index].key}.error.txt"
        from reprozoo.runtime.report import atomic_write_text

        atomic_write_text(log, message)
        raise TrialError(f"{trials[index].describe()} failed: {first_line} (traceback in {log}); "
                         f"{len(done)}/{len(trials)} trials finished and kept, rerun with --resume")
    return [done[i] for i in range(len(trials))]


class _StopRun(Exception):
    pass
