"""The one rule every training call follows for its output folder.

A training call given ``out_dir`` keeps there what it needs to continue (its *marker*, e.g.
``checkpoints/last.pt``) and the settings it ran with (``fit_settings.json``, or inside its state
file). Then:

* a folder without the marker starts a run (``resume=True`` included: there is nothing to continue);
* a folder with the marker is refused unless ``resume=True``
  (:class:`~reprozoo.errors.OutputExistsError`, one line naming the folder): a run is never replaced
  or continued by accident;
* ``resume=True`` compares the saved settings with the call's, key by key, and names the first that
  differs (:class:`~reprozoo.errors.ConfigError`); the keys a call lists as free (a device, how many
  epochs where no schedule depends on it) may change;
* ``resume=True`` without ``out_dir`` is a ``ConfigError``.

>>> from reprozoo.runtime.fit_folder import prepare_out_dir
>>> prepare_out_dir("run", {"lr": 0.1}, resume=False, marker="checkpoints/last.pt")  # doctest: +SKIP
False
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reprozoo.errors import ConfigError, OutputExistsError

logger = logging.getLogger(__name__)
SETTINGS_FILE = "fit_settings.json"
CHECKPOINT = "checkpoints/last.pt"  # the marker of the calls built on runtime.trainer.Trainer


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj, path)`` through a temporary file in the same folder (made if missing), so a
    crash or a second process never leaves a half-written checkpoint at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def as_json(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as the settings file holds them (tuples become lists, other objects their ``str``),
    so a value compares equal to the same value read back."""
    return json.loads(json.dumps(settings, default=str))


def describe_model(model: torch.nn.Module) -> str:
    """``'<class> with <n> parameters'``: what a resume compares of a model (its architecture, not its
    weights, which the checkpoint restores)."""
    return f"{type(model).__name__} with {sum(p.numel() for p in model.parameters())} parameters"


def fingerprint(*arrays: Any) -> str:
    """A short sha256 of arrays or tensors (dtype, shape and bytes): what a resume compares of data."""
    h = hashlib.sha256()
    for a in arrays:
        t = a.detach().cpu() if torch.is_tensor(a) else torch.as_tensor(np.asarray(a))
        t = t.contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def holds_run(out_dir: str | Path | None, marker: str) -> bool:
    """Whether ``out_dir`` holds a run (its ``marker`` file exists)."""
    return out_dir is not None and (Path(out_dir) / marker).is_file()


def check_resume(out_dir: str | Path | None, *, resume: bool, marker: str, what: str = "a training run") -> bool:
    """True when ``out_dir`` holds a run that ``resume`` continues; False when there is none to
    continue (or no ``out_dir``); refuses a run that ``resume`` does not ask for, and ``resume``
    without ``out_dir``."""
    if out_dir is None:
        if resume:
            raise ConfigError("resume=True needs the out_dir of the run to continue")
        return False
    if not holds_run(out_dir, marker):
        return False
    if not resume:
        raise OutputExistsError(f"{out_dir} already holds {what} ({marker}); pass resume=True to continue it, "
                                "or a new out_dir")
    return True


def first_difference(before: dict[str, Any], now: dict[str, Any], free: Iterable[str] = ()) -> str | None:
    """The first key (in sorted order) whose value differs between the two settings, ignoring ``free``."""
    free = set(free)
    for key in sorted(set(before) | set(now)):
        if key not in free and before.get(key) != now.get(key):
            return key
    return None


def check_same_settings(before: dict[str, Any], now: dict[str, Any], out_dir: str | Path,
                        free: Iterable[str] = ()) -> None:
    """Refuse a resume whose settings ``now`` differ from the run's ``before`` (one line naming the key)."""
    key = first_difference(before, now, free)
    if key is not None:
        raise ConfigError(f"resume=True but {key} differs from the run in {out_dir}: {before.get(key)!r} there, "
                          f"{now.get(key)!r} now; resume with the run's settings or use a new out_dir")


def read_settings(out_dir: str | Path, name: str = SETTINGS_FILE) -> dict[str, Any] | None:
    """The settings saved in ``out_dir`` (None when the file is absent: a run of an older version)."""
    path = Path(out_dir) / name
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {path}: {str(err).splitlines()[0]}") from None


def write_settings(out_dir: str | Path, settings: dict[str, Any], name: str = SETTINGS_FILE) -> Path:
    """Write ``settings`` to ``out_dir/name`` atomically (the folder is created)."""
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(as_json(settings), indent=1))
    os.replace(tmp, path)
    return path


def prepare_out_dir(out_dir: str | Path | None, settings: dict[str, Any], *, resume: bool, marker: str = CHECKPOINT,
                    what: str = "a training run", free: Iterable[str] = (), name: str = SETTINGS_FILE,
                    write: bool = True) -> bool:
    """Apply the rule (see the module docstring) to a call whose settings live in ``out_dir/name``;
    True when a run continues. With ``write`` the call's settings are (re)written there (on a resume,
    the free keys take their new values)."""
    again = check_resume(out_dir, resume=resume, marker=marker, what=what)
    if out_dir is None:
        return False
    if again:
        before = read_settings(out_dir, name)
        if before is None:
            logger.warning("%s has no %s (a run from an older version): its settings cannot be checked", out_dir,
                           name)
        else:
            check_same_settings(before, as_json(settings), out_dir, free)
    if write:
        write_settings(out_dir, settings, name)
    else:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    return again
