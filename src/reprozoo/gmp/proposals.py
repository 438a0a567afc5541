"""Temporal proposal masks as pure functions: Gaussian (and Laplace) masks on a normalised grid,
Gaussian-mixture proposals, CPL's left/right complement negatives, and the mask -> segment rules.

Conventions (Kim et al., AAAI 2024, Sec. "Gaussian mixture proposals"; CPL, CVPR 2022): time is
normalised to [0, 1]; a proposal grid has ``T'`` points ``t_j = j / (T' - 1)``; a Gaussian with
centre ``c`` and width ``w`` has scale ``s = max(w, 0.01) / sigma`` and is peak-normalised to 1
over the grid; its segment is ``c +- w / 2``.
"""

from __future__ import annotations

import torch

from reprozoo.errors import ConfigError


def time_grid(points: int, device=None, dtype=torch.float32) -> torch.Tensor:
    return torch.linspace(0.0, 1.0, points, device=device, dtype=dtype)


def gaussian_masks(centres: torch.Tensor, widths: torch.Tensor, points: int, sigma: float,
                   kind: str = "gauss") -> torch.Tensor:
    """Masks (..., T') for centres/widths of shape (...,); peak-normalised over the grid."""
    t = time_grid(points, centres.device, centres.dtype)
    c, s = centres[..., None], (widths.clamp(min=0.01) / sigma)[..., None]
    if kind == "gauss":
        m = torch.exp(-((t - c) ** 2) / (2 * s**2))
    elif kind == "laplace":
        m = torch.exp(-(t - c).abs() / s)
    else:
        raise ConfigError(f"mask kind must be 'gauss' or 'laplace', got {kind!r}")
    return m / m.amax(-1, keepdim=True).clamp(min=1e-10)


def mixture_mask(components: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """P(t) = sum_g a_g g_g(t): components (..., k, T'), importance (..., k) -> (..., T')."""
    return (importance[..., None] * components).sum(-2)


def summed_negative(components: torch.Tensor) -> torch.Tensor:
    """PPS's easy negative: the sum of its Gaussians divided by its max, (..., n, T') -> (..., T')."""
    m = components.sum(-2)
    return m / m.amax(-1, keepdim=True).clamp(min=1e-10)


def complement_negatives(centres: torch.Tensor, widths: torch.Tensor, progress: float, gamma: float,
                         points: int, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """CPL's left/right negatives of a proposal: Gaussians over the parts of the video left and
    right of ``c +- w/2``; their centres move from the video's ends towards the middle of each
    part as training progresses (``progress ** gamma``)."""
    rho = min(max(progress, 0.0), 1.0) ** gamma
    left_w = (centres - widths / 2).clamp(min=0)
    right_w = (1 - centres - widths / 2).clamp(min=0)
    left = gaussian_masks(left_w * rho * 0.5, left_w, points, sigma)
    right = gaussian_masks(1 - right_w * rho * 0.5, right_w, points, sigma)
    return left, right


def mixture_segments(centres: torch.Tensor, width: torch.Tensor, importance: torch.Tensor,
                     shrink: float = 0.0) -> torch.Tensor:
    """The paper's rule: [sum_g a_g (c_g - w/2), sum_g a_g (c_g + w/2)] (the importance-weighted
    centre +- w/2), shrunk by ``shrink`` x its length (half per side) and clamped to [0, 1].
    centres/importance (..., k), width (...,) -> (..., 2). A single Gaussian is k = 1, a = 1."""
    centre = (importance * centres).sum(-1)
    left, right = centre - width / 2, centre + width / 2
    if shrink:
        length = right - left
        left, right = left + shrink * length / 2, right - shrink * length / 2
    return torch.stack([left, right], -1).clamp(0.0, 1.0)


def mixture_span_segments(centres: torch.Tensor, width: torch.Tensor, importance: torch.Tensor,
                          min_importance: float = 0.1) -> torch.Tensor:
    """Extra rule (not the paper's): the span of the components whose importance is at least
    ``min_importance``, each taken as ``c_g +- w/2``."""
    keep = importance >= min_importance
    lo = torch.where(keep, centres - width[..., None] / 2, torch.full_like(centres, 2.0)).amin(-1)
    hi = torch.where(keep, centres + width[..., None] / 2, torch.full_like(centres, -1.0)).amax(-1)
    return torch.stack([lo, hi], -1).clamp(0.0, 1.0)
