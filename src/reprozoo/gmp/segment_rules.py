"""Segment rules: how a proposal (a mixture of Gaussians with one shared width) becomes a segment,
and what a mixture contributes to it.

* ``"centre"`` -- the paper's rule (:func:`reprozoo.gmp.proposals.mixture_segments`): the
  importance-weighted centre +- w/2. A mixture can change the segment's *position* and the learned
  width, never its *shape*: two well-separated parts give one segment of length w between them.
* ``"density"`` -- :func:`density_segments`: the span of the grid points where the mixture's summed,
  importance-weighted Gaussian density is at least ``fraction`` of its peak. Each Gaussian is drawn
  at the scale whose ``fraction``-level crossings are ``c +- w/2``, so a single Gaussian (CPL, and
  every one-component proposal) gets exactly the paper's segment ``c +- w/2``; a mixture whose
  Gaussians carry comparable density over separated parts gets the hull of those parts, and a
  Gaussian whose weighted density stays below ``fraction`` of the peak does not move the segment.

:func:`mixture_usage` measures, per query, how much a chosen proposal's mixture is used (the
``gmp-grounding`` experiment's mechanism gate).
"""

from __future__ import annotations

import math

import torch

from reprozoo.errors import ConfigError
from reprozoo.gmp.metrics import segment_iou
from reprozoo.gmp.proposals import mixture_segments

SEGMENT_RULES = ("centre", "density")
FINE_POINTS = 1001  # the grid the density rule is evaluated on (crossings are interpolated linearly)


def density_segments(centres: torch.Tensor, width: torch.Tensor, importance: torch.Tensor,
                     fraction: float = 0.5, shrink: float = 0.0, points: int = FINE_POINTS) -> torch.Tensor:
    """Span where ``P(t) = sum_g a_g exp(-(t - c_g)^2 / (2 s^2))`` is at least ``fraction`` of its
    peak over ``points`` grid points on [0, 1], with ``s = (w/2) / sqrt(2 ln(1/fraction))`` (a single
    Gaussian crosses the level at ``c +- w/2``); the hull when the region has several pieces; the
    first and last crossings are interpolated linearly. centres/importance (..., k), width (...,)
    -> (..., 2), shrunk by ``shrink`` x its length (half per side) like the paper's rule."""
    if not 0 < fraction < 1:
        raise ConfigError(f"the density rule's fraction must be in (0, 1), got {fraction}")
    if points < 3:
        raise ConfigError(f"the density rule needs >= 3 grid points, got {points}")
    t = torch.linspace(0.0, 1.0, points, device=centres.device, dtype=centres.dtype)
    scale = (width.clamp(min=1e-4) / 2 / math.sqrt(2 * math.log(1 / fraction)))[..., None, None]
    dens = (importance[..., None] * torch.exp(-((t - centres[..., None]) ** 2) / (2 * scale**2))).sum(-2)
    level = fraction * dens.amax(-1, keepdim=True)
    above = dens >= level
    first = above.to(torch.uint8).argmax(-1)
    last = points - 1 - above.flip(-1).to(torch.uint8).argmax(-1)

    def crossing(inside: torch.Tensor, outside: torch.Tensor) -> torch.Tensor:
        p_in, p_out = dens.gather(-1, inside[..., None])[..., 0], dens.gather(-1, outside[..., None])[..., 0]
        lv = level[..., 0]
        frac = ((p_in - lv) / (p_in - p_out).clamp(min=1e-12)).clamp(0.0, 1.0)
        return t[inside] + frac * (t[outside] - t[inside])

    left = torch.where(first > 0, crossing(first, (first - 1).clamp(min=0)), t[first])
    right = torch.where(last < points - 1, crossing(last, (last + 1).clamp(max=points - 1)), t[last])
    if shrink:
        length = right - left
        left, right = left + shrink * length / 2, right - shrink * length / 2
    return torch.stack([left, right], -1).clamp(0.0, 1.0)


def segments_by_rule(rule: str, centres: torch.Tensor, width: torch.Tensor, importance: torch.Tensor,
                     shrink: float = 0.0, fraction: float = 0.5) -> torch.Tensor:
    """The segments of one proposal family under ``rule`` (one of :data:`SEGMENT_RULES`)."""
    if rule == "centre":
        return mixture_segments(centres, width, importance, shrink)
    if rule == "density":
        return density_segments(centres, width, importance, fraction, shrink)
    raise ConfigError(f"segment rule must be one of {list(SEGMENT_RULES)}, got {rule!r}")


def mixture_usage(centres: torch.Tensor, width: torch.Tensor, importance: torch.Tensor,
                  fraction: float = 0.5) -> dict[str, torch.Tensor]:
    """Per query, for one chosen mixture each (centres/importance (N, k), width (N,); pad unused
    components with importance 0):

    * ``nondominant``: importance outside the dominant Gaussian, ``1 - max_g a_g`` (0 for k = 1);
    * ``centre_span``: distance between the outermost centres of the Gaussians whose weighted peak
      reaches ``fraction`` of the largest one (the ones the density rule can see);
    * ``rule_iou``: IoU of the density rule's segment with the paper's centre rule's segment
      (1 when the mixture does not change the segment's shape)."""
    a = importance / importance.sum(-1, keepdim=True).clamp(min=1e-12)
    seen = a >= fraction * a.amax(-1, keepdim=True)
    lo = torch.where(seen, centres, torch.full_like(centres, 2.0)).amin(-1)
    hi = torch.where(seen, centres, torch.full_like(centres, -1.0)).amax(-1)
    dens = density_segments(centres, width, a, fraction)
    paper = mixture_segments(centres, width, a)
    return {"nondominant": 1 - a.amax(-1), "centre_span": (hi - lo).clamp(min=0),
            "rule_iou": segment_iou(dens, paper)}


def planted_mixture(gt: torch.Tensor, width_share: float = 0.4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An oracle two-Gaussian mixture for ground-truth spans gt (N, 2): equal importances, one
    shared width ``width_share`` x the span's length, centres w/2 inside each end. Under the density
    rule its segment is the span; under the paper's centre rule it is the middle ``width_share`` of
    it. Returns (centres (N, 2), width (N,), importance (N, 2))."""
    length = (gt[:, 1] - gt[:, 0]).clamp(min=1e-4)
    w = width_share * length
    centres = torch.stack([gt[:, 0] + w / 2, gt[:, 1] - w / 2], -1)
    return centres, w, torch.full_like(centres, 0.5)


__all__ = ["FINE_POINTS", "SEGMENT_RULES", "density_segments", "mixture_usage", "planted_mixture",
           "segments_by_rule"]
