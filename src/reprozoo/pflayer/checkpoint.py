"""Weights in and out: our checkpoints (the library's one format) and readers of the official PfLayer
layout and torchvision's ResNet layout.

``save_pretrained(model, path, **extra)`` is :func:`reprozoo.runtime.checkpoint.save_checkpoint`: one
``.safetensors`` file with the weights, the registered model name and its constructor kwargs, so
``create_model(name, checkpoint_path=path)`` or ``load_checkpoint(path)`` rebuild the model from it.

``load_pretrained(model, source)`` takes a path (``.safetensors`` or a torch file read with
``weights_only=True``) or a state dict, unwraps ``{"state_dict"|"model"|"state_dict_ema": ...}`` and
DDP's ``module.`` prefix, renames the keys to ours and loads *all or nothing*: a missing,
unexpected or shape-mismatched key raises :class:`~reprozoo.errors.CheckpointError` naming the
keys (so a checkpoint of another architecture - another spatial op, width or depth - is refused).

Renamings (applied to any layout; our own keys pass through unchanged):

* official ``resnet_pf.py``: ``conv1.{0,1}`` -> ``stem.{conv,bn}``; per block
  ``reduction_block.{0,1}`` -> ``reduce``, ``conv_block.{0,1}`` (or ``conv_block.1.{0,1}`` after the
  hybrid block's avg-pool) -> ``spatial``, ``expansion_block.{0,1}`` -> ``expand``,
  ``downsample.{0,1}`` -> ``downsample.{conv,bn}``;
* torchvision ``resnet50``: ``conv1``/``bn1`` (stem), ``conv1/bn1``, ``conv2/bn2``, ``conv3/bn3`` per
  block, ``downsample.{0,1}``;
* official ``vit_pf.py`` / ``pit_pf.py``: the max-pool mixer's linears are called ``attn.qkv`` /
  ``attn.proj`` there (``attn.fc1`` / ``attn.fc2`` here); PiT's ``transformers.{s}`` are our
  ``stages.{s}``.

Our own checkpoints pass through unchanged, so ``load_pretrained`` also reads them into a model you
built. The official layouts are read only; everything is written in the library's format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reprozoo.runtime.checkpoint import (
    load_checkpoint,
    load_strict,
    read_state_dict,
    save_checkpoint,
    unwrap_state_dict,
)

_RESNET_RULES = [
    (r"^conv1\.0\.", "stem.conv."), (r"^conv1\.1\.", "stem.bn."),  # official
    (r"^conv1\.", "stem.conv."), (r"^bn1\.", "stem.bn."),  # torchvision
    (r"\.reduction_block\.0\.", ".reduce.conv."), (r"\.reduction_block\.1\.", ".reduce.bn."),
    (r"\.conv_block\.1\.0\.", ".spatial.conv."), (r"\.conv_block\.1\.1\.", ".spatial.bn."),
    (r"\.conv_block\.0\.", ".spatial.conv."), (r"\.conv_block\.1\.", ".spatial.bn."),
    (r"\.expansion_block\.0\.", ".expand.conv."), (r"\.expansion_block\.1\.", ".expand.bn."),
    (r"(layer\d+\.\d+)\.conv1\.", r"\1.reduce.conv."), (r"(layer\d+\.\d+)\.bn1\.", r"\1.reduce.bn."),
    (r"(layer\d+\.\d+)\.conv2\.", r"\1.spatial.conv."), (r"(layer\d+\.\d+)\.bn2\.", r"\1.spatial.bn."),
    (r"(layer\d+\.\d+)\.conv3\.", r"\1.expand.conv."), (r"(layer\d+\.\d+)\.bn3\.", r"\1.expand.bn."),
    (r"\.downsample\.0\.", ".downsample.conv."), (r"\.downsample\.1\.", ".downsample.bn."),
]
_TRANSFORMER_RULES = [(r"^transformers\.(\d+)\.", r"stages.\1.")]


def _rename(key: str, rules: list[tuple[str, str]]) -> str:
    for pattern, repl in rules:  # in order: the official stem rule runs before torchvision's
        key = re.sub(pattern, repl, key)
    return key


def to_native_state_dict(model: nn.Module, state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """``state`` (any supported layout) with our key names for ``model``."""
    from reprozoo.pflayer.resnet import PfResNet
    from reprozoo.pflayer.transformer_blocks import EffLayer

    tensors = unwrap_state_dict(state)
    if isinstance(model, PfResNet):
        return {_rename(k, _RESNET_RULES): v for k, v in tensors.items()}
    out = {_rename(k, _TRANSFORMER_RULES): v for k, v in tensors.items()}
    eff = {name for name, m in model.named_modules() if isinstance(m, EffLayer)}
    fixed = {}
    for k, v in out.items():
        m = re.match(r"^(.*\.attn)\.(qkv|proj)\.(weight|bias)$", k)
        if m and m.group(1) in eff:
            k = f"{m.group(1)}.{'fc1' if m.group(2) == 'qkv' else 'fc2'}.{m.group(3)}"
        fixed[k] = v
    return fixed


def load_pretrained(model: nn.Module, source: str | Path | Mapping[str, Any]) -> nn.Module:
    """Load every weight of ``model`` from ``source`` or raise :class:`CheckpointError`; returns ``model``."""
    state = read_state_dict(source) if isinstance(source, (str, Path)) else dict(source)
    return load_strict(model, to_native_state_dict(model, state), what=f"{type(model).__name__}{_describe(model)}",
                       hint="it was saved from another architecture (spatial op, width, depth or number of classes)")


def _describe(model: nn.Module) -> str:
    op = getattr(model, "spatial_op", None)
    return f" (spatial op '{op}', width {model.width_mult:g})" if op is not None else ""


def save_pretrained(model: nn.Module, path: str | Path, *, model_name: str | None = None,
                    model_kwargs: Mapping[str, Any] | None = None, **extra: Any) -> Path:
    """Write ``model`` as a ``reprozoo.checkpoint/1`` file (``*.safetensors``): weights, the name and
    kwargs ``create_model`` built it with (``model_name`` / ``model_kwargs`` for a model built from
    the classes directly) and ``extra`` JSON values."""
    return save_checkpoint(model, path, model_name=model_name, model_kwargs=model_kwargs, **extra)


def load(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """``(model, extra)`` from a file written by :func:`save_pretrained` (the model in eval mode)."""
    return load_checkpoint(path)
