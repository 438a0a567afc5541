"""DARTS cell networks (Liu et al., ICLR 2019) over the 28-gene genotypes of the GeNAS code.

- Operations: ``none`` (zeros, strided), 3x3 max / average pooling, ``skip_connect`` (identity,
  or the factorized reduce when the edge has stride 2), separable convolutions 3x3 / 5x5 (the
  ReLU-depthwise-pointwise-BN block applied twice), dilated convolutions 3x3 / 5x5 (dilation 2).
- :class:`DartsCell`: inputs s0 (the cell two back) and s1 (the previous cell), each mapped to C
  channels (factorized reduce for s0 when the previous cell reduced, else ReLU-conv1x1-BN); the
  four intermediate nodes sum their inputs; the output concatenates them (4C channels). In a
  reduction cell the edges leaving s0 and s1 have stride 2.
- :class:`DartsNetwork`: the CIFAR macro network (stem conv3x3 to ``stem_multiplier * C``,
  ``layers`` stacked cells, reductions at ``layers // 3`` and ``2 * layers // 3`` doubling C,
  global pooling, linear head; optional auxiliary head after the second reduction). With
  ``genotype=None`` it is the one-shot supernet of the GeNAS code (every edge holds all 8 ops and
  runs the active one; pooling followed by BN); with a genotype it is the discrete network
  (only the chosen ops, pooling without BN, as in the DARTS evaluation network).

All normal cells share the 14 normal genes and all reduction cells the 14 reduction genes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from reprozoo.errors import ConfigError
from reprozoo.genas.models import ReLUConvBN
from reprozoo.genas.spaces import (
    DARTS_EDGES,
    DARTS_OPS,
    DARTS_STEPS,
    ArchitectureError,
    DartsGenotype,
    genas_genotype,
)
from reprozoo.runtime.registry import register_model


# ------------------------------------------------------------------------------ operations
class DartsZero(nn.Module):
    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """ReLU, two 1x1 stride-2 convolutions of C_out/2 channels (the second on the input shifted
    by one pixel), concatenated, BN."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise ConfigError(f"factorized reduce needs an even number of output channels, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class DilConv(nn.Module):
    """ReLU, depthwise k x k (dilation d), pointwise 1x1, BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine))

    def forward(self, x):
        return self.op(x)


class SepConv(nn.Module):
    """Two dilation-1 :class:`DilConv` blocks (the first carries the stride)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(DilConv(c_in, c_in, kernel, stride, padding, 1, affine).op,
                                DilConv(c_in, c_out, kernel, 1, padding, 1, affine).op)

    def forward(self, x):
        return self.op(x)


def darts_op(name: str, c: int, stride: int, affine: bool = True, pool_bn: bool = False) -> nn.Module:
    """One DARTS operation on ``c`` channels (``pool_bn``: pooling followed by BN, as in the
    GeNAS supernet's mixed op)."""
    if name == "none":
        return DartsZero(stride)
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        pool = (nn.MaxPool2d(3, stride=stride, padding=1) if name == "max_pool_3x3"
                else nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False))
        return nn.Sequential(pool, nn.BatchNorm2d(c, affine=affine)) if pool_bn else pool
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine)
    if name in ("sep_conv_3x3", "sep_conv_5x5"):
        k = int(name[-1])
        return SepConv(c, c, k, stride, k // 2, affine)
    if name in ("dil_conv_3x3", "dil_conv_5x5"):
        k = int(name[-1])
        return DilConv(c, c, k, stride, 2 * (k // 2), 2, affine)
    raise ArchitectureError(f"unknown op '{name}'; DARTS ops are {', '.join(DARTS_OPS)}")


def drop_path(x: torch.Tensor, drop_prob: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and rescale the rest (DARTS drop-path)."""
    if drop_prob <= 0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.bernoulli(torch.full((x.shape[0], 1, 1, 1), keep), generator=generator).to(x)
    return x.div(keep).mul(mask)


# ------------------------------------------------------------------------------ genotypes
def darts_from_pairs(normal: Sequence[tuple[str, int]], reduce: Sequence[tuple[str, int]]) -> DartsGenotype:
    """The DARTS paper's notation (two ``(op, input node)`` pairs per intermediate node, nodes 0
    and 1 being the cell inputs) -> a 28-gene :class:`DartsGenotype`."""
    genes: list[int] = []
    for cell in (normal, reduce):
        if len(cell) != 2 * DARTS_STEPS:
            raise ArchitectureError(f"a DARTS cell lists {2 * DARTS_STEPS} (op, input) pairs, got {len(cell)}")
        cell_genes = [0] * len(DARTS_EDGES)
        for k, (op, src) in enumerate(cell):
            node = k // 2 + 2
            if op not in DARTS_OPS or op == "none":
                raise ArchitectureError(f"unknown op '{op}'; DARTS ops are {', '.join(DARTS_OPS[1:])}")
            if not 0 <= int(src) < node:
                raise ArchitectureError(f"node {node} cannot take input {src} (only 0..{node - 1})")
            e = DARTS_EDGES.index((node, int(src)))
            if cell_genes[e] != 0:
                raise ArchitectureError(f"node {node} lists input {src} twice")
            cell_genes[e] = DARTS_OPS.index(op)
        genes += cell_genes
    return DartsGenotype(tuple(genes))


# DARTS (second order), the published CIFAR-10 cell (Liu et al. 2019, 3.3M parameters at C=36, 20 layers)
DARTS_V2 = darts_from_pairs(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)])


def as_darts(genotype) -> DartsGenotype:
    """A :class:`DartsGenotype`, its 28-code string, or a GeNAS model-zoo / ``DARTS_V2`` name."""
    if isinstance(genotype, DartsGenotype):
        return genotype
    if isinstance(genotype, str):
        if genotype == "DARTS_V2":
            return DARTS_V2
        return DartsGenotype.from_string(genotype) if "," in genotype else genas_genotype(genotype)
    if isinstance(genotype, (list, tuple)):
        return DartsGenotype(tuple(genotype))
    raise ArchitectureError(f"not a DARTS genotype: {genotype!r} (give 28 op codes, a string or a genotype name)")


# ------------------------------------------------------------------------------ cells
class DartsCell(nn.Module):
    """One DARTS cell; ``genotype=None`` holds all 8 ops on each of the 14 edges (supernet)."""

    def __init__(self, genotype: DartsGenotype | None, c_pp: int, c_p: int, c: int, reduction: bool,
                 reduction_prev: bool, *, affine: bool = True, pool_bn: bool = False):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(c_pp, c, affine) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, affine)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, affine)
        genes = None if genotype is None else (genotype.reduce if reduction else genotype.normal)
        self.edges = nn.ModuleList()
        self.active: list[str] = []
        for e, (_, frm) in enumerate(DARTS_EDGES):
            stride = 2 if reduction and frm < 2 else 1
            names = DARTS_OPS if genes is None else ((DARTS_OPS[genes[e]],) if genes[e] else ())
            self.edges.append(nn.ModuleDict({n: darts_op(n, c, stride, affine, pool_bn) for n in names}))
            self.active.append(names[0] if names else "none")
        self.multiplier = DARTS_STEPS

    def set_genes(self, genes: Sequence[int]) -> None:
        active = []
        for edge, g in zip(self.edges, genes):
            name = DARTS_OPS[g]
            if g and name not in edge:
                raise ArchitectureError(f"op '{name}' is not held by this network (a discrete network runs only "
                                        "its own genotype)")
            active.append(name)
        self.active = active

    def forward(self, s0, s1, drop_prob: float = 0.0, generator: torch.Generator | None = None):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for j in range(DARTS_STEPS):
            out = None
            for e, (to, frm) in enumerate(DARTS_EDGES):
                if to != j + 2 or self.active[e] == "none":
                    continue
                op = self.edges[e][self.active[e]]
                y = op(states[frm])
                if self.training and drop_prob > 0 and not isinstance(op, nn.Identity):
                    y = drop_path(y, drop_prob, generator)
                out = y if out is None else out + y
            if out is None:  # an illegal cell: every input of the node is none
                ref = states[1]
                out = ref[:, :, :: 2, :: 2].mul(0.0) if self.reduction else ref.mul(0.0)
            states.append(out)
        return torch.cat(states[2:], dim=1)


class AuxiliaryHeadCIFAR(nn.Module):
    """DARTS's auxiliary head for an 8x8 feature map: ReLU, avg-pool 5 stride 3 (-> 2x2), conv1x1
    to 128, BN, ReLU, conv2x2 to 768, BN, ReLU, linear."""

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True), nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class DartsNetwork(nn.Module):
    """DARTS NetworkCIFAR of stacked cells (discrete genotype) or the GeNAS one-shot supernet
    (``genotype=None``); ``set_genotype`` picks the path a supernet runs."""

    def __init__(self, genotype=None, *, C: int = 36, layers: int = 20, num_classes: int = 10, in_chans: int = 3,
                 stem_multiplier: int = 3, auxiliary: bool = False, drop_path_prob: float = 0.0,
                 pool_bn: bool | None = None, affine: bool = True):
        super().__init__()
        if C < 1 or C % 2 or layers < 3 or stem_multiplier < 1:
            raise ConfigError(f"DARTS network needs an even C >= 2, layers >= 3 and stem_multiplier >= 1, got C={C}, "
                              f"layers={layers}, stem_multiplier={stem_multiplier}")
        if not 0 <= drop_path_prob < 1:
            raise ConfigError(f"drop_path_prob must be in [0, 1), got {drop_path_prob}")
        self.genotype = None if genotype is None else as_darts(genotype)
        if self.genotype is not None and not self.genotype.legal:
            raise ArchitectureError(f"genotype {self.genotype} is outside the DARTS space: every intermediate node "
                                    "needs exactly 2 non-none inputs")
        pool_bn = self.genotype is None if pool_bn is None else pool_bn
        self.num_classes, self.drop_path_prob, self.generator = num_classes, drop_path_prob, None
        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_chans, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        self.reductions = (layers // 3, 2 * layers // 3)
        reduction_prev, c_aux = False, c_p
        for i in range(layers):
            reduction = i in self.reductions
            if reduction:
                c_curr *= 2
            cell = DartsCell(self.genotype, c_pp, c_p, c_curr, reduction, reduction_prev, affine=affine,
                             pool_bn=pool_bn)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.multiplier * c_curr
            if i == self.reductions[1]:
                c_aux = c_p
        self.aux_index = self.reductions[1]
        self.auxiliary_head = AuxiliaryHeadCIFAR(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)
        self.active = self.genotype
        if self.genotype is not None:
            self.set_genotype(self.genotype)

    @property
    def is_supernet(self) -> bool:
        return self.genotype is None

    def set_genotype(self, genotype) -> DartsNetwork:
        g = as_darts(genotype)
        for cell in self.cells:
            cell.set_genes(g.reduce if cell.reduction else g.normal)
        self.active = g
        return self

    def _run(self, x):
        if self.active is None:
            raise ArchitectureError("the supernet has no active genotype; call set_genotype(...) first")
        aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob, self.generator)
            if i == self.aux_index and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        return s1, aux

    def forward_features(self, x):
        return self._run(x)[0]

    def forward_head(self, x):
        return self.classifier(self.global_pooling(x).flatten(1))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def path_vector(self, genotype, state: dict[str, torch.Tensor], *, dil_gamma_twice: bool = True) -> torch.Tensor:
        """The RLNAS angle vector of ``genotype``'s path read from ``state`` (see
        :func:`reprozoo.genas.darts_angle.darts_path_vector`)."""
        if not self.is_supernet:
            raise ArchitectureError("the angle vector is defined on the supernet (genotype=None)")
        from reprozoo.genas.darts_angle import darts_path_vector

        return darts_path_vector(self, genotype, state, dil_gamma_twice=dil_gamma_twice)

    def forward_train(self, x) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, auxiliary logits or None); the auxiliary head runs only in training mode."""
        feats, aux = self._run(x)
        return self.forward_head(feats), aux


def count_darts_params(model: nn.Module) -> int:
    """Parameters without the auxiliary head (how DARTS reports model size)."""
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith("auxiliary_head."))


class AuxiliaryStep:
    """``step_fn`` for :func:`reprozoo.genas.supernet.fit_in_memory`: cross-entropy plus
    ``weight`` x the auxiliary head's cross-entropy."""

    def __init__(self, weight: float = 0.4):
        self.weight = weight

    def __call__(self, model: nn.Module, batch):
        x, y = batch
        logits, aux = model.forward_train(x)
        loss = nn.functional.cross_entropy(logits, y)
        if aux is not None and self.weight > 0:
            loss = loss + self.weight * nn.functional.cross_entropy(aux, y)
        return loss


@register_model
def darts_cifar(genotype="DARTS_V2", num_classes: int = 10, C: int = 36, layers: int = 20, auxiliary: bool = True,
                **kw) -> DartsNetwork:
    """DARTS NetworkCIFAR (default: the DARTS-V2 cell, C=36, 20 layers, auxiliary head)."""
    return DartsNetwork(genotype, C=C, layers=layers, num_classes=num_classes, auxiliary=auxiliary, **kw)


@register_model
def genas_darts_supernet(num_classes: int = 10, C: int = 16, layers: int = 8, checkpoint_path=None,
                         **kw) -> DartsNetwork:
    """The GeNAS CIFAR one-shot supernet: 8 DARTS cells, C=16 (stem 48), every edge holds all 8 ops.
    ``checkpoint_path``: supernet weights in the official GeNAS code's key layout (or ours), loaded strictly."""
    net = DartsNetwork(None, C=C, layers=layers, num_classes=num_classes, **kw)
    if checkpoint_path is not None:
        from reprozoo.genas.official import official_to_reprozoo
        from reprozoo.runtime.checkpoint import load_strict, read_state_dict, unwrap_state_dict

        state = official_to_reprozoo(unwrap_state_dict(read_state_dict(checkpoint_path)))
        load_strict(net, state, what=f"a GeNAS supernet with C={C}, layers={layers}")
    return net
