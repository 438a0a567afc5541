"""The state of a continual run after each finished task, so an interrupted stream resumes.

:meth:`ContinualLearner.fit(..., out_dir=...) <reprozoo.rainbow.strategies.ContinualLearner.fit>`
writes ``out_dir/stream_state.pt`` (a weights-only torch file, replaced atomically) after every task:
the model's weights and head size, the episodic memory, the EWC penalty's Fisher and anchor, every
random stream (the learner's numpy generator, its augmentation generator and the global RNGs), the
results of the finished tasks and the run's settings. ``resume=True`` restores it and continues with
the next task; the run then ends as a run that was never stopped, bit for bit on the CPU.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reprozoo.runtime.fit_folder import as_json, atomic_save, check_resume, check_same_settings, fingerprint
from reprozoo.runtime.seeding import get_rng_state, set_rng_state

FILE = "stream_state.pt"


def _tensor(a: Any) -> Any:
    return torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a


def _array(t: Any) -> Any:
    return t.numpy() if torch.is_tensor(t) else t


def run_settings(learner, scenario, x_train, x_test, y_test) -> dict[str, Any]:
    """What a resumed run must share with the run it continues (compared key by key)."""
    out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(learner.s).items()}
    tasks = [np.asarray(t, dtype=np.int64) for t in scenario.tasks]
    out.update(seed=learner.seed, scenario=fingerprint(np.asarray(scenario.labels, dtype=np.int64), *tasks),
               train_data=fingerprint(x_train), test_data=fingerprint(x_test, np.asarray(y_test, dtype=np.int64)))
    return as_json(out)  # the values as the file will hold them


def check_out_dir(out_dir: str | Path, resume: bool, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The saved state to continue from (None: start the stream); refuses a state that ``resume``
    does not ask for and a resume with other settings, naming the first that differs (the library's
    rule for output folders, :mod:`reprozoo.runtime.fit_folder`; the settings live in the state)."""
    if not check_resume(out_dir, resume=resume, marker=FILE, what="a continual run"):
        return None
    state = torch.load(Path(out_dir) / FILE, map_location="cpu", weights_only=True)
    check_same_settings(json.loads(state["settings"]), settings, out_dir)
    return state


def save_state(out_dir: str | Path, learner, task: int, model: torch.nn.Module, n_out: int, seen: set[int],
               results: dict[str, list], settings: dict[str, Any]) -> None:
    """Write the state after task ``task`` (see the module docstring)."""
    mem, ewc = learner.memory, learner.ewc_state
    state = {
        "task": task, "n_out": n_out, "seen": sorted(seen), "model": model.state_dict(),
        "memory": {"keys": _tensor(mem.keys), "labels": _tensor(mem.labels), "n_seen": int(mem.n_seen)},
        "ewc": None if ewc is None else {"fisher": ewc[0], "anchor": ewc[1]},
        "numpy_rng": json.dumps(learner.rng.bit_generator.state), "augment_rng": learner.gen.get_state(),
        "global_rng": get_rng_state(), "settings": json.dumps(settings),
        "results": {
            "task_acc": list(results["task_acc"]), "best_acc": list(results["best_acc"]),
            "class_acc": [_tensor(a) for a in results["class_acc"]],
            "mem_labels": [_tensor(a) for a in results["mem_labels"]],
            "mem_keys": [_tensor(a) for a in results["mem_keys"]],
            "selections": [None if s is None else {k: _tensor(v) for k, v in s.items()} for s in results["selections"]],
        },
    }
    path = Path(out_dir) / FILE
    atomic_save(state, path)


def restore(state: dict[str, Any], learner, model: torch.nn.Module) -> tuple[int, set[int], dict[str, list]]:
    """Put ``state`` back into ``learner`` and ``model`` (a fresh build); returns ``(n_out, seen,
    results)``. The global RNGs are restored last, after every draw the rebuilding made."""
    with torch.random.fork_rng(devices=[]):
        model.reset_head(state["n_out"])
    model.load_state_dict(state["model"])
    mem = learner.memory
    mem.keys, mem.labels = _array(state["memory"]["keys"]), _array(state["memory"]["labels"])
    mem.n_seen = int(state["memory"]["n_seen"])
    ewc = state["ewc"]
    learner.ewc_state = None if ewc is None else (
        {k: v.to(learner.device) for k, v in ewc["fisher"].items()},
        {k: v.to(learner.device) for k, v in ewc["anchor"].items()})
    learner.rng.bit_generator.state = json.loads(state["numpy_rng"])
    learner.gen.set_state(state["augment_rng"])
    r = state["results"]
    results = {"task_acc": list(r["task_acc"]), "best_acc": list(r["best_acc"]),
               "class_acc": [_array(a) for a in r["class_acc"]], "mem_labels": [_array(a) for a in r["mem_labels"]],
               "mem_keys": [_array(a) for a in r["mem_keys"]],
               "selections": [None if s is None else {k: _array(v) for k, v in s.items()} for s in r["selections"]]}
    set_rng_state(state["global_rng"])
    return int(state["n_out"]), set(state["seen"]), results
