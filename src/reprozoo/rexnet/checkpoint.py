"""Reading ReXNet weights saved in the official repository's layout, timm's layout or ours.

This module only reads: weights are written in the library's one format by
:func:`reprozoo.runtime.checkpoint.save_checkpoint` (``reprozoo rexnet-convert`` converts an official or
timm file to it), and such a file loads with ``create_model(name, checkpoint_path=...)``.

``load_pretrained(model, path_or_state_dict)`` reads a ``.safetensors`` file or a torch file
(``weights_only=True``), unwraps ``{"state_dict": ...}`` / ``{"model": ...}`` and DDP's
``module.`` prefix, renames the keys to ours and refuses partial loads: any missing, unexpected
or shape-mismatched key raises :class:`CheckpointError` naming the keys.

Key layouts (block ``i`` of ``n``):

* official ``rexnetv1.py`` / ``rexnetv1_lite.py``: one ``features`` Sequential (stem conv, BN,
  act, the ``n`` blocks as ``features.{3+i}.out.<k>``, pen conv, BN, act, [pool]) and ``output``
  (``Dropout, Conv1x1`` for v1; ``Conv1x1, BN, ReLU6, Dropout, Conv1x1`` for lite) whose
  classifier is a 1x1 conv (weights reshaped to a linear layer here);
* timm ``rexnet.py``: ``stem.{conv,bn}``, ``features.{i}.{conv_exp,conv_dw,se,conv_pwl}``,
  ``features.{n}`` = pen, ``head.fc``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reprozoo.errors import CheckpointError
from reprozoo.runtime.checkpoint import load_strict, read_state_dict, unwrap_state_dict


def detect_layout(state: Mapping[str, torch.Tensor]) -> str:
    keys = list(state)
    if any(k.startswith("blocks.") for k in keys):
        return "native"
    if any(re.match(r"features\.\d+\.out\.", k) for k in keys) or any(k.startswith("output.") for k in keys):
        return "official"
    if any(k.startswith("features.") for k in keys) and any(k.startswith("stem.") for k in keys):
        return "timm"
    raise CheckpointError("cannot tell the checkpoint layout: expected ReXNet keys like 'blocks.0.*' (ours), "
                          "'features.3.out.0.weight' (official) or 'stem.conv.weight' + 'features.0.*' (timm); "
                          f"first keys: {keys[:4]}")


def _official_prefixes(model: nn.Module) -> list[tuple[str, str]]:
    """(official prefix, our prefix) pairs derived from the model's own structure."""
    pairs = [("features.0.", "stem.conv."), ("features.1.", "stem.bn.")]
    n = len(model.blocks)
    for i, block in enumerate(model.blocks):
        ours, k = f"blocks.{i}.", 0
        theirs = f"features.{3 + i}.out."
        if block.expand is not None:
            pairs += [(f"{theirs}{k}.", ours + "expand.conv."), (f"{theirs}{k + 1}.", ours + "expand.bn.")]
            k += 3  # conv, BN, act
        pairs += [(f"{theirs}{k}.", ours + "dw.conv."), (f"{theirs}{k + 1}.", ours + "dw.bn.")]
        k += 2
        if not isinstance(block.dw.act, nn.Identity):
            k += 1  # lite: act after the depthwise BN
        if block.se is not None:
            pairs += [(f"{theirs}{k}.fc.0.", ours + "se.reduce."), (f"{theirs}{k}.fc.1.", ours + "se.bn."),
                      (f"{theirs}{k}.fc.3.", ours + "se.expand.")]
            k += 1
        if not isinstance(block.post_act, nn.Identity):
            k += 1  # ReLU6 before the projection (v1)
        pairs += [(f"{theirs}{k}.", ours + "project.conv."), (f"{theirs}{k + 1}.", ours + "project.bn.")]
    pairs += [(f"features.{3 + n}.", "pen.conv."), (f"features.{4 + n}.", "pen.bn.")]
    if model.head.hidden is not None:  # lite head
        pairs += [("output.0.", "head.hidden.conv."), ("output.1.", "head.hidden.bn."), ("output.4.", "head.fc.")]
    else:
        pairs += [("output.1.", "head.fc.")]
    return pairs


def _timm_key(key: str, n_blocks: int) -> str:
    m = re.match(r"features\.(\d+)\.(.*)", key)
    if m is None:
        return key  # stem.*, head.fc.*
    i, rest = int(m.group(1)), m.group(2)
    if i == n_blocks:
        return "pen." + rest
    for theirs, ours in (("conv_exp.", "expand."), ("conv_dw.", "dw."), ("conv_pwl.", "project."),
                         ("se.fc1.", "se.reduce."), ("se.fc2.", "se.expand."), ("se.bn.", "se.bn.")):
        if rest.startswith(theirs):
            return f"blocks.{i}.{ours}{rest[len(theirs):]}"
    return key


def to_native_state_dict(model: nn.Module, state: Mapping[str, Any], layout: str = "auto") -> dict[str, torch.Tensor]:
    """Rename ``state`` (official / timm / native layout) to this model's keys; no checks."""
    state = unwrap_state_dict(state)
    layout = detect_layout(state) if layout == "auto" else layout
    if layout not in ("native", "official", "timm"):
        raise CheckpointError(f"layout must be auto|native|official|timm, got '{layout}'")
    if layout == "native":
        return dict(state)
    if layout == "timm":
        return {_timm_key(k, len(model.blocks)): v for k, v in state.items()}
    pairs = _official_prefixes(model)
    out = {}
    for key, value in state.items():
        for theirs, ours in pairs:
            if key.startswith(theirs):
                key = ours + key[len(theirs):]
                break
        out[key] = value
    return out


def load_pretrained(model: nn.Module, checkpoint: str | Path | Mapping[str, Any], *, layout: str = "auto",
                    drop_classifier: bool = False) -> nn.Module:
    """Load ``checkpoint`` (a path or a state dict) into ``model`` strictly and return the model.

    ``drop_classifier=True`` skips the final classifier (fine-tuning to another ``num_classes``).
    """
    state = read_state_dict(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    if not isinstance(state, Mapping):
        raise CheckpointError(f"expected a path or a state dict, got {type(state).__name__}")
    converted = to_native_state_dict(model, state, layout)
    own = model.state_dict()
    for key, target in own.items():
        value = converted.get(key)
        if value is not None and key.startswith("head.fc.") and value.ndim == 4 and target.ndim == 2:
            converted[key] = value.flatten(1)  # official 1x1-conv classifier -> linear
    return load_strict(model, converted, what="this model", skip=("head.fc.",) if drop_classifier else (),
                       hint="check the model name/width, or pass drop_classifier=True for another num_classes")
