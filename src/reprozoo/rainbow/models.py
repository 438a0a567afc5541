"""Backbones used by Rainbow Memory experiments, each with a replaceable linear head.

Every model exposes ``num_features``, ``forward_features``, ``forward_head`` and
``reset_head(num_classes)`` (RM replaces the head by a fresh ``Linear(feat, n_out)`` with bias at
every task start). Conv blocks are conv (no bias) -> BN (eps 1e-6) -> ReLU as in the paper's code.
"""

from __future__ import annotations

import torch
from torch import nn

from reprozoo.runtime.registry import register_model

BN_EPS = 1e-6


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(cout, eps=BN_EPS), nn.ReLU(inplace=True))


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal (fan_out) convs, BN weight 1 / bias 0, default Linear init."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class HeadMixin:
    """Shared head handling: ``forward = forward_head(forward_features(x))``."""

    num_features: int
    head: nn.Module

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        return self.head(feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_head(self, num_classes: int) -> nn.Linear:
        """Replace the classifier by a fresh ``Linear(num_features, num_classes)`` on the same device."""
        ref = next(self.parameters())
        self.head = nn.Linear(self.num_features, num_classes).to(device=ref.device, dtype=ref.dtype)
        return self.head


class SmallCNN(HeadMixin, nn.Module):
    """Three conv blocks (widths w, 2w, 4w), one 2x2 max-pool, global average pool: for 8x8 digits."""

    def __init__(self, num_classes: int = 10, in_chans: int = 1, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(conv_bn_relu(in_chans, width), conv_bn_relu(width, 2 * width),
                                      nn.MaxPool2d(2), conv_bn_relu(2 * width, 4 * width),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.num_features = 4 * width
        self.head = nn.Linear(self.num_features, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class MLP(HeadMixin, nn.Module):
    """Flatten -> [Linear(no bias) -> BN1d -> ReLU] x depth -> head (the paper's MNIST MLP-400)."""

    def __init__(self, num_classes: int = 10, in_features: int = 2352, hidden: int = 400, depth: int = 2,
                 batch_norm: bool = True):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        dim = in_features
        for _ in range(depth):
            layers += [nn.Linear(dim, hidden, bias=not batch_norm)]
            if batch_norm:
                layers += [nn.BatchNorm1d(hidden, eps=BN_EPS)]
            layers += [nn.ReLU(inplace=True)]
            dim = hidden
        self.features = nn.Sequential(*layers)
        self.num_features = hidden
        self.head = nn.Linear(hidden, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class BasicBlock(nn.Module):
    """CIFAR block of the paper's code: CBR -> CBR, plus shortcut, no ReLU after the addition
    (``post_relu=True`` gives the ImageNet variant). Projection shortcut = 1x1 conv + BN + ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1, post_relu: bool = False):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(cin, cout, 3, stride), conv_bn_relu(cout, cout, 3, 1))
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = conv_bn_relu(cin, cout, 1, stride)
        self.post_relu = post_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x) + self.shortcut(x)
        return torch.relu(out) if self.post_relu else out


class CifarResNet(HeadMixin, nn.Module):
    """ResNet with a 3x3 stride-1 stem and no max-pool (ResNet-18 and ResNet-32 of the paper)."""

    def __init__(self, depths: tuple[int, ...], widths: tuple[int, ...], strides: tuple[int, ...],
                 num_classes: int = 10, in_chans: int = 3):
        super().__init__()
        self.stem = conv_bn_relu(in_chans, widths[0], 3, 1)
        blocks: list[nn.Module] = []
        cin = widths[0]
        for depth, width, stride in zip(depths, widths, strides):
            for i in range(depth):
                blocks.append(BasicBlock(cin, width, stride if i == 0 else 1))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.num_features = cin
        self.head = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.blocks(self.stem(x)))


@register_model
def rm_cnn_digits(num_classes: int = 10, in_chans: int = 1, width: int = 16) -> SmallCNN:
    """Small CNN for 8x8 digits (the offline demo backbone)."""
    return SmallCNN(num_classes, in_chans, width)


@register_model
def rm_mlp_digits(num_classes: int = 10, in_features: int = 64, hidden: int = 128) -> MLP:
    """The small digits MLP 64 -> 128 -> 128 -> head (plain ReLU, no BN)."""
    return MLP(num_classes, in_features, hidden, depth=2, batch_norm=False)


@register_model
def rm_mlp400(num_classes: int = 10, in_features: int = 2352) -> MLP:
    """The paper's MNIST MLP: 28*28*3 -> 400 -> 400 (Linear no bias + BN1d + ReLU) -> head."""
    return MLP(num_classes, in_features, 400, depth=2, batch_norm=True)


@register_model
def rm_resnet18_cifar(num_classes: int = 10, in_chans: int = 3) -> CifarResNet:
    """The paper's CIFAR10 ResNet-18: stages of 2 blocks, widths 64/128/256/512, strides 1/2/2/2."""
    return CifarResNet((2, 2, 2, 2), (64, 128, 256, 512), (1, 2, 2, 2), num_classes, in_chans)


@register_model
def rm_resnet32_cifar(num_classes: int = 100, in_chans: int = 3) -> CifarResNet:
    """The paper's CIFAR100 ResNet-32: 3 stages of 5 blocks, widths 16/32/64, strides 1/2/2."""
    return CifarResNet((5, 5, 5), (16, 32, 64), (1, 2, 2), num_classes, in_chans)
