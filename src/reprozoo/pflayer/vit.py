"""Efficient transformers of the paper (Sec. 4): ViT-max and PiT-max.

The "EffLayer" replaces self-attention in every other block: Linear d -> 3d, GELU, reshape the
tokens to their square grid, 3x3 max-pool (stride 1, pad 1), back to tokens, GELU, Linear 3d -> d,
dropout. Blocks are pre-norm (``x + drop_path(mixer(LN(x)))``, ``x + drop_path(MLP(LN(x)))``, MLP
ratio 4, LayerNorm eps 1e-6); block ``i`` (0-based, restarting in every PiT stage) uses
multi-head self-attention when ``i`` is even and the EffLayer when ``i`` is odd
(``mixer="attn"`` builds the same skeleton with attention everywhere, the baseline).

* ViT-max: 16x16 conv patch embedding, a learned position embedding for the patches only (no
  class token), 12 blocks, final LN, average over tokens, linear head. Init: truncated normal
  (std .02) for Linear weights and the position embedding, zero biases, unit LayerNorms.
* PiT-max: conv patch embedding (kernel = patch, no padding) on a square grid plus a learned
  position map (bicubically resized for other input sizes), three stages joined by a depthwise
  3x3 stride-2 pooling conv that doubles the width (``groups = in_dim``), no class token, final LN,
  token average, linear head. Only LayerNorms (and the position map) are explicitly initialised.

Token grids must be square: an input whose token count is not a perfect square raises a
:class:`~reprozoo.errors.DataError`. The blocks and token mixers are in
:mod:`reprozoo.pflayer.transformer_blocks`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import ConfigError, DataError
from reprozoo.pflayer.resnet import check_common
from reprozoo.pflayer.transformer_blocks import (  # noqa: F401  (re-exported: the model parts)
    MIXERS,
    Attention,
    Block,
    EffLayer,
    Mlp,
    check_sizes,
    grid_side,
    mixers,
)
from reprozoo.runtime.registry import register_model


# ------------------------------------------------------------------ ViT-max
class ViTMax(nn.Module):
    """ViT without a class token whose odd blocks use the max-pool mixer (``mixer="max"``)."""

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, num_classes: int = 1000,
                 embed_dim: int = 384, depth: int = 12, num_heads: int = 6, mlp_ratio: float = 4.0,
                 mixer: str = "max", drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0, features_only: bool = False, out_indices: Sequence[int] = (-1,)):
        super().__init__()
        check_common(num_classes, in_chans, drop_rate, drop_path_rate)
        check_sizes(img_size, patch_size, patch_size)
        if depth < 1:
            raise ConfigError(f"depth must be >= 1, got {depth}")
        self.num_classes, self.num_features, self.patch_size = num_classes, embed_dim, patch_size
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_chans, embed_dim, patch_size, patch_size)
        side = img_size // patch_size
        self.pos_embed = nn.Parameter(torch.zeros(1, side * side, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linspace(0, rate, depth)
        self.mixers = mixers(depth, mixer)
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, m, mlp_ratio, drop_rate, attn_drop_rate, r)
                                    for m, r in zip(self.mixers, rates))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = [{"num_chs": embed_dim, "reduction": patch_size, "module": f"blocks.{i}"}
                             for i in range(depth)]
        self.features_only = features_only
        self.out_indices = tuple(i % depth for i in out_indices) if out_indices else ()
        if features_only and (not out_indices or any(not -depth <= i < depth for i in out_indices)):
            raise ConfigError(f"out_indices {list(out_indices)} must be a non-empty list of block indices in "
                              f"[{-depth}, {depth - 1}]")
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"}

    def reset_classifier(self, num_classes: int) -> None:
        check_common(num_classes, 1)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.num_classes = num_classes

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        n = x.shape[1]
        side = grid_side(n)
        pos = self.pos_embed
        if pos.shape[1] != n:
            old = grid_side(pos.shape[1])
            pos = pos.transpose(1, 2).reshape(1, -1, old, old)
            pos = F.interpolate(pos, size=(side, side), mode="bicubic", align_corners=False)
            pos = pos.flatten(2).transpose(1, 2)
        return self.pos_drop(x + pos), side

    def forward_intermediates(self, x: torch.Tensor, indices: Sequence[int] | None = None) -> list[torch.Tensor]:
        """Token maps ``(B, C, h, w)`` after the blocks in ``indices`` (default: the last)."""
        wanted = {i % len(self.blocks) for i in (indices if indices is not None else (-1,))}
        x, side = self._embed(x)
        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in wanted:
                outs.append(x.transpose(1, 2).reshape(x.shape[0], -1, side, side))
            if i == max(wanted):
                break
        return outs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised tokens ``(B, N, C)``."""
        x, _ = self._embed(x)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(1)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor):
        if self.features_only:
            return self.forward_intermediates(x, self.out_indices)
        return self.forward_head(self.forward_features(x))


# ------------------------------------------------------------------ PiT-max
class PiTStage(nn.Module):
    """One PiT stage: blocks on the tokens of a ``(B, C, h, w)`` map; returns the map."""

    def __init__(self, dim: int, depth: int, heads: int, mixer: str, mlp_ratio: float, drop: float,
                 attn_drop: float, drop_path: Sequence[float]):
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, heads, m, mlp_ratio, drop, attn_drop, r)
                                    for m, r in zip(mixers(depth, mixer), drop_path))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if h != w:
            raise DataError(f"PiT-max needs a square token grid, got {h}x{w}; use a square input")
        x = x.flatten(2).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return x.transpose(1, 2).reshape(b, c, h, w)


class PoolingConv(nn.Module):
    """Depthwise-grouped 3x3 stride-2 conv (pad 1) that doubles the width between PiT stages."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(in_dim, out_dim, 3, stride=2, padding=1, groups=in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class PiTMax(nn.Module):
    """Pooling-based ViT without a class token whose odd blocks (per stage) use the max-pool mixer."""

    def __init__(self, img_size: int = 224, patch_size: int = 16, stride: int = 8,
                 base_dims: Sequence[int] = (48, 48, 48), depth: Sequence[int] = (2, 6, 4),
                 heads: Sequence[int] = (3, 6, 12), mlp_ratio: float = 4.0, num_classes: int = 1000,
                 in_chans: int = 3, mixer: str = "max", drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0, features_only: bool = False, out_indices: Sequence[int] = (0, 1, 2)):
        super().__init__()
        check_common(num_classes, in_chans, drop_rate, drop_path_rate)
        check_sizes(img_size, patch_size, stride)
        if not (len(base_dims) == len(depth) == len(heads)) or not depth or min(depth) < 1:
            raise ConfigError(f"base_dims, depth and heads need one entry per stage (depth >= 1), got "
                              f"{list(base_dims)}, {list(depth)}, {list(heads)}")
        dims = [b * h for b, h in zip(base_dims, heads)]
        self.num_classes, self.num_features = num_classes, dims[-1]
        self.patch_embed = nn.Module()
        self.patch_embed.conv = nn.Conv2d(in_chans, dims[0], patch_size, stride, 0, bias=True)
        side = (img_size - patch_size) // stride + 1
        self.pos_embed = nn.Parameter(torch.zeros(1, dims[0], side, side))
        self.pos_drop = nn.Dropout(drop_rate)
        total, start = sum(depth), 0
        self.stages = nn.ModuleList()
        self.pools = nn.ModuleList()
        for s, d in enumerate(depth):
            rates = [drop_path_rate * i / total for i in range(start, start + d)]
            start += d
            self.stages.append(PiTStage(dims[s], d, heads[s], mixer, mlp_ratio, drop_rate, attn_drop_rate, rates))
            if s < len(depth) - 1:
                self.pools.append(PoolingConv(dims[s], dims[s + 1]))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = [{"num_chs": dims[s], "reduction": stride * 2 ** s, "module": f"stages.{s}"}
                             for s in range(len(depth))]
        self.features_only = features_only
        if features_only and (not out_indices or any(not 0 <= i < len(depth) for i in out_indices)):
            raise ConfigError(f"out_indices {list(out_indices)} must be a non-empty subset of 0..{len(depth) - 1}")
        self.out_indices = tuple(out_indices)
        with torch.no_grad():
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
            for m in self.modules():
                if isinstance(m, nn.LayerNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"}

    def reset_classifier(self, num_classes: int) -> None:
        check_common(num_classes, 1)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.num_classes = num_classes

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed.conv(x)
        pos = self.pos_embed
        if x.shape[2:] != pos.shape[2:]:
            pos = F.interpolate(pos, size=x.shape[2:], mode="bicubic", align_corners=False)
        return self.pos_drop(x + pos)

    def forward_intermediates(self, x: torch.Tensor, indices: Sequence[int] | None = None) -> list[torch.Tensor]:
        """Stage output maps ``(B, C, h, w)`` for the stages in ``indices`` (default: all)."""
        wanted = set(range(len(self.stages)) if indices is None else indices)
        x = self._embed(x)
        outs = []
        for s, stage in enumerate(self.stages):
            x = stage(x)
            if s in wanted:
                outs.append(x)
            if s == max(wanted):
                break
            x = self.pools[s](x)
        return outs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised tokens ``(B, N, C)`` of the last stage."""
        x = self._embed(x)
        for s, stage in enumerate(self.stages):
            x = stage(x)
            if s < len(self.pools):
                x = self.pools[s](x)
        return self.norm(x.flatten(2).transpose(1, 2))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(1)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor):
        if self.features_only:
            return self.forward_intermediates(x, self.out_indices)
        return self.forward_head(self.forward_features(x))


# ------------------------------------------------------------------ registered constructors
VIT_CONFIGS = {"ti": (192, 3), "s": (384, 6), "b": (768, 12)}
PIT_CONFIGS = {"ti": dict(patch_size=16, stride=8, base_dims=(32, 32, 32), depth=(2, 6, 4), heads=(2, 4, 8)),
               "s": dict(patch_size=16, stride=8, base_dims=(48, 48, 48), depth=(2, 6, 4), heads=(3, 6, 12)),
               "b": dict(patch_size=14, stride=7, base_dims=(64, 64, 64), depth=(3, 6, 4), heads=(4, 8, 16))}


def _vit(size: str, default_mixer: str, **kwargs) -> ViTMax:
    dim, heads = VIT_CONFIGS[size]
    return ViTMax(**{"patch_size": 16, "embed_dim": dim, "depth": 12, "num_heads": heads, "mixer": default_mixer, **kwargs})


def _pit(size: str, default_mixer: str, **kwargs) -> PiTMax:
    return PiTMax(**{**PIT_CONFIGS[size], "mixer": default_mixer, **kwargs})


@register_model
def vit_ti_max(**kwargs) -> ViTMax:
    return _vit("ti", "max", **kwargs)


@register_model
def vit_s_max(**kwargs) -> ViTMax:
    return _vit("s", "max", **kwargs)


@register_model
def vit_b_max(**kwargs) -> ViTMax:
    return _vit("b", "max", **kwargs)


@register_model
def vit_s_attn(**kwargs) -> ViTMax:
    """ViT-S skeleton of ``vit_s_max`` (no class token, token average) with attention in every block."""
    return _vit("s", "attn", **kwargs)


@register_model
def pit_ti_max(**kwargs) -> PiTMax:
    return _pit("ti", "max", **kwargs)


@register_model
def pit_s_max(**kwargs) -> PiTMax:
    return _pit("s", "max", **kwargs)


@register_model
def pit_b_max(**kwargs) -> PiTMax:
    return _pit("b", "max", **kwargs)
