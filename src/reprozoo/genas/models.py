"""NAS-Bench-201-style networks: one class for the weight-sharing supernet (every edge holds all
5 ops and runs the one of the active genotype) and for a stand-alone network (every edge holds
only its own op). Macro layouts:

- ``nb201``: the NAS-Bench-201 CIFAR network: stem conv3x3 + BN, 3 stages of ``cells_per_stage``
  cells (C, 2C, 4C) joined by residual reduction blocks, BN-ReLU, global pooling, linear head;
- ``tiny``: stem conv3x3 + BN -> cell(C) -> ReLU-conv3x3-stride-2-BN (2C) -> cell(2C) -> BN-ReLU ->
  pooling -> linear (for 8x8 digits on a CPU).

All cells of a network share one genotype (as in NAS-Bench-201).
"""

from __future__ import annotations

import torch
from torch import nn

from reprozoo.genas.spaces import (
    NB201_EDGES,
    NB201_NODES,
    NB201_OPS,
    ArchitectureError,
    NB201Genotype,
    as_nb201,
)
from reprozoo.runtime.registry import register_model


class ReLUConvBN(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, affine: bool = True,
                 track: bool = True):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False),
                                nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                                nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track))

    def forward(self, x):
        return self.op(x)


class Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


class AvgPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x):
        return self.pool(x)


def nb201_op(name: str, c: int, affine: bool, track: bool) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1, affine=affine, track=track)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3, affine=affine, track=track)
    if name == "avg_pool_3x3":
        return AvgPool()
    raise ArchitectureError(f"unknown op '{name}'; NAS-Bench-201 ops are {', '.join(NB201_OPS)}")


class Edge(nn.Module):
    """One edge; holds ``ops`` (all 5 in a supernet, one in a stand-alone net), runs ``active``."""

    def __init__(self, ops: tuple[str, ...], c: int, affine: bool, track: bool):
        super().__init__()
        self.ops = nn.ModuleDict({name: nb201_op(name, c, affine, track) for name in ops})
        self.active = ops[0]

    def forward(self, x):
        return self.ops[self.active](x)


class NB201Cell(nn.Module):
    def __init__(self, c: int, genotype: NB201Genotype | None, affine: bool = True, track: bool = True):
        super().__init__()
        self.edges = nn.ModuleList(
            Edge(NB201_OPS if genotype is None else (genotype.ops[e],), c, affine, track)
            for e in range(len(NB201_EDGES)))

    def set_genotype(self, genotype: NB201Genotype) -> None:
        for edge, op in zip(self.edges, genotype.ops):
            if op not in edge.ops:
                raise ArchitectureError(f"op '{op}' is not held by this network (a stand-alone network "
                                        "runs only its own genotype)")
            edge.active = op

    def forward(self, x):
        nodes = [x]
        for j in range(1, NB201_NODES):
            out = None
            for e, (to, frm) in enumerate(NB201_EDGES):
                if to != j or self.edges[e].active == "none":
                    continue
                y = self.edges[e](nodes[frm])
                out = y if out is None else out + y
            nodes.append(out if out is not None else torch.zeros_like(x))
        return nodes[-1]


class ResReduction(nn.Module):
    """NAS-Bench-201's residual reduction block."""

    def __init__(self, c_in: int, c_out: int, affine: bool, track: bool):
        super().__init__()
        self.a = ReLUConvBN(c_in, c_out, 3, 2, affine, track)
        self.b = ReLUConvBN(c_out, c_out, 3, 1, affine, track)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x):
        return self.b(self.a(x)) + self.shortcut(x)


class NB201Network(nn.Module):
    """A supernet (``genotype=None``) or a stand-alone network of NAS-Bench-201 cells.

    ``set_genotype`` picks the path a supernet runs; ``forward_features`` / ``forward_head`` as in timm.
    """

    def __init__(self, genotype=None, *, layout: str = "nb201", C: int = 16, cells_per_stage: int = 5,
                 num_classes: int = 10, in_chans: int = 3, affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        if layout not in ("nb201", "tiny"):
            raise ArchitectureError(f"unknown layout '{layout}'; choose nb201 or tiny")
        if C < 1 or cells_per_stage < 1:
            raise ArchitectureError(f"C and cells_per_stage must be >= 1, got {C} and {cells_per_stage}")
        self.genotype = None if genotype is None else as_nb201(genotype)
        self.layout, self.num_classes = layout, num_classes
        aff, trk = affine, track_running_stats
        self.stem = nn.Sequential(nn.Conv2d(in_chans, C, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(C, affine=aff, track_running_stats=trk))
        blocks: list[nn.Module] = []
        widths = [C, 2 * C, 4 * C] if layout == "nb201" else [C, 2 * C]
        for s, w in enumerate(widths):
            if s > 0:
                if layout == "nb201":
                    blocks.append(ResReduction(widths[s - 1], w, aff, trk))
                else:
                    blocks.append(ReLUConvBN(widths[s - 1], w, 3, 2, aff, trk))
            blocks += [NB201Cell(w, self.genotype, aff, trk) for _ in range(cells_per_stage)]
        self.cells = nn.ModuleList(blocks)
        self.lastact = nn.Sequential(nn.BatchNorm2d(widths[-1], affine=aff, track_running_stats=trk), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(widths[-1], num_classes)
        self.active = self.genotype
        if self.genotype is not None:
            self.set_genotype(self.genotype)

    @property
    def is_supernet(self) -> bool:
        return self.genotype is None

    def set_genotype(self, genotype) -> NB201Network:
        g = as_nb201(genotype)
        for m in self.cells:
            if isinstance(m, NB201Cell):
                m.set_genotype(g)
        self.active = g
        return self

    def forward_features(self, x):
        if self.active is None:
            raise ArchitectureError("the supernet has no active genotype; call set_genotype(...) first")
        x = self.stem(x)
        for m in self.cells:
            x = m(x)
        return self.lastact(x)

    def forward_head(self, x):
        return self.classifier(self.pool(x).flatten(1))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def path_parameters(self, genotype=None) -> list[tuple[str, nn.Parameter]]:
        return path_parameters(self, genotype)

    def path_vector(self, genotype, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """RLNAS-style path vector of ``genotype`` read from ``state`` (a state dict): the
        weights outside the cells, then per cell the concatenated op weights of each input->output
        path (dropped when it has a ``none`` edge); parameter-free ops get stand-ins (pooling: a
        constant 1/9 kernel of shape [C, 3, 3]; skip: the C x C identity)."""
        g = as_nb201(genotype)
        names = [n for n, _ in self.named_parameters() if ".edges." not in n]
        parts = [state[n].flatten().float() for n in names]
        for ci, m in enumerate(self.cells):
            if not isinstance(m, NB201Cell):
                continue
            width = _cell_width(self, ci)
            for path in NB201_PATHS:
                if any(g.ops[e] == "none" for e in path):
                    continue
                for e in path:
                    parts += _edge_vector(state, f"cells.{ci}.edges.{e}.ops.{g.ops[e]}", g.ops[e], width)
        return torch.cat(parts)


NB201_PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))  # input->output paths as edge indices


def _cell_width(model: NB201Network, ci: int) -> int:
    w = model.stem[0].out_channels
    for m in model.cells[: ci + 1]:
        if isinstance(m, ResReduction):
            w = m.a.op[1].out_channels
        elif isinstance(m, ReLUConvBN):
            w = m.op[1].out_channels
    return w


def _edge_vector(state, prefix: str, op: str, c: int) -> list[torch.Tensor]:
    if op == "skip_connect":
        return [torch.eye(c).flatten()]
    if op == "avg_pool_3x3":
        return [torch.full((c * 9,), 1.0 / 9.0)]
    out = [state[f"{prefix}.op.1.weight"].flatten().float()]
    for k in ("op.2.weight", "op.2.bias"):
        if f"{prefix}.{k}" in state:
            out.append(state[f"{prefix}.{k}"].flatten().float())
    return out


def path_parameters(model: NB201Network, genotype=None) -> list[tuple[str, nn.Parameter]]:
    """The parameters a genotype's path uses (shared blocks plus the active op of every edge)."""
    g = as_nb201(genotype) if genotype is not None else model.active
    unused = set()
    for ci, m in enumerate(model.cells):
        if isinstance(m, NB201Cell):
            for e, edge in enumerate(m.edges):
                for name in edge.ops:
                    if name != g.ops[e]:
                        unused.add(f"cells.{ci}.edges.{e}.ops.{name}.")
    return [(n, p) for n, p in model.named_parameters() if not any(n.startswith(u) for u in unused)]


@register_model
def nb201_supernet(num_classes: int = 10, C: int = 16, cells_per_stage: int = 5, **kw) -> NB201Network:
    """The NAS-Bench-201 CIFAR supernet (C=16, N=5)."""
    return NB201Network(None, C=C, cells_per_stage=cells_per_stage, num_classes=num_classes, **kw)


@register_model
def nb201_net(genotype="|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
              num_classes: int = 10, C: int = 16, cells_per_stage: int = 5, **kw) -> NB201Network:
    """A stand-alone NAS-Bench-201 CIFAR network (default: the benchmark's best CIFAR-10 cell)."""
    return NB201Network(genotype, C=C, cells_per_stage=cells_per_stage, num_classes=num_classes, **kw)


@register_model
def nb201_tiny_supernet(num_classes: int = 10, C: int = 8, in_chans: int = 1, **kw) -> NB201Network:
    """Two-cell supernet for 8x8 digits (C=8 then 16)."""
    return NB201Network(None, layout="tiny", C=C, cells_per_stage=1, num_classes=num_classes, in_chans=in_chans, **kw)


@register_model
def nb201_tiny_net(genotype="|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
                   num_classes: int = 10, C: int = 8, in_chans: int = 1, **kw) -> NB201Network:
    """Stand-alone two-cell network for 8x8 digits."""
    return NB201Network(genotype, layout="tiny", C=C, cells_per_stage=1, num_classes=num_classes,
                        in_chans=in_chans, **kw)
