"""The comparison model: torchvision's LR-ASPP MobileNetV3-Large, untrained (weights=None,
weights_backbone=None), returning a plain logits tensor.

torchvision builds MobileNetV3 with BatchNorm momentum 0.01 (tuned for 600-epoch ImageNet runs);
after the few hundred steps of a short schedule its running statistics are still far from the data
and eval-mode outputs collapse to one class. ``bn_momentum`` (default 0.1, SINet's value) puts both
models on the same footing; pass ``None`` to keep torchvision's setting."""

from __future__ import annotations

import torch
from torch import nn


class LRASPP(nn.Module):
    """``torchvision.models.segmentation.lraspp_mobilenet_v3_large`` -> ``out`` logits (B, C, H, W)."""

    def __init__(self, num_classes: int = 2, bn_momentum: float | None = 0.1):
        super().__init__()
        from torchvision.models.segmentation import lraspp_mobilenet_v3_large

        self.net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes)
        if bn_momentum is not None:
            for m in self.net.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.momentum = bn_momentum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["out"]
