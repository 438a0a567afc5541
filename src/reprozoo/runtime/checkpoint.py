"""Reading weight files and loading them strictly: shared by every package that loads released
or user checkpoints.

- :func:`read_state_dict`: tensors of a ``.safetensors`` file or a weights-only torch file;
- :func:`unwrap_state_dict`: strips ``{"state_dict": ...}``-style wrappers and DDP's ``module.``;
- :func:`load_strict`: loads a renamed state dict only if it fits the model exactly, otherwise a
  :class:`~reprozoo.errors.CheckpointError` names the missing, unexpected and mis-shaped keys and
  the model is left untouched;
- :func:`save_safetensors`: a model's weights as safetensors;
- :func:`save_checkpoint` / :func:`load_checkpoint`: the library's one checkpoint format (below).

The checkpoint format (``reprozoo.checkpoint/1``) is one ``.safetensors`` file: the model's state
dict as tensors and, in the file's metadata under ``"reprozoo"``, a JSON object with the format name, the registered
model name, the constructor keyword arguments, the library version and whatever a package needs at
inference time (``extra``: a vocabulary, a normalisation, a decision threshold). Any safetensors
reader can read the weights; :func:`load_checkpoint` rebuilds the model through the registry
(``create_model(name, **kwargs)``) and loads the weights with :func:`load_strict`.
"""

from __future__ import annotations

import json
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


# ---------------------------------------------------------------- the library's checkpoint format
FORMAT = "reprozoo.checkpoint/1"
META_KEY = "reprozoo"
SPEC_ATTR = "reprozoo_spec"  # {"name", "kwargs"}: set by create_model, or a property of the model's class


def _jsonable(obj: Any) -> Any:
    """``json.dumps`` hook: numpy arrays and scalars, tensors, tuples and paths become JSON values."""
    if hasattr(obj, "tolist"):  # numpy arrays / scalars and tensors
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"a {type(obj).__name__} cannot be stored in a checkpoint's JSON metadata")


def model_spec(model: nn.Module) -> tuple[str | None, dict[str, Any]]:
    """The registered name and constructor kwargs ``model`` was built with (``(None, {})`` if unknown)."""
    spec = getattr(model, SPEC_ATTR, None) or {}
    return spec.get("name"), dict(spec.get("kwargs") or {})


def save_checkpoint(model: nn.Module, path: str | Path, *, model_name: str | None = None,
                    model_kwargs: Mapping[str, Any] | None = None, **extra: Any) -> Path:
    """Write ``model`` as a ``reprozoo.checkpoint/1`` file at ``path`` (``*.safetensors``, atomically).

    The model's registered name and constructor kwargs come from ``create_model`` (or a
    ``reprozoo_spec`` property of its class); ``model_name`` / ``model_kwargs`` override them for a
    model built another way. ``extra`` holds JSON values (numpy arrays and tuples become lists) that
    :func:`load_checkpoint` hands back."""
    from safetensors.torch import save_file

    import reprozoo

    name, kwargs = model_spec(model)
    name = model_name or name
    kwargs = dict(model_kwargs) if model_kwargs is not None else kwargs
    if not name:
        raise CheckpointError(f"{type(model).__name__} was not built by create_model, so its registered name is "
                              "unknown; pass model_name=... and model_kwargs=...")
    arrays = [k for k, v in kwargs.items() if hasattr(v, "shape") and hasattr(v, "dtype")]
    if arrays:  # a tensor argument (e.g. a codebook) belongs in the weights, not in the JSON kwargs
        raise CheckpointError(f"model '{name}' was built with an array argument ({arrays[0]}=...), which a checkpoint "
                              "does not store as a keyword; pass model_kwargs=... without it (the weights hold it)")
    meta = {"format": FORMAT, "model": name, "kwargs": kwargs, "version": reprozoo.__version__, "extra": extra}
    try:
        text = json.dumps(meta, default=_jsonable)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"cannot store the checkpoint metadata of '{name}': {err}") from None
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"checkpoints are safetensors files; name the file *.safetensors, got {path.name}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; give a file path ending in .safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    # clone: tied weights share storage, which safetensors refuses; loading re-ties them (same parameter)
    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        # one metadata key: safetensors writes several keys in a random order, so two saves of the
        # same model would differ byte for byte (the JSON text itself names the format)
        save_file(tensors, str(tmp), metadata={META_KEY: text})
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def checkpoint_meta(path: str | Path) -> dict[str, Any] | None:
    """The metadata of a ``reprozoo.checkpoint/1`` file, or None for any other file (an official
    layout, a plain state dict); a missing file raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} does not exist")
    if path.suffix != ".safetensors":
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            stored = f.metadata() or {}
    except Exception as err:  # a truncated or foreign file
        raise CheckpointError(f"cannot read checkpoint {path}: {str(err).splitlines()[0]}") from err
    if META_KEY not in stored:
        return None
    try:
        meta = json.loads(stored[META_KEY])
        if not isinstance(meta, dict) or meta.get("format", stored.get("format")) != FORMAT:
            return None  # a foreign file that happens to use the key, or another format version
        if not isinstance(meta.get("model"), str) or not isinstance(meta.get("kwargs"), dict):
            raise ValueError("no model name or kwargs")
    except (KeyError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{path}: damaged {FORMAT} metadata ({err})") from None
    meta.setdefault("extra", {})
    return meta


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """``(model, extra)`` from a file written by :func:`save_checkpoint`: the model is rebuilt with
    ``create_model(name, **kwargs)``, loaded strictly and put in eval mode."""
    from reprozoo.runtime.registry import create_model

    meta = checkpoint_meta(path)
    if meta is None:
        raise CheckpointError(f"{path} is not a {FORMAT} file (written by reprozoo's save_checkpoint); "
                              "load other layouts with create_model(name, checkpoint_path=...)")
    model = create_model(meta["model"], **meta["kwargs"])
    load_strict(model, read_state_dict(path), what=f"model '{meta['model']}'")
    return model.eval(), dict(meta["extra"])
