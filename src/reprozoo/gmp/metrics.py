"""Grounding metrics on normalised time: IoU, top-1 by IoU voting, R@n at IoU m, mIoU."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from reprozoo.errors import ConfigError, DataError
from reprozoo.runtime.checks import finite, finite_tensor, integer

IOU_EPS = 1e-10


def segment_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of segments (..., 2) and (..., 2), broadcast: (inter + 1e-10) / (union + 1e-10), >= 0."""
    inter = (torch.minimum(a[..., 1], b[..., 1]) - torch.maximum(a[..., 0], b[..., 0])).clamp(min=0)
    union = torch.maximum(a[..., 1], b[..., 1]) - torch.minimum(a[..., 0], b[..., 0])
    return ((inter + IOU_EPS) / (union + IOU_EPS)).clamp(min=0)


def vote_top1(segments: torch.Tensor, losses: torch.Tensor, weighting: str = "loss") -> torch.Tensor:
    """Index of the top-1 proposal by IoU voting: vote_i = sum_j IoU(seg_i, seg_j) c_j with
    c_j = 1 - C_j / max_j C_j (``"loss"``, the paper's Charades rule) or c_j = 1 (``"uniform"``).
    segments (B, K, 2), losses (B, K) -> (B,)."""
    if segments.ndim != 3 or segments.shape[-1] != 2 or losses.shape != segments.shape[:2] or not losses.shape[1]:
        raise DataError(f"segments must be (B, K >= 1, 2) and losses (B, K), got {tuple(segments.shape)} and "
                        f"{tuple(losses.shape)}")
    finite_tensor("segments", segments)
    finite_tensor("losses", losses)
    iou = segment_iou(segments[:, :, None], segments[:, None, :])
    if weighting == "loss":
        c = 1 - losses / losses.amax(-1, keepdim=True).clamp(min=1e-10)
    elif weighting == "uniform":
        c = torch.ones_like(losses)
    else:
        raise ConfigError(f"vote weighting must be 'loss' or 'uniform', got {weighting!r}")
    return (iou * c[:, None, :]).sum(-1).argmax(-1)


def rank_predictions(segments: torch.Tensor, losses: torch.Tensor,
                     weighting: str = "loss") -> tuple[torch.Tensor, torch.Tensor]:
    """(top-1 segment (B, 2) by voting, all segments sorted by ascending loss (B, K, 2))."""
    top = vote_top1(segments, losses, weighting)
    order = losses.argsort(-1)
    ranked = segments.gather(1, order[..., None].expand(-1, -1, 2))
    return segments[torch.arange(len(top)), top], ranked


def recall_table(top1: torch.Tensor, ranked: torch.Tensor, gt: torch.Tensor, ns: Sequence[int] = (1, 5),
                 ious: Sequence[float] = (0.3, 0.5, 0.7)) -> dict[str, np.ndarray]:
    """Per-query hits: ``R1@m`` = IoU(top-1, gt) >= m; ``R{n}@m`` (n > 1) = the best IoU among
    the n lowest-loss proposals >= m (all of them when a query has fewer than n, as a top-n list of
    fewer candidates holds them all: the whole-video control's single segment is its R5 list);
    ``iou`` = the top-1 IoU (its mean is mIoU)."""
    for name, t in (("top1", top1), ("ranked", ranked), ("gt", gt)):
        finite_tensor(name, t)
    ns = [integer("n", n, lo=1) for n in ns]
    ious = [finite("IoU threshold", m, lo=0.0, hi=1.0) for m in ious]
    iou1 = segment_iou(top1, gt)
    iou_all = segment_iou(ranked, gt[:, None, :])
    out = {"iou": iou1.numpy().astype(np.float64)}
    for n in ns:
        best = iou1 if n == 1 else iou_all[:, :n].amax(-1)
        for m in ious:
            out[f"R{n}@{m:g}"] = (best >= m).numpy().astype(np.float64)
    return out


def summarise(hits: dict[str, np.ndarray], mask: np.ndarray | None = None) -> dict[str, float]:
    """Mean of every per-query column (optionally over a subset); ``iou`` becomes ``mIoU``."""
    out = {}
    for k, v in hits.items():
        vals = v if mask is None else v[mask]
        out["mIoU" if k == "iou" else k] = float(vals.mean()) if vals.size else float("nan")
    return out
