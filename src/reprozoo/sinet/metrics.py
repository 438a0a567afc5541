"""Segmentation metrics: the paper's per-image foreground IoU, confusion-matrix mean IoU and the
foreground F1 on the boundary band. All in percent."""

from __future__ import annotations

import torch

from reprozoo.errors import DataError
from reprozoo.runtime.checks import finite_tensor
from reprozoo.sinet.losses import IGNORE, boundary_band


def _check_pair(pred: torch.Tensor, labels: torch.Tensor, num_classes: int = 2) -> None:
    """Predicted and true label maps of one shape, integer class ids in 0..num_classes-1 (labels
    may also be the ignore value)."""
    if pred.shape != labels.shape:
        raise DataError(f"pred and labels must have one shape, got {tuple(pred.shape)} and {tuple(labels.shape)}")
    for name, t in (("pred", pred), ("labels", labels)):
        if t.is_floating_point() or t.is_complex():
            raise DataError(f"{name} must be integer class ids, got {t.dtype}")
    bad_p = (pred < 0) | (pred >= num_classes)
    bad_l = ((labels < 0) | (labels >= num_classes)) & (labels != IGNORE)
    if bool(bad_p.any()) or bool(bad_l.any()):
        name, t, bad = ("pred", pred, bad_p) if bool(bad_p.any()) else ("labels", labels, bad_l)
        raise DataError(f"{name} must be class ids in 0..{num_classes - 1}"
                        f"{'' if name == 'pred' else f' or {IGNORE} (ignored)'}, got {int(t[bad][0])}")


def per_image_fg_iou(pred: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """SINet's ``iou_binary(per_image=True)``: for each image |pred & gt| / |gt | (pred & gt != 255)|,
    1 when the union is empty. Returns a (B,) tensor in [0, 1]."""
    _check_pair(pred, labels)
    p = (pred == 1).flatten(1)
    valid = (labels != IGNORE).flatten(1)
    g = (labels == 1).flatten(1)
    inter = (p & g).sum(1).double()
    union = (g | (p & valid)).sum(1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))


def confusion_matrix(pred: torch.Tensor, labels: torch.Tensor, num_classes: int = 2) -> torch.Tensor:
    """``num_classes x num_classes`` counts, rows = truth; pixels labelled IGNORE are left out."""
    _check_pair(pred, labels, num_classes)
    valid = labels != IGNORE
    idx = labels[valid].long() * num_classes + pred[valid].long()
    return torch.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def mean_iou(cm: torch.Tensor) -> float:
    """Class-mean IoU from a confusion matrix (rows = truth), over classes that occur."""
    finite_tensor("confusion matrix", cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or bool((cm < 0).any()):
        raise DataError(f"the confusion matrix must be square with counts >= 0, got shape {tuple(cm.shape)}")
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
