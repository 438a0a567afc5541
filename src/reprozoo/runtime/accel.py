"""Building the HF Accelerate ``Accelerator`` the same way everywhere.

``split_batches=True``: the batch size a user sets is the *global* batch, so one process and
N processes see the same optimisation (the distributed test checks this).
"""

from __future__ import annotations

import re

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration

from reprozoo.errors import ConfigError

_DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str) -> str:
    """A user's device string as torch reads it: ``auto`` -> ``cuda`` when a GPU is visible, else
    ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` as given, once checked to be present here."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("device 'mps' was asked for but this machine has no MPS backend; use cpu or auto")
        return name
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if match is None:
        raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps, got '{name}'")
    if not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' was asked for but no CUDA GPU is visible; use cpu or auto")
    if match.group(1) is not None and int(match.group(1)) >= torch.cuda.device_count():
        raise ConfigError(f"device '{name}' does not exist: {torch.cuda.device_count()} CUDA device(s) visible")
    return name


def make_accelerator(device: str = "auto", mixed_precision: str = "no") -> Accelerator:
    """``device``: auto (GPU if present / as launched) | cpu | cuda | mps."""
    if device not in _DEVICES:
        raise ConfigError(f"device must be one of {list(_DEVICES)}, got '{device}'")
    if mixed_precision not in ("no", "fp16", "bf16"):
        raise ConfigError(f"mixed_precision must be no|fp16|bf16, got '{mixed_precision}'")
    return Accelerator(
        cpu=device == "cpu",
        mixed_precision=mixed_precision,
        dataloader_config=DataLoaderConfiguration(split_batches=True),
    )
