"""The comparison model: torchvision's LR-ASPP MobileNetV3-Large, untrained (weights=None,
weights_backbone=None), returning a plain logits tensor."""

from __future__ import annotations

import torch
from torch import nn


class LRASPP(nn.Module):
    """``torchvision.models.segmentation.lraspp_mobilenet_v3_large`` -> ``out`` logits (B, C, H, W)."""

    def __init__(self, num_classes: int = 2):
        super().__init__()
        from torchvision.models.segmentation import lraspp_mobilenet_v3_large

        self.net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["out"]
