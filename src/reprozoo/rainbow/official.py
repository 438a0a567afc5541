"""Read what the official Rainbow Memory code writes: its CIFAR ResNet checkpoints.

The official ``models/cifar.py`` ResNet names its tensors ``initial.block.{0,1}`` (stem conv, BN),
``group{G}.blocks.block{i}.{conv1,conv2}.block.{0,1}`` (the two conv-BN-ReLU units of a block),
``group{G}.blocks.block{i}.downsample.block.{0,1}`` (projection shortcut) and ``fc`` (the task head
``Linear(feat, n_out)`` that the official code puts on at every task start). :func:`convert_official_resnet`
maps those names onto :class:`reprozoo.rainbow.models.CifarResNet`; :func:`load_official_resnet` also
infers the architecture (stages, blocks per stage, widths, classes) from the tensors' shapes, so
ResNet-18 / ResNet-32 checkpoints and cut-down variants load alike. Stage 1 has stride 1 and every
later stage stride 2, as in the official CIFAR ResNets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from reprozoo.errors import CheckpointError
from reprozoo.rainbow.models import CifarResNet

_BLOCK = re.compile(r"^group(\d+)\.blocks\.block(\d+)\.(conv1|conv2|downsample)\.block\.(\d+)\.(.+)$")


def _read(source: str | Path | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def _depths(state: Mapping[str, torch.Tensor]) -> dict[int, int]:
    depth: dict[int, int] = {}
    for key in state:
        m = _BLOCK.match(key)
        if m:
            g, i = int(m.group(1)), int(m.group(2))
            depth[g] = max(depth.get(g, 0), i + 1)
    if not depth or sorted(depth) != list(range(1, len(depth) + 1)):
        raise CheckpointError("not an official Rainbow Memory CIFAR ResNet state dict: expected keys "
                              "group1.blocks.block0.conv1.block.0.weight, ... (groups numbered from 1)")
    return depth


def convert_official_resnet(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official key names -> :class:`CifarResNet` key names (values unchanged)."""
    depth = _depths(state)
    offset, start = 0, {}
    for g in sorted(depth):
        start[g] = offset
        offset += depth[g]
    unit = {"conv1": "body.0", "conv2": "body.1", "downsample": "shortcut"}
    out = {}
    for key, value in state.items():
        m = _BLOCK.match(key)
        if m:
            g, i, part, j, rest = m.groups()
            new = f"blocks.{start[int(g)] + int(i)}.{unit[part]}.{j}.{rest}"
        elif key.startswith("initial.block."):
            new = "stem." + key[len("initial.block."):]
        elif key.startswith("fc."):
            new = "head." + key[len("fc."):]
        else:
            raise CheckpointError(f"unexpected key '{key}' in an official Rainbow Memory ResNet state dict")
        out[new] = value
    return out


def load_official_resnet(source: str | Path | Mapping[str, torch.Tensor]) -> CifarResNet:
    """A :class:`CifarResNet` with the weights of an official checkpoint (a ``.safetensors`` / ``.pt``
    file or a state dict in the official layout). Returned in eval mode."""
    state = _read(source)
    depth = _depths(state)
    for need in ("initial.block.0.weight", "fc.weight", "fc.bias"):
        if need not in state:
            raise CheckpointError(f"official ResNet state dict lacks '{need}'")
    widths = tuple(int(state[f"group{g}.blocks.block0.conv1.block.0.weight"].shape[0]) for g in sorted(depth))
    strides = tuple(1 if g == 1 else 2 for g in sorted(depth))
    stem = state["initial.block.0.weight"]
    model = CifarResNet(tuple(depth[g] for g in sorted(depth)), widths, strides,
                        num_classes=int(state["fc.weight"].shape[0]), in_chans=int(stem.shape[1]))
    if int(stem.shape[0]) != widths[0]:
        raise CheckpointError(f"stem width {stem.shape[0]} differs from stage 1 width {widths[0]}: not a "
                              "CIFAR ResNet of the official code")
    try:
        model.load_state_dict(convert_official_resnet(state), strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"official ResNet weights do not fit the inferred architecture: {first}") from None
    return model.eval()
