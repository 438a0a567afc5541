"""The parallel executors behind :func:`reprozoo.runtime.trials.run_trials`: ``local`` (worker
processes started with ``spawn``, each killed with its parent) and ``ray`` (one task per trial).

Every worker runs each trial with ``config.threads`` torch threads (default 1), exactly as the
serial executor does, and seeds it the same way, so a trial's result does not depend on where it
ran. A worker sends back, with each result, the trial's wall time and the top-level entries it
created in the run folder, which the parent records in the run's manifest.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from reprozoo.runtime.extras import require
from reprozoo.runtime.run_folder import note_created, unwatch, watch
from reprozoo.runtime.trials import ExecutorConfig, Trial, TrialContext, TrialError, call_trial, trial_threads


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGKILL to this process when its parent exits."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:  # pragma: no cover
            pass


def _worker_main(tasks, results, fn, config, run_dir, resume, threads, gpu, parent) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it terminates us
    _die_with_parent()
    if os.getppid() != parent:  # the parent died while this worker was starting
        os._exit(1)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    os.environ["REPROZOO_PROGRESS"] = "0"
    import torch

    torch.set_num_threads(threads)
    created: list[str] = []
    watch(Path(run_dir), created.append)  # top-level entries a trial creates, sent with its result
    while True:
        try:
            item = tasks.get(timeout=2.0)
        except queue.Empty:
            if os.getppid() != parent:
                os._exit(1)
            continue
        if item is None:
            return
        index, trial = item
        ctx = TrialContext(config, Path(run_dir), trial.key, resume)
        start = time.perf_counter()
        try:
            status, payload = "ok", call_trial(fn, trial, ctx)
        except BaseException as err:  # report, then keep serving (the parent stops the run)
            status, payload = "error", f"{type(err).__name__}: {err}\n{traceback.format_exc()}"
        names = sorted(set(created))
        created.clear()
        results.put((index, status, payload, time.perf_counter() - start, names))


def _uses_gpu(config: Any) -> int:
    """How many GPUs the run may use (0 when the config asks for the CPU or none is there)."""
    device = str(getattr(config, "device", "auto"))
    if device == "cpu":
        return 0
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # pragma: no cover
        return 0


def plan_workers(n_trials: int, executor: ExecutorConfig, config: Any) -> tuple[int, int]:
    """(workers, torch threads per worker) for the local executor."""
    cpus = _cpu_count()
    gpus = _uses_gpu(config)
    workers = executor.workers or (gpus if gpus else cpus)
    workers = max(1, min(workers, n_trials))
    return workers, trial_threads(config)


def _deliver(run_dir, index, status, payload, seconds, names, on_done, on_error) -> None:
    """Hand one finished trial back: record the run-folder entries it created, then its result or error."""
    for name in names:
        note_created(run_dir, name)
    if status == "ok":
        on_done(index, payload, seconds)
    else:
        on_error(index, payload)


def run_local(fn, todo, trials, config, run_dir, resume, executor, on_done, on_error) -> None:
    """The ``local`` executor: worker processes; ``on_done(index, result, seconds)`` in this process."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    workers, threads = plan_workers(len(todo), executor, config)
    gpus = _uses_gpu(config)
    tasks, results = ctx.Queue(), ctx.Queue()
    procs = []
    for w in range(workers):
        gpu = (w % gpus) if gpus and workers > 1 else None
        p = ctx.Process(target=_worker_main, daemon=True,
                        args=(tasks, results, fn, config, str(run_dir), resume, threads, gpu, os.getpid()))
        p.start()
        procs.append(p)
    try:
        for i in todo:
            tasks.put((i, trials[i]))
        for _ in procs:
            tasks.put(None)
        pending = set(todo)
        while pending:
            try:
                index, status, payload, seconds, names = results.get(timeout=0.5)
            except queue.Empty:
                dead = [p for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
                if dead:
                    raise TrialError(
                        f"a worker process died (exit code {dead[0].exitcode}, e.g. killed or out of memory) "
                        f"while {len(pending)} trial(s) were unfinished; finished trials are kept, rerun with --resume"
                    ) from None
                continue
            pending.discard(index)
            _deliver(run_dir, index, status, payload, seconds, names, on_done, on_error)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():  # pragma: no cover - terminate ignored
                p.kill()
                p.join()
        tasks.close()
        results.close()


def run_ray(fn, todo, trials, config, run_dir, resume, executor, on_done, on_error) -> None:
    """The ``ray`` executor: one Ray task per trial."""
    ray = require("ray", what="the ray executor")
    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "ignore_reinit_error": True}
        if executor.address:
            kw["address"] = executor.address
        else:
            kw["num_cpus"] = _cpu_count()
        ray.init(**kw)
        started = True
    threads = trial_threads(config)

    def remote(trial: Trial):
        import torch

        torch.set_num_threads(threads)
        os.environ["REPROZOO_PROGRESS"] = "0"
        ctx = TrialContext(config, Path(run_dir), trial.key, resume)
        created: list[str] = []
        watch(Path(run_dir), created.append)
        start = time.perf_counter()
        try:
            status, payload = "ok", call_trial(fn, trial, ctx)
        except Exception as err:
            status, payload = "error", f"{type(err).__name__}: {err}\n{traceback.format_exc()}"
        finally:
            unwatch(Path(run_dir))
        return status, payload, time.perf_counter() - start, sorted(set(created))

    task = ray.remote(num_cpus=executor.cpus_per_trial, num_gpus=executor.gpus_per_trial)(remote)
    refs = {task.remote(trials[i]): i for i in todo}
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
            for ref in ready:
                index = refs.pop(ref)
                _deliver(run_dir, index, *ray.get(ref), on_done, on_error)
    finally:
        for ref in refs:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
