"""The RLNAS / GeNAS angle vector of a path through the DARTS one-shot supernet
(``evolution_search/cand_evaluator.py`` ``get_arch_vector`` in the official GeNAS code), built in
the official element order so that float32 cosines agree to the last bit."""

from __future__ import annotations

from itertools import combinations

import torch

from reprozoo.genas.darts import DartsNetwork, FactorizedReduce, as_darts
from reprozoo.genas.spaces import DARTS_EDGES, DARTS_OPS, DARTS_STEPS, ArchitectureError


def _darts_paths() -> tuple[tuple[int, ...], ...]:
    """Every node sequence from a cell input (0 or 1) through increasing intermediate nodes
    (2..5), as tuples of edge indices into :data:`DARTS_EDGES`: 30 paths, grouped by end node
    (5 first) and start node, node sequences in lexicographic order (the official listing)."""
    out = []
    for end in range(2 + DARTS_STEPS - 1, 1, -1):
        for start in (0, 1):
            inner = range(2, end)
            seqs = sorted((start, *mid, end) for r in range(len(inner) + 1) for mid in combinations(inner, r))
            out += [tuple(DARTS_EDGES.index((b, a)) for a, b in zip(nodes, nodes[1:])) for nodes in seqs]
    return tuple(out)


DARTS_PATHS = _darts_paths()


def _flat(state, name: str) -> torch.Tensor:
    return state[name].detach().reshape(-1).float()


def _darts_edge_vector(state, prefix: str, op: str, c: int, stride: int, dil_gamma_twice: bool) -> list[torch.Tensor]:
    """One edge's contribution to the RLNAS path vector (stand-ins for parameter-free ops)."""
    if op in ("max_pool_3x3", "avg_pool_3x3"):
        return [torch.full((c * 9,), 1.0 / 9.0), _flat(state, f"{prefix}.1.weight"), _flat(state, f"{prefix}.1.bias")]
    if op == "skip_connect":
        if stride == 1:
            return [torch.eye(c).reshape(-1)]
        return [_flat(state, f"{prefix}.{k}") for k in ("conv_1.weight", "conv_2.weight", "bn.weight", "bn.bias")]
    if op.startswith("sep_conv"):
        convs = [_flat(state, f"{prefix}.op.{k}.weight") for k in ("0.1", "0.2", "1.1", "1.2")]
        bns = [_flat(state, f"{prefix}.op.{k}") for k in ("0.3.weight", "0.3.bias", "1.3.weight", "1.3.bias")]
        return convs + bns
    if op.startswith("dil_conv"):
        beta = "op.3.weight" if dil_gamma_twice else "op.3.bias"
        return [_flat(state, f"{prefix}.{k}") for k in ("op.1.weight", "op.2.weight", "op.3.weight", beta)]
    raise ArchitectureError(f"op '{op}' has no path-vector form")


def darts_path_vector(model: DartsNetwork, genotype, state: dict[str, torch.Tensor], *,
                      dil_gamma_twice: bool = True) -> torch.Tensor:
    """The RLNAS / GeNAS angle vector of a DARTS supernet path, read from ``state``.

    Stem conv and BN affine, each cell's two preprocessing blocks (conv(s) and BN affine), the
    classifier weight, and per cell the op weights along every input -> node path of
    :data:`DARTS_PATHS` that has no ``none`` edge (an op shared by several paths counts once per
    path). Stand-ins for parameter-free ops: pooling is a constant 1/9 kernel of shape [C, 3, 3]
    plus the pooling's BN affine, identity the C x C identity matrix; a stride-2 skip is its
    factorized reduce. ``dil_gamma_twice=True`` reproduces the official code, which appends a
    dilated convolution's BN weight twice instead of weight and bias; ``False`` fixes it."""
    g = as_darts(genotype)
    cells, extras = [], [_flat(state, "stem.0.weight"), _flat(state, "stem.1.weight"), _flat(state, "stem.1.bias")]
    for i, cell in enumerate(model.cells):
        for pre in ("preprocess0", "preprocess1"):
            keys = (("conv_1.weight", "conv_2.weight", "bn.weight", "bn.bias")
                    if isinstance(getattr(cell, pre), FactorizedReduce) else ("op.1.weight", "op.2.weight", "op.2.bias"))
            extras += [_flat(state, f"cells.{i}.{pre}.{k}") for k in keys]
        genes = g.reduce if cell.reduction else g.normal
        c = cell.preprocess1.op[1].out_channels
        for path in DARTS_PATHS:
            if any(genes[e] == 0 for e in path):
                continue
            for e in path:
                op = DARTS_OPS[genes[e]]
                stride = 2 if cell.reduction and DARTS_EDGES[e][1] < 2 else 1
                cells += _darts_edge_vector(state, f"cells.{i}.edges.{e}.{op}", op, c, stride, dil_gamma_twice)
    # the official order: the cells' paths, then stem, preprocessing and classifier (the angle does not
    # depend on the order, but float32 sums do, in the last bits)
    parts = cells + extras + [_flat(state, "classifier.weight")]
    return torch.cat(parts)
