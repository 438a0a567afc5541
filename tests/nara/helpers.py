"""Small hand-built AR models for the NARA tests."""

import torch
from torch import nn


class AlternatingNet(nn.Module):
    """Deterministic binary chain: x_0 = 1, x_t = 1 - x_{t-1}. From a zero canvas every parallel
    call changes the first unconfirmed position, so Jacobi confirms exactly one per call."""

    def forward(self, x):
        prev = torch.nn.functional.pad(x, (1, 0), value=0.0)[:, :-1]
        return 60.0 * (0.5 - prev)


class LeakyNet(nn.Module):
    """Not causal: position t sees x_t. Gaussian outputs ``(mu = cumsum(x), log_sigma = 0)``."""

    def forward(self, x):
        c = x.cumsum(1)
        return torch.stack([c, torch.zeros_like(c)], dim=-1)


class ConstantConfidence(nn.Module):
    """A confidence predictor stub with one fixed logit for every position."""

    def __init__(self, logit: float):
        super().__init__()
        self.logit = logit

    def forward(self, x_prev, x_new, params, m, code=None, change=None, d=None):
        return torch.full_like(x_prev, self.logit)


class BigramCategorical(nn.Module):
    """Categorical AR: logits of x_t are a row of a table picked by x_{t-1}."""

    def __init__(self, classes: int = 3, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.table = nn.Parameter(torch.randn(classes + 1, classes, generator=g) * 2)

    def forward(self, x):
        prev = torch.nn.functional.pad(x + 1, (1, 0), value=0.0)[:, :-1].long()
        return self.table[prev]
