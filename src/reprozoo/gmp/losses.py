"""The losses of CPL and PPS as pure functions (per-sample values, the caller averages).

* :func:`reconstruction_nll`: label-smoothed next-word cross-entropy averaged over a sentence's
  valid positions (``(1 - eps) NLL + eps / |V| sum_v -log p_v``);
* :func:`hinge`: ``max(0, pos - neg + margin)`` (intra-video contrast);
* :func:`pull_loss`: squared distance between the smallest and the largest centre of a mixture;
* :func:`push_loss`: ``|| M M^T - lambda I ||_F^2`` with the rows of M normalised to sum 1
  (intra-push over one mixture's components, inter-push / CPL diversity over the K proposals).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_nll(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor,
                       smoothing: float = 0.1) -> torch.Tensor:
    """logits (..., L, V), targets (..., L), valid (..., L) bool -> (...,) mean over valid positions."""
    logp = F.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), -1)  # half -> float32
    nll = -logp.gather(-1, targets[..., None]).squeeze(-1)
    smooth = -logp.sum(-1) / logits.shape[-1]
    per_pos = (1 - smoothing) * nll + smoothing * smooth
    valid = valid.to(per_pos.dtype)
    return (per_pos * valid).sum(-1) / valid.sum(-1).clamp(min=1)


def hinge(pos: torch.Tensor, neg: torch.Tensor, margin: float) -> torch.Tensor:
    return (pos - neg + margin).clamp(min=0)


def pull_loss(centres: torch.Tensor) -> torch.Tensor:
    """(..., k) -> (...,): (max_g c_g - min_g c_g)^2."""
    return (centres.amax(-1) - centres.amin(-1)) ** 2


def push_loss(masks: torch.Tensor, lam: float) -> torch.Tensor:
    """(..., n, T') -> (...,): || M~ M~^T - lam I ||_F^2, rows of M~ normalised to sum 1."""
    m = masks / masks.sum(-1, keepdim=True).clamp(min=1e-10)
    gram = m @ m.transpose(-1, -2)
    eye = torch.eye(masks.shape[-2], dtype=masks.dtype, device=masks.device)
    return ((gram - lam * eye) ** 2).sum((-1, -2))
