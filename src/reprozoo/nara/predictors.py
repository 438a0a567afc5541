"""NARA's two helper networks: the prior-sample predictor Q and the confidence predictor C.

Both see the canvas only through the confirmed-prefix mask ``M_t = 1[t < m]`` (``m`` is the
per-sample number of confirmed positions), so nothing from positions ``>= m`` leaks into Q.
"""

from __future__ import annotations

import torch
from torch import nn

from reprozoo.nara.protocol import Family


def prefix_mask(m: torch.Tensor, length: int) -> torch.Tensor:
    """``(B,)`` prefix lengths -> ``(B, N)`` float mask, 1 on confirmed positions ``t < m``."""
    return (torch.arange(length, device=m.device)[None, :] < m[:, None]).float()


def context_change(x_prev: torch.Tensor, x_new: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``D_t = sum_{m <= s < t} |x_new_s - x_prev_s|``: how much the context in front of ``t``
    moved in the last parallel call (0 on and before ``m``)."""
    fut = 1.0 - prefix_mask(m, x_prev.shape[1])
    change = (x_new - x_prev).abs() * fut
    return change.cumsum(1) - change


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class PriorPredictor(nn.Module):
    """Q: ``concat(x * M, M)`` -> parameters of every position, independent across positions
    (the i.i.d. prior assumption). Only positions ``>= m`` are used."""

    def __init__(self, length: int, family: Family, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.length, self.family = length, family
        self.net = mlp([2 * length, *hidden, length * family.param_size])

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        mask = prefix_mask(m, self.length)
        out = self.net(torch.cat([x * mask, mask], dim=1))
        return out.view(x.shape[0], self.length, self.family.param_size)

    @torch.no_grad()
    def propose(self, x: torch.Tensor, m: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Fill positions ``>= m`` with prior draws (given ``noise``); keep the prefix."""
        draw = self.family.sample(self(x, m), noise)
        mask = prefix_mask(m, self.length)
        return x * mask + draw * (1.0 - mask)


class ConfidencePredictor(nn.Module):
    """C: per position, the logit of "the post-processed value already equals the sequential
    sample". Input ``concat(x_prev, x_new, features(params), M, D, 1[D > 0])``."""

    def __init__(self, length: int, family: Family, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.length, self.family = length, family
        width = length * (5 + family.feature_size)
        self.net = mlp([width, *hidden, length])

    def forward(self, x_prev: torch.Tensor, x_new: torch.Tensor, params: torch.Tensor,
                m: torch.Tensor) -> torch.Tensor:
        b = x_prev.shape[0]
        mask = prefix_mask(m, self.length)
        d = context_change(x_prev, x_new, m)
        feats = self.family.features(params).reshape(b, -1)
        inp = torch.cat([x_prev, x_new, feats, mask, d, (d > 0).float()], dim=1)
        return self.net(inp)
