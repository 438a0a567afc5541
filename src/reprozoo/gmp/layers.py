"""Building blocks of the CPL/PPS grounding models: sinusoidal positions, a post-LN decoder
layer whose attention over video keys can be weighted by a temporal mask, and the two-stack
"dual" transformer that serves both as proposal generator and as masked-query reconstructor.

Every self-attention is causal (the video's included), as in the official CPL and PPS code.
Mask-weighted attention multiplies the post-softmax weights over video keys by ``m(t) + 1e-10``
and renormalises, which is the same as adding ``log(m(t) + 1e-10)`` to the logits; that is
how it is computed here (one fused ``scaled_dot_product_attention`` call).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import ConfigError

MASK_EPS = 1e-10


def sinusoidal_positions(length: int, dim: int, device=None) -> torch.Tensor:
    """tensor2tensor-style timing signal, (length, dim): sin on the first half, cos on the second."""
    half = dim // 2
    pos = torch.arange(length, dtype=torch.float32, device=device)[:, None]
    scale = math.log(10000.0) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=device) * -scale)
    out = torch.cat([torch.sin(pos * freqs), torch.cos(pos * freqs)], dim=1)
    if dim % 2:
        out = F.pad(out, (0, 1))
    return out


def key_bias(batch: int, length_q: int, length_k: int, key_pad: torch.Tensor | None = None,
             key_weight: torch.Tensor | None = None, causal: bool = False, dtype=torch.float32,
             device=None) -> torch.Tensor:
    """Additive attention bias (B, 1, Lq, Lk): -inf for future and padded keys, ``log(m + 1e-10)``
    for mask-weighted keys. ``key_pad`` (B, Lk) is True at pads; ``key_weight`` (B, Lk) in [0, 1]."""
    bias = torch.zeros(batch, 1, length_q, length_k, dtype=dtype, device=device)
    if key_weight is not None:
        bias = bias + torch.log(key_weight.to(dtype) + MASK_EPS)[:, None, None, :]
    if key_pad is not None:
        bias = bias.masked_fill(key_pad[:, None, None, :], float("-inf"))
    if causal:
        future = torch.ones(length_q, length_k, dtype=torch.bool, device=device).triu(1)
        bias = bias.masked_fill(future, float("-inf"))
    return bias


class Attention(nn.Module):
    """Multi-head attention with an additive bias (no attention-weight dropout)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ConfigError(f"d_model {dim} must be divisible by the number of heads {heads}")
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor, mem: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, lq, d = x.shape
        h = self.heads

        def split(t):
            return t.view(b, -1, h, d // h).transpose(1, 2)

        y = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(mem)), split(self.v(mem)), attn_mask=bias)
        return self.out(y.transpose(1, 2).reshape(b, lq, d))


class DecoderLayer(nn.Module):
    """Post-LN: self-attention -> [cross-attention] -> FFN, each with dropout, residual and LayerNorm."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.self_attn = Attention(dim, heads)
        self.cross_attn = Attention(dim, heads)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.ReLU(), nn.Linear(ffn, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, self_bias, mem=None, cross_bias=None):
        x = self.norm1(x + self.drop(self.self_attn(x, x, self_bias)))
        if mem is not None:
            x = self.norm2(x + self.drop(self.cross_attn(x, mem, cross_bias)))
        return self.norm3(x + self.drop(self.ffn(x)))


class DecoderStack(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int, layers: int, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(dim, heads, ffn, dropout) for _ in range(layers))

    def forward(self, x, pad=None, weight=None, mem=None, mem_pad=None, mem_weight=None):
        """Causal self-attention over ``x`` (``pad``/``weight`` for its keys), cross-attention to
        ``mem`` (``mem_pad``/``mem_weight`` for its keys) when given."""
        b, n = x.shape[:2]
        self_bias = key_bias(b, n, n, pad, weight, True, x.dtype, x.device)
        cross_bias = None
        if mem is not None:
            cross_bias = key_bias(b, n, mem.shape[1], mem_pad, mem_weight, False, x.dtype, x.device)
        for layer in self.layers:
            x = layer(x, self_bias, mem, cross_bias)
        return x


class DualTransformer(nn.Module):
    """Two decoder stacks: ``dec1`` for video tokens, ``dec2`` for word tokens.

    * :meth:`generate` (decoding 1): words -> ``dec2`` (self only) = memory; video -> ``dec1``
      (self + cross to the words). Used by the proposal generator.
    * :meth:`reconstruct` (decoding 2): video -> ``dec1`` (self only, mask-weighted) = memory;
      words -> ``dec2`` (self + mask-weighted cross to the video). Used by the reconstructor.
    """

    def __init__(self, dim: int = 256, heads: int = 4, ffn: int = 512, layers: int = 3, dropout: float = 0.1):
        super().__init__()
        self.dec1 = DecoderStack(dim, heads, ffn, layers, dropout)
        self.dec2 = DecoderStack(dim, heads, ffn, layers, dropout)

    def generate(self, video, words, word_pad, video_pad=None):
        mem = self.dec2(words, pad=word_pad)
        return self.dec1(video, pad=video_pad, mem=mem, mem_pad=word_pad)

    def reconstruct(self, video, words, word_pad, weight):
        mem = self.dec1(video, weight=weight)
        return self.dec2(words, pad=word_pad, mem=mem, mem_weight=weight)
