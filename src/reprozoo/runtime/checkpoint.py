"""Reading weight files and loading them strictly: shared by every package that loads released
or user checkpoints.

- :func:`read_state_dict`: tensors of a ``.safetensors`` file or a weights-only torch file;
- :func:`unwrap_state_dict`: strips ``{"state_dict": ...}``-style wrappers and DDP's ``module.``;
- :func:`load_strict`: loads a renamed state dict only if it fits the model exactly, otherwise a
  :class:`~reprozoo.errors.CheckpointError` names the missing, unexpected and mis-shaped keys and
  the model is left untouched;
- :func:`save_safetensors`: a model's weights as safetensors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reprozoo.errors import CheckpointError

WRAPPERS = ("state_dict_ema", "state_dict", "model", "model_state")
OPTIONAL_SUFFIXES = ("num_batches_tracked",)  # absent from older checkpoints


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """The mapping stored in ``path`` (``.safetensors`` or a torch file read with weights_only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} does not exist; pass a .safetensors, .pth or .pt file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path)))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any reader failure means the file is not a checkpoint we can use
        raise CheckpointError(f"cannot read checkpoint {path}: {str(err).splitlines()[0]}") from err
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, not a state dict")
    return dict(obj)


def unwrap_state_dict(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of ``state`` after removing a training wrapper and DDP's ``module.`` prefix."""
    for key in WRAPPERS:
        if isinstance(state.get(key), Mapping):
            state = state[key]
            break
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()
            if torch.is_tensor(v)}


def _listing(keys: list[str], limit: int = 5) -> str:
    head = ", ".join(keys[:limit])
    return head + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_strict(model: nn.Module, state: Mapping[str, torch.Tensor], *, what: str = "",
                hint: str = "", skip: Iterable[str] = ()) -> nn.Module:
    """Load ``state`` (already in the model's key names) into ``model`` if every key fits.

    Keys starting with a prefix in ``skip`` are left as the model has them (e.g. a classifier that
    is being replaced); ``num_batches_tracked`` may be absent. Anything else missing, unexpected or
    of another shape raises :class:`CheckpointError` and nothing is loaded.
    """
    skip = tuple(skip)
    own = model.state_dict()
    state = {k: v for k, v in state.items() if not (skip and k.startswith(skip))}
    missing = [k for k in own if k not in state and not k.endswith(OPTIONAL_SUFFIXES)
               and not (skip and k.startswith(skip))]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in state
                  if k in own and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_listing(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {_listing(mismatched, 3)}")
    if problems:
        name = what or type(model).__name__
        raise CheckpointError(f"checkpoint does not fit {name} (" + "; ".join(problems) + "); nothing was loaded"
                              + (f"; {hint}" if hint else ""))
    full = {k: state.get(k, own[k]) for k in own}
    model.load_state_dict(full, strict=True)
    return model


def save_safetensors(model: nn.Module, path: str | Path) -> Path:
    """Write ``model``'s weights to a ``.safetensors`` file (atomically)."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"weights are written as safetensors; name the file *.safetensors, got {path.name}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give a file path ending in .safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp))
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
