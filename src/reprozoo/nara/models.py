"""Built-in mother AR models: MADE (binary images) and a dilated causal conv net (Gaussian
sequences). Both evaluate every position's conditional in one parallel call."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.nara.protocol import BernoulliAR, GaussianAR
from reprozoo.runtime.registry import register_model


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 connectivity mask."""

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.float())
        self._masked: torch.Tensor | None = None
        self._key: tuple = ()

    def masked_weight(self) -> torch.Tensor:
        """``weight * mask``; at inference (no grad) computed once and reused until the weight or
        the mask changes, so a sampling call does not redo it (the same numbers either way)."""
        if self.training or torch.is_grad_enabled():
            return self.weight * self.mask
        key = (self.weight._version, self.weight.data_ptr(), self.mask._version, self.mask.data_ptr())
        if self._masked is None or key != self._key:
            self._masked, self._key = self.weight * self.mask, key
        return self._masked

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.masked_weight(), self.bias)


class MADE(nn.Module):
    """Masked auto-encoder for distribution estimation (Germain et al. 2015), natural order.

    ``(B, N)`` -> ``(B, N)`` logits where output ``t`` depends on inputs ``< t`` only. Hidden unit
    degrees cycle through ``1..N-1`` so every unit is used.
    """

    def __init__(self, length: int = 64, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.length = length
        degrees = [torch.arange(1, length + 1)]  # input degrees 1..N
        for h in hidden:
            degrees.append(torch.arange(h) % max(length - 1, 1) + 1)
        layers: list[nn.Module] = []
        for i, h in enumerate(hidden):
            mask = degrees[i + 1][:, None] >= degrees[i][None, :]
            layers += [MaskedLinear(degrees[i].numel(), h, mask), nn.ReLU()]
        out_deg = torch.arange(1, length + 1)
        layers.append(MaskedLinear(degrees[-1].numel(), length, out_deg[:, None] > degrees[-1][None, :]))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CausalConv(nn.Module):
    """A causal dilated convolution on ``(B, N, C)`` sequences: output ``t`` mixes inputs
    ``t - (k-1)d, ..., t - d, t`` with one linear map over the stacked taps (a single matrix
    product; much faster on CPU than a dilated ``Conv1d``). Zeros enter on the left."""

    def __init__(self, cin: int, cout: int, kernel: int = 2, dilation: int = 1):
        super().__init__()
        self.kernel, self.dilation = kernel, dilation
        self.proj = nn.Linear(cin * kernel, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = []
        for i in range(self.kernel):
            shift = (self.kernel - 1 - i) * self.dilation
            taps.append(F.pad(x, (0, 0, shift, 0))[:, : x.shape[1]] if shift else x)
        return self.proj(torch.cat(taps, dim=-1))


class ResidualCausalBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilation: int):
        super().__init__()
        self.conv = CausalConv(channels, channels, kernel, dilation)
        self.mix = nn.Linear(channels, channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.mix(F.relu(self.conv(F.relu(h))))


class DilatedCausalConv(nn.Module):
    """WaveNet-style stack for real sequences: ``(B, N)`` -> ``(B, N, 2)`` = (mu, log_sigma).

    The input is shifted right by one step (a zero enters at ``t = 0``), so output ``t`` depends
    on ``x_<t`` only. Receptive field ``1 + (kernel-1) * (1 + sum(dilations))`` past values.
    """

    def __init__(self, channels: int = 64, kernel: int = 2, dilations: tuple[int, ...] = (1, 2, 4, 8, 16)):
        super().__init__()
        self.inp = CausalConv(1, channels, kernel, 1)
        self.blocks = nn.Sequential(*[ResidualCausalBlock(channels, kernel, d) for d in dilations])
        self.head = nn.Linear(channels, 2)
        self.receptive_field = 1 + (kernel - 1) * (1 + sum(dilations))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        shifted = F.pad(x, (1, 0))[:, :-1].unsqueeze(-1)
        return self.blocks(self.inp(shifted))

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model
def nara_made(length: int = 64, hidden: tuple[int, ...] = (256, 256)) -> BernoulliAR:
    """MADE 64-256-256-64 for binarised 8x8 digits, wrapped as a Bernoulli ParallelAR."""
    return BernoulliAR(MADE(length, tuple(hidden)), length)


@register_model
def nara_causal_conv(length: int = 64, channels: int = 64, kernel: int = 2,
                     dilations: tuple[int, ...] = (1, 2, 4, 8, 16)) -> GaussianAR:
    """Dilated causal conv net with a Gaussian head, wrapped as a Gaussian ParallelAR."""
    return GaussianAR(DilatedCausalConv(channels, kernel, tuple(dilations)), length)
