"""Transformer parts of the paper's efficient transformers (Sec. 4): multi-head self-attention, the
"EffLayer" max-pool token mixer, the MLP and the pre-norm block that holds either.

The EffLayer replaces self-attention in every other block: Linear d -> 3d, GELU, reshape the tokens
to their square grid, 3x3 max-pool (stride 1, pad 1), back to tokens, GELU, Linear 3d -> d, dropout.
Blocks are pre-norm (``x + drop_path(mixer(LN(x)))``, ``x + drop_path(MLP(LN(x)))``, LayerNorm eps
1e-6). A token count that is not a perfect square raises a :class:`~reprozoo.errors.DataError`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth

from reprozoo.errors import ConfigError, DataError

MIXERS = ("max", "attn")


def grid_side(n_tokens: int) -> int:
    """Side of the square token grid holding ``n_tokens`` tokens (error if not a perfect square)."""
    side = math.isqrt(n_tokens)
    if side * side != n_tokens:
        raise DataError(f"the max-pool token mixer needs a square token grid, but got {n_tokens} tokens "
                        f"(not a perfect square); use a square input whose side is a multiple of the patch stride")
    return side


class Attention(nn.Module):
    """Multi-head self-attention: ``qkv`` Linear d -> 3d, scaled dot-product, ``proj`` Linear d -> d."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"embedding dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads, self.attn_drop = num_heads, attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = (q * (q.shape[-1] ** -0.5)) @ k.transpose(-2, -1)
        attn = F.dropout(attn.softmax(dim=-1), self.attn_drop, self.training)
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(x))


class EffLayer(nn.Module):
    """The parameter-free token mixer: Linear d -> 3d, GELU, 3x3 max-pool over the token grid,
    GELU, Linear 3d -> d, dropout. The hidden ratio is 3 regardless of the number of heads."""

    def __init__(self, dim: int, hidden_ratio: int = 3, kernel_size: int = 3, proj_drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, dim * hidden_ratio)
        self.act = nn.GELU()
        self.pool = nn.MaxPool2d(kernel_size, stride=1, padding=kernel_size // 2)
        self.fc2 = nn.Linear(dim * hidden_ratio, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        side = grid_side(n)
        x = self.act(self.fc1(x))
        x = x.transpose(1, 2).reshape(b, -1, side, side)
        x = self.pool(x).flatten(2).transpose(1, 2)
        return self.proj_drop(self.fc2(self.act(x)))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float = 0.0):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm transformer block whose token mixer is ``"attn"`` (MHSA) or ``"max"`` (EffLayer)."""

    def __init__(self, dim: int, num_heads: int, mixer: str = "attn", mlp_ratio: float = 4.0,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        if mixer not in MIXERS:
            raise ConfigError(f"unknown token mixer '{mixer}'; choose one of: {', '.join(MIXERS)}")
        self.mixer = mixer
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = (Attention(dim, num_heads, attn_drop=attn_drop, proj_drop=drop) if mixer == "attn"
                     else EffLayer(dim, proj_drop=drop))
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.drop_path = StochasticDepth(drop_path, mode="row") if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def mixers(depth: int, mixer: str) -> list[str]:
    """Attention at even block indices, ``mixer`` at odd ones."""
    if mixer not in MIXERS:
        raise ConfigError(f"unknown token mixer '{mixer}'; choose one of: {', '.join(MIXERS)}")
    return ["attn" if i % 2 == 0 else mixer for i in range(depth)]


def check_sizes(img_size: int, patch_size: int, stride: int) -> None:
    for name, v in (("img_size", img_size), ("patch_size", patch_size), ("stride", stride)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name} must be a positive integer, got {v!r}")
    if img_size < patch_size:
        raise ConfigError(f"img_size {img_size} is smaller than patch_size {patch_size}")
