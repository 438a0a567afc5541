"""SINet's loss: class-weighted cross entropy + lambda x the same cross entropy restricted to a
band around the person boundary (weight 0.5, as in the official code)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import ConfigError
from reprozoo.runtime.checks import finite, integer

IGNORE = 255


def class_weights(masks: torch.Tensor, num_classes: int = 2, c: float = 1.10) -> torch.Tensor:
    """ENet's rule w_k = 1 / ln(c + f_k), f_k = pixel frequency of class k (255 ignored)."""
    c = finite("c", c, lo=1.0, lo_open=True)  # ln(c + f) > 0 for every frequency f in [0, 1]
    m = masks.reshape(-1).long()
    m = m[m != IGNORE]
    if m.numel() == 0:
        raise ConfigError("class weights need at least one labelled pixel")
    freq = torch.bincount(m, minlength=num_classes)[:num_classes].double() / m.numel()
    return (1.0 / torch.log(c + freq)).float()


def boundary_band(labels: torch.Tensor, kernel: int) -> torch.Tensor:
    """Pixels where dilate(mask) != erode(mask) with a ``kernel`` x ``kernel`` square (bool, B x H x W).
    Ignored (255) pixels count as background for the morphology and are never in the band."""
    kernel = integer("the boundary kernel", kernel)
    if kernel < 1 or kernel % 2 == 0:
        raise ConfigError(f"the boundary kernel must be an odd size >= 1, got {kernel}")
    fg = (labels == 1).float()[:, None]
    pad = kernel // 2
    dil = F.max_pool2d(fg, kernel, 1, pad)
    ero = -F.max_pool2d(-fg, kernel, 1, pad)
    return ((dil - ero) > 0)[:, 0] & (labels != IGNORE)


def edge_target(labels: torch.Tensor, kernel: int) -> torch.Tensor:
    """The label on the boundary band and 255 (ignored) elsewhere."""
    return torch.where(boundary_band(labels, kernel), labels, torch.full_like(labels, IGNORE))


def band_kernel(size: int, base: int, reference: int) -> int:
    """Scale a band kernel given at ``reference`` pixels (15 at 224, or 5 at 28) to ``size``, odd, >= 3."""
    k = int(round(base * size / reference))
    k = k if k % 2 == 1 else k + 1
    return max(3, k)


def resize_labels(labels: torch.Tensor, size) -> torch.Tensor:
    """Nearest-neighbour resize of integer labels (B, H, W) (the stage-1 1/8 labels)."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    return F.interpolate(labels[:, None].float(), size=tuple(size), mode="nearest")[:, 0].long()


class SINetLoss(nn.Module):
    """``CE_w(out, y) + boundary_weight * CE_w(out, y on the band)``; labels are resized (nearest)
    to the logits' size, so the same loss serves stage 1 (1/8 map) and stage 2.

    ``kernel`` is the band width at the logits' resolution; ``boundary_weight=0`` switches the
    boundary term off. Returns ``(total, ce, edge)``.
    """

    def __init__(self, weight: torch.Tensor | None = None, boundary_weight: float = 0.5, kernel: int = 15):
        super().__init__()
        if boundary_weight < 0:
            raise ConfigError(f"boundary_weight must be >= 0, got {boundary_weight}")
        self.register_buffer("weight", weight.float() if weight is not None else None)
        self.boundary_weight, self.kernel = boundary_weight, kernel

    def _ce(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not (target != IGNORE).any():  # an empty band: no term (CE would be 0/0)
            return logits.sum() * 0.0
        w = self.weight.to(logits.dtype) if self.weight is not None else None
        return F.cross_entropy(logits, target, weight=w, ignore_index=IGNORE)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor):
        if logits.shape[1] < 2:
            raise ConfigError("SINetLoss is a softmax cross entropy and needs num_classes >= 2")
        y = resize_labels(labels.long(), logits.shape[-2:])
        ce = self._ce(logits, y)
        if self.boundary_weight == 0:
            return ce, ce.detach(), torch.zeros((), device=logits.device)
        edge = self._ce(logits, edge_target(y, self.kernel))
        return ce + self.boundary_weight * edge, ce.detach(), edge.detach()
