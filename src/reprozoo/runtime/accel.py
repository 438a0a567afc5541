"""Building the HF Accelerate ``Accelerator`` the same way everywhere.

``split_batches=True``: the batch size a user sets is the *global* batch, so one process and
N processes see the same optimisation (the distributed test checks this).
"""

from __future__ import annotations

import os
import re

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration

from reprozoo.errors import ConfigError


def resolve_device(name: str | torch.device) -> str:
    """A user's device string as torch reads it: ``auto`` -> ``cuda`` when a GPU is visible, else
    ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` as given, once checked to be present here.
    A ``torch.device`` is read as its string (``torch.device("cuda", 1)`` is ``cuda:1``)."""
    name = str(name) if isinstance(name, torch.device) else name
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("device 'mps' was asked for but this machine has no MPS backend; use cpu or auto")
        return name
    match = re.fullmatch(r"cuda(?::(\d+))?", name) if isinstance(name, str) else None
    if match is None:
        raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps, got '{name}'")
    if not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' was asked for but no CUDA GPU is visible; use cpu or auto")
    if match.group(1) is not None and int(match.group(1)) >= torch.cuda.device_count():
        raise ConfigError(f"device '{name}' does not exist: {torch.cuda.device_count()} CUDA device(s) visible")
    return name


def _launched() -> bool:
    """True in a process started by ``accelerate launch`` / ``torchrun`` (one of several)."""
    return int(os.environ.get("LOCAL_RANK", -1)) != -1 or int(os.environ.get("WORLD_SIZE", 1)) > 1


def _release_other_state(resolved: str, mixed_precision: str) -> None:
    """Accelerate keeps one device and one precision per process (its shared ``AcceleratorState``):
    a process that trains on the CPU and then on a GPU, or without and then with mixed precision
    (a test session, a notebook), would get the first device again without a word, or accelerate's
    ValueError. Outside a launched multi-process run, a state that differs from what is asked is
    released so the new Accelerator is built as asked; an Accelerator built before keeps working
    only until then (build one per training, as the library's calls do)."""
    from accelerate.state import AcceleratorState, PartialState

    if _launched() or not AcceleratorState._shared_state:
        return
    device = PartialState._shared_state.get("device")
    on_cpu = device is None or torch.device(device).type == "cpu"
    other_device = (resolved == "cpu") != on_cpu
    if other_device or AcceleratorState._shared_state.get("_mixed_precision") != mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=True)


def make_accelerator(device: str | torch.device = "auto", mixed_precision: str = "no") -> Accelerator:
    """The library's ``Accelerator`` on ``device``, read by :func:`resolve_device`: ``auto`` (the GPU
    when one is visible, or as ``accelerate launch`` placed this process) | ``cpu`` | ``cuda`` |
    ``cuda:N`` | ``mps``. ``cuda:N`` makes GPU N this process's current CUDA device
    (``torch.cuda.set_device``); in a launched multi-process run each process already has its GPU, so
    there it is refused (use ``auto`` and ``CUDA_VISIBLE_DEVICES``)."""
    if mixed_precision not in ("no", "fp16", "bf16"):
        raise ConfigError(f"mixed_precision must be no|fp16|bf16, got '{mixed_precision}'")
    name = str(device) if isinstance(device, torch.device) else device
    resolved = resolve_device(name)
    index = re.fullmatch(r"cuda:(\d+)", resolved)
    if index is not None:
        if _launched():
            raise ConfigError(f"device '{resolved}' names one GPU, but this process is one of a launched "
                              "multi-process run that places each process on its own GPU; use auto or cuda")
        torch.cuda.set_device(int(index.group(1)))
    _release_other_state(resolved, mixed_precision)
    return Accelerator(
        cpu=resolved == "cpu",
        mixed_precision=mixed_precision,
        dataloader_config=DataLoaderConfiguration(split_batches=True),
    )
