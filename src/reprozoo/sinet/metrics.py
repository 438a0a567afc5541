"""Segmentation metrics: the paper's per-image foreground IoU, confusion-matrix mean IoU and the
foreground F1 on the boundary band. All in percent."""

from __future__ import annotations

import torch

from reprozoo.sinet.losses import IGNORE, boundary_band


def per_image_fg_iou(pred: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """SINet's ``iou_binary(per_image=True)``: for each image |pred & gt| / |gt | (pred & gt != 255)|,
    1 when the union is empty. Returns a (B,) tensor in [0, 1]."""
    p = (pred == 1).flatten(1)
    valid = (labels != IGNORE).flatten(1)
    g = (labels == 1).flatten(1)
    inter = (p & g).sum(1).double()
    union = (g | (p & valid)).sum(1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))


def confusion_matrix(pred: torch.Tensor, labels: torch.Tensor, num_classes: int = 2) -> torch.Tensor:
    valid = labels != IGNORE
    idx = labels[valid].long() * num_classes + pred[valid].long()
    return torch.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def mean_iou(cm: torch.Tensor) -> float:
    """Class-mean IoU from a confusion matrix (rows = truth), over classes that occur."""
    cm = cm.double()
    inter = cm.diag()
    union = cm.sum(0) + cm.sum(1) - inter
    present = union > 0
    return float((inter[present] / union[present]).mean()) if present.any() else 1.0


class SegMeter:
    """Accumulates ``fg_iou`` (per-image mean), ``miou`` (confusion matrix) and ``band_f1``
    (foreground F1 over pixels of the ground-truth boundary band of width ``kernel``)."""

    def __init__(self, num_classes: int = 2, kernel: int = 9):
        self.num_classes, self.kernel = num_classes, kernel
        self.iou_sum, self.images = 0.0, 0
        self.cm = torch.zeros(num_classes, num_classes, dtype=torch.long)
        self.tp = self.fp = self.fn = 0

    def update(self, pred: torch.Tensor, labels: torch.Tensor) -> None:
        pred, labels = pred.cpu(), labels.cpu()
        self.iou_sum += float(per_image_fg_iou(pred, labels).sum())
        self.images += len(pred)
        self.cm += confusion_matrix(pred, labels, self.num_classes)
        band = boundary_band(labels, self.kernel)
        p, g = (pred == 1) & band, (labels == 1) & band
        self.tp += int((p & g).sum())
        self.fp += int((p & ~g).sum())
        self.fn += int((~p & g).sum())

    def compute(self) -> dict[str, float]:
        denom = 2 * self.tp + self.fp + self.fn
        return {"fg_iou": 100.0 * self.iou_sum / max(self.images, 1), "miou": 100.0 * mean_iou(self.cm),
                "band_f1": 100.0 * (2 * self.tp / denom if denom else 1.0)}
