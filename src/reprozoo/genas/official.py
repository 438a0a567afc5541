"""Weights in the key layout of the official GeNAS code (clovaai/GeNAS, ``evolution_search/
super_model.py`` ``Network``) <-> reprozoo's :class:`~reprozoo.genas.darts.DartsNetwork` supernet.

The official supernet names an edge's op by its index in the op list,
``cells.{i}._ops.{e}._ops.{k}.``; reprozoo names it ``cells.{i}.edges.{e}.{op name}.``. A separable
convolution is one flat sequence there (``op.1/2/3`` then ``op.5/6/7``: depthwise, pointwise, BN
twice) and two sub-blocks here (``op.0.1/2/3``, ``op.1.1/2/3``). Every other name (stem,
preprocessing, pooling BN, factorized reduce, dilated convolutions, classifier) is the same, and
so is the registration order of parameters and buffers, which the flatness noise depends on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from reprozoo.errors import ConfigError, DataError
from reprozoo.genas.darts import DartsNetwork
from reprozoo.genas.spaces import DARTS_OPS

_OFFICIAL_EDGE = re.compile(r"^cells\.(\d+)\._ops\.(\d+)\._ops\.(\d+)\.(.*)$")
_OURS_EDGE = re.compile(r"^cells\.(\d+)\.edges\.(\d+)\.([a-z_0-9]+)\.(.*)$")
_SEP_TO_OURS = {"1": "0.1", "2": "0.2", "3": "0.3", "5": "1.1", "6": "1.2", "7": "1.3"}
_SEP_TO_OFFICIAL = {v: k for k, v in _SEP_TO_OURS.items()}


def official_key_to_reprozoo(key: str) -> str:
    """One official state-dict name -> the reprozoo name."""
    m = _OFFICIAL_EDGE.match(key)
    if m is None:
        return key
    cell, edge, k, rest = m.groups()
    if not 0 <= int(k) < len(DARTS_OPS):
        raise DataError(f"official key '{key}' names op {k}; the GeNAS supernet has ops 0..{len(DARTS_OPS) - 1}")
    op = DARTS_OPS[int(k)]
    if op.startswith("sep_conv"):
        sm = re.match(r"^op\.(\d)\.(.*)$", rest)
        if sm is None or sm.group(1) not in _SEP_TO_OURS:
            raise DataError(f"official key '{key}' is not a separable-convolution parameter (op.1/2/3/5/6/7)")
        rest = f"op.{_SEP_TO_OURS[sm.group(1)]}.{sm.group(2)}"
    return f"cells.{cell}.edges.{edge}.{op}.{rest}"


def reprozoo_key_to_official(key: str) -> str:
    """One reprozoo supernet state-dict name -> the official name (the inverse map)."""
    m = _OURS_EDGE.match(key)
    if m is None:
        return key
    cell, edge, op, rest = m.groups()
    if op not in DARTS_OPS:
        raise DataError(f"key '{key}' names op '{op}', not a DARTS op")
    if op.startswith("sep_conv"):
        sm = re.match(r"^op\.(\d\.\d)\.(.*)$", rest)
        if sm is None or sm.group(1) not in _SEP_TO_OFFICIAL:
            raise DataError(f"key '{key}' is not a separable-convolution parameter")
        rest = f"op.{_SEP_TO_OFFICIAL[sm.group(1)]}.{sm.group(2)}"
    return f"cells.{cell}._ops.{edge}._ops.{DARTS_OPS.index(op)}.{rest}"


def official_to_reprozoo(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An official GeNAS supernet state dict (``module.`` prefixes of DDP checkpoints removed)
    renamed for :class:`DartsNetwork`."""
    out = {}
    for k, v in state.items():
        k = k[len("module."):] if k.startswith("module.") else k
        out[official_key_to_reprozoo(k)] = v
    return out


def reprozoo_to_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A reprozoo DARTS supernet state dict renamed to the official layout."""
    return {reprozoo_key_to_official(k): v for k, v in state.items()}


def _infer_shape(state: Mapping[str, torch.Tensor]) -> tuple[int, int, int, int]:
    """(C, layers, num_classes, in_chans) from an official-layout state dict."""
    try:
        stem = state["stem.0.weight"]
        head = state["classifier.weight"]
    except KeyError as err:
        raise DataError(f"not a GeNAS supernet state dict: no {err.args[0]!r}") from None
    cells = {int(m.group(1)) for k in state if (m := re.match(r"^cells\.(\d+)\.", k))}
    if not cells:
        raise DataError("not a GeNAS supernet state dict: no cells")
    c = int(state["cells.0.preprocess1.op.1.weight"].shape[0])
    return c, max(cells) + 1, int(head.shape[0]), int(stem.shape[1])


def load_official_supernet(source: str | Path | Mapping[str, torch.Tensor], *, C: int | None = None,
                           layers: int | None = None, num_classes: int | None = None,
                           in_chans: int | None = None) -> DartsNetwork:
    """A :class:`DartsNetwork` supernet holding weights saved by the official GeNAS code.

    ``source``: a state dict, or a ``.safetensors`` / ``.pth`` file (``torch.load`` with
    ``weights_only=True``; a checkpoint dict with a ``state_dict`` entry is unwrapped). The shape
    (C, layers, classes, input channels) is read from the weights unless given."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise DataError(f"no checkpoint at {path}")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
                state = state["state_dict"]
    else:
        state = dict(source)
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    c0, l0, n0, i0 = _infer_shape(state)
    C, layers = C or c0, layers or l0
    num_classes, in_chans = num_classes or n0, in_chans or i0
    net = DartsNetwork(None, C=C, layers=layers, num_classes=num_classes, in_chans=in_chans)
    ours = official_to_reprozoo(state)
    missing, unexpected = net.load_state_dict(ours, strict=False)
    if missing or unexpected:
        what = (f"missing {missing[:3]}" if missing else "") + (f" unexpected {unexpected[:3]}" if unexpected else "")
        raise ConfigError(f"the weights do not fit a GeNAS supernet with C={C}, layers={layers}: {what.strip()}")
    return net
