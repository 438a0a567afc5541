"""The rank study: how the rank of a layer's output depends on its dimension ratio and on the
nonlinearity after it (ReXNet's argument for gently expanding channels and SiLU after expansion).

A random block maps ``X`` (``rows`` samples of width ``d_in``) to ``Y`` (``rows x d_out``);
the *rank ratio* is ``rank(Y) / d_out``. Two rank criteria are offered because results between
nonlinearities depend on it (an ordering can flip between criteria):

* ``numerical``: singular values above ``S_max * max(rows, d_out) * eps`` (NumPy/torch default);
* ``relative``: singular values above ``threshold * S_max``, on ``Y`` as produced
  (``centre=False``) or on ``Y`` minus its per-channel mean (``centre=True``).

Block kinds (BN in training mode over the rows, then the nonlinearity):
``conv1x1`` (a linear layer / expansion layer), ``conv3x3`` (regular 3x3 conv on 8x8 maps),
``ib_dw`` (inverted bottleneck: 1x1 expand x t + BN + act, 3x3 depthwise + BN + act, linear 1x1
projection + BN, ReXNet's partial shortcut) and ``ib_conv`` (same with a regular 3x3 conv).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from reprozoo.errors import ConfigError
from reprozoo.rexnet.blocks import ACTIVATIONS, make_act
from reprozoo.runtime.checks import finite, finite_tensor

KINDS = ("conv1x1", "conv3x3", "ib_dw", "ib_conv")
SPATIAL = 8  # 3x3 kinds work on 8x8 maps; a row is one spatial position


def singular_values(y: torch.Tensor, centre: bool = False) -> torch.Tensor:
    """Singular values (descending) of a ``rows x d`` feature matrix, from the eigenvalues of the
    ``d x d`` Gram matrix in float64: about 2x faster than an SVD for ``rows >> d`` and accurate
    to ~1e-7 of the largest value, far below the float32 numerical-rank cut (~1e-4)."""
    if not isinstance(y, torch.Tensor) or y.ndim != 2:
        raise ConfigError(f"singular_values needs a 2-D (rows x channels) tensor, got {getattr(y, 'shape', type(y))}")
    finite_tensor("features", y)  # NaN made eigvalsh raise LinAlgError
    y = y.detach().to(torch.float64)
    if centre:
        y = y - y.mean(0, keepdim=True)
    if y.shape[0] < y.shape[1]:
        return torch.linalg.svdvals(y)
    return torch.linalg.eigvalsh(y.T @ y).clamp_min(0).sqrt().flip(0)


def rank_from_singular_values(s: torch.Tensor, shape: tuple[int, int], criterion: str = "relative",
                              threshold: float = 0.1, eps: float = torch.finfo(torch.float32).eps) -> int:
    """Number of singular values above the criterion's cut (``eps`` of the data's dtype)."""
    finite_tensor("singular values", s)
    threshold = finite("threshold", threshold)
    if s.numel() == 0 or s.max() <= 0:
        return 0
    if criterion == "numerical":
        cut = s.max() * max(shape) * eps
    elif criterion == "relative":
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"relative rank threshold must be in (0, 1), got {threshold}")
        cut = s.max() * threshold
    else:
        raise ConfigError(f"rank criterion must be 'numerical' or 'relative', got '{criterion}'")
    return int((s > cut).sum())


def rank_ratio(y: torch.Tensor, criterion: str = "relative", threshold: float = 0.1, centre: bool = False) -> float:
    """``rank(Y) / d`` for a ``rows x d`` matrix (a ``N x C x H x W`` map is flattened per position)."""
    if not isinstance(y, torch.Tensor):
        raise ConfigError(f"rank_ratio needs a torch tensor, got {type(y).__name__}")
    if y.ndim == 4:
        y = y.permute(0, 2, 3, 1).reshape(-1, y.shape[1])
    if y.ndim != 2:
        raise ConfigError(f"rank_ratio needs a 2-D (rows x channels) or 4-D feature tensor, got {tuple(y.shape)}")
    if y.shape[0] == 0 or y.shape[1] == 0:
        raise ConfigError(f"rank_ratio needs at least one row and one channel, got {tuple(y.shape)}")
    s = singular_values(y, centre)
    return rank_from_singular_values(s, tuple(y.shape), criterion, threshold) / y.shape[1]


class RandomBlock(nn.Module):
    """One random network of the study; ``forward`` returns the ``rows x d_out`` output matrix."""

    def __init__(self, kind: str, d_in: int, d_out: int, act: str, expansion: int = 6):
        super().__init__()
        if kind not in KINDS:
            raise ConfigError(f"unknown block kind '{kind}'; choose from {', '.join(KINDS)}")
        self.kind, self.d_in, self.d_out = kind, d_in, d_out
        if kind in ("conv1x1", "conv3x3"):
            k = 1 if kind == "conv1x1" else 3
            self.body = nn.Sequential(nn.Conv2d(d_in, d_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(d_out),
                                      make_act(act))
        else:
            hid = d_in * expansion
            groups = hid if kind == "ib_dw" else 1
            self.body = nn.Sequential(
                nn.Conv2d(d_in, hid, 1, bias=False), nn.BatchNorm2d(hid), make_act(act),
                nn.Conv2d(hid, hid, 3, padding=1, groups=groups, bias=False), nn.BatchNorm2d(hid), make_act(act),
                nn.Conv2d(hid, d_out, 1, bias=False), nn.BatchNorm2d(d_out))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        self.train()  # BN normalises with the batch statistics of the random inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if self.kind.startswith("ib"):  # partial shortcut: d_in <= d_out always holds here
            y = torch.cat((y[:, : self.d_in] + x, y[:, self.d_in:]), 1)
        return y.permute(0, 2, 3, 1).reshape(-1, self.d_out)


@dataclass
class RankRecord:
    kind: str
    act: str
    ratio: float  # requested d_in / d_out
    d_in: int
    d_out: int
    draw: int
    numerical: float
    relative: float
    relative_centred: float

    @property
    def actual_ratio(self) -> float:
        return self.d_in / self.d_out


@torch.no_grad()
def rank_sweep(kinds: Sequence[str] = KINDS, acts: Sequence[str] = ("identity", "relu", "relu6", "silu"),
               ratios: Sequence[float] = (0.1, 0.2, 0.4, 0.6, 0.8, 1.0), draws: int = 5,
               d_out_range: tuple[int, int] = (128, 256), rows: int = 1024, expansion: int = 6,
               threshold: float = 0.1, seed: int = 0, progress=None) -> list[RankRecord]:
    """Rank ratios of ``draws`` random blocks per (kind, act, ratio) cell.

    ``d_out ~ U[d_out_range]`` per draw, ``d_in = max(1, round(ratio * d_out))``, inputs
    ``X ~ N(0, 1)``; 3x3 kinds use ``rows / 64`` maps of 8x8 so every kind has ``rows`` rows.
    The draw's ``d_out`` and input depend only on ``(seed, draw, ratio)``, so every kind and
    nonlinearity sees the same shapes and the same inputs (paired comparisons).
    """
    lo, hi = d_out_range
    if not 1 <= lo <= hi or rows <= hi:
        raise ConfigError(f"need 1 <= d_out_min <= d_out_max < rows (so rank is not capped by rows), "
                          f"got d_out_range={d_out_range}, rows={rows}")
    for a in acts:
        if a not in ACTIVATIONS:
            raise ConfigError(f"unknown activation '{a}'; choose from {', '.join(ACTIVATIONS)}")
    for r in ratios:
        if not 0.0 < r <= 1.0:
            raise ConfigError(f"dimension ratios must be in (0, 1], got {r}")
    out: list[RankRecord] = []
    for ri, ratio in enumerate(ratios):
        for draw in range(draws):
            g = torch.Generator().manual_seed(seed * 1_000_003 + ri * 10_007 + draw)
            d_out = int(torch.randint(lo, hi + 1, (1,), generator=g))
            d_in = max(1, round(ratio * d_out))
            x1 = torch.randn(rows, d_in, 1, 1, generator=g)
            x3 = torch.randn(math.ceil(rows / SPATIAL**2), d_in, SPATIAL, SPATIAL, generator=g)
            for kind in kinds:
                x = x1 if kind == "conv1x1" else x3
                for act in acts:
                    torch.manual_seed(seed * 7919 + ri * 131 + draw * 17 + KINDS.index(kind))
                    y = RandomBlock(kind, d_in, d_out, act, expansion)(x)
                    s = singular_values(y)
                    sc = singular_values(y, centre=True)
                    shape = tuple(y.shape)
                    out.append(RankRecord(
                        kind, act, ratio, d_in, d_out, draw,
                        rank_from_singular_values(s, shape, "numerical") / d_out,
                        rank_from_singular_values(s, shape, "relative", threshold) / d_out,
                        rank_from_singular_values(sc, shape, "relative", threshold) / d_out))
                    if progress is not None:
                        progress()
    return out


def cell_means(records: Sequence[RankRecord], field: str) -> dict[tuple[str, str, float], float]:
    """Mean of ``field`` per (kind, act, ratio)."""
    sums: dict[tuple[str, str, float], list[float]] = {}
    for r in records:
        sums.setdefault((r.kind, r.act, r.ratio), []).append(getattr(r, field))
    return {k: sum(v) / len(v) for k, v in sums.items()}


@torch.no_grad()
def feature_rank(model: nn.Module, inputs: torch.Tensor, layers: Sequence[str] | None = None,
                 criterion: str = "relative", threshold: float = 0.1, centre: bool = False) -> dict[str, float]:
    """Rank ratio of the output of each named submodule of ``model`` on ``inputs`` (forward hooks).

    ``layers`` defaults to the direct children of ``model.blocks`` when it exists. Feature maps
    are flattened to ``(N*H*W) x C``; keep ``N*H*W > C`` for a meaningful ratio.
    """
    named = dict(model.named_modules())
    if layers is None:
        layers = [f"blocks.{i}" for i in range(len(model.blocks))] if hasattr(model, "blocks") else []
    unknown = [n for n in layers if n not in named]
    if unknown:
        raise ConfigError(f"unknown layer names {unknown}; use names from model.named_modules()")
    captured: dict[str, torch.Tensor] = {}
    handles = [named[n].register_forward_hook(lambda _m, _i, o, n=n: captured.__setitem__(n, o)) for n in layers]
    try:
        model(inputs)
    finally:
        for h in handles:
            h.remove()
    return {n: rank_ratio(captured[n], criterion, threshold, centre) for n in layers}
