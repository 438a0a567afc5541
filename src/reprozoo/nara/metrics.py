"""Quality and cost metrics for samples of an AR model."""

from __future__ import annotations

import torch

from reprozoo.errors import DataError
from reprozoo.nara.protocol import ParallelAR, sequence_log_prob
from reprozoo.runtime.checks import finite, finite_tensor


def _two(a: torch.Tensor, b: torch.Tensor, start: int) -> None:
    finite_tensor("a", a)
    finite_tensor("b", b)
    if a.shape != b.shape or a.dim() != 2:
        raise DataError(f"samples must be two (batch, length) tensors of one shape, got {tuple(a.shape)} "
                        f"and {tuple(b.shape)}")
    if not 0 <= start < a.shape[1]:
        raise DataError(f"start must be in 0..{a.shape[1] - 1}, got {start}")


@torch.no_grad()
def sample_nll(model: ParallelAR, x: torch.Tensor, start: int = 0) -> torch.Tensor:
    """Per-sample ``-log p_A(x_start.. | x_<start)`` in nats under the mother model."""
    return -sequence_log_prob(model, x, start)


def hamming(a: torch.Tensor, b: torch.Tensor, start: int = 0) -> torch.Tensor:
    """Per-sample number of generated positions where two discrete samples differ."""
    _two(a, b, start)
    return (a[:, start:] != b[:, start:]).sum(1).float()


def abs_error(a: torch.Tensor, b: torch.Tensor, start: int = 0) -> tuple[float, float]:
    """Mean and max absolute difference over generated positions (continuous samples)."""
    _two(a, b, start)
    d = (a[:, start:] - b[:, start:]).abs()
    return float(d.mean()), float(d.max())


def mmd_rbf(x: torch.Tensor, y: torch.Tensor, bandwidth: float | None = None) -> float:
    """Squared maximum mean discrepancy (biased V-statistic) with the kernel
    ``exp(-|a - b|^2 / (2 s^2))``; ``s`` defaults to the median pairwise distance of ``x`` and ``y``
    pooled."""
    finite_tensor("x", x)
    finite_tensor("y", y)
    if bandwidth is not None:
        bandwidth = finite("bandwidth", bandwidth, lo=0.0, lo_open=True)
    if len(x) == 0 or len(y) == 0 or x[0].numel() != y[0].numel():
        raise DataError(f"x and y must be non-empty sample sets of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = x.flatten(1).double(), y.flatten(1).double()
    z = torch.cat([x, y])
    d2 = torch.cdist(z, z).pow(2)
    if bandwidth is None:
        off = d2[~torch.eye(len(z), dtype=torch.bool)]
        bandwidth = float(off.sqrt().median().clamp_min(1e-12))
    k = torch.exp(-d2 / (2 * bandwidth**2))
    n = len(x)
    return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())


def lag1_autocorrelation(x: torch.Tensor) -> float:
    """Mean over sequences of ``sum (x_t - xbar)(x_t+1 - xbar) / sum (x_t - xbar)^2``."""
    finite_tensor("x", x)
    if x.dim() != 2 or x.shape[1] < 2:
        raise DataError(f"x must be (sequences, length >= 2), got {tuple(x.shape)}")
    c = x - x.mean(1, keepdim=True)
    num = (c[:, :-1] * c[:, 1:]).sum(1)
    den = (c * c).sum(1).clamp_min(1e-12)
    return float((num / den).mean())
