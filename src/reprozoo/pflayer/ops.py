"""Spatial operations for the bottleneck "1x1 reduce -> spatial op -> 1x1 expand", behind one registry.

The paper (Sec. 3) replaces the trainable spatial op of a bottleneck (3x3 conv, 3x3 depthwise
conv) by a built-in parameter-free op, primarily a 3x3 max-pool. Every op here maps
``(B, C, H, W)`` to ``(B, C, ceil(H / stride), ceil(W / stride))`` so the ops are
interchangeable inside one builder:

==============  =====================================================================  ======
name            what runs                                                              params
==============  =====================================================================  ======
``conv3x3``     3x3 conv (stride s, pad 1, no bias) + BN + ReLU (ResNet's Bottleneck)  9C^2+2C
``depthwise``   3x3 depthwise conv (stride s, pad 1, no bias) + BN + ReLU              9C+2C
``maxpool``     3x3 max-pool (stride s, pad 1; pads with -inf); no BN, no ReLU         0
``avgpool``     3x3 average pool (stride s, pad 1)                                     0
``identity``    nothing (stride s subsamples, as a strided 1x1 conv would)             0
``hybrid``      stride 1: 3x3 max-pool; stride 2: 2x2 avg-pool s2 then 3x3 conv s1     0 / 9C^2+2C
                + BN + ReLU (the paper's EffBottleneck used by R50-hybrid)
==============  =====================================================================  ======

``register_spatial_op(name)`` adds a user op: a callable ``(channels, stride) -> nn.Module``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from reprozoo.errors import ConfigError
from reprozoo.runtime.checks import integer

SpatialOpFactory = Callable[[int, int], nn.Module]
_OPS: dict[str, SpatialOpFactory] = {}


def register_spatial_op(name: str):
    """Decorator: register ``factory(channels, stride) -> nn.Module`` as spatial op ``name``."""

    def wrap(factory: SpatialOpFactory) -> SpatialOpFactory:
        if name in _OPS and _OPS[name] is not factory:
            raise ValueError(f"spatial op '{name}' registered twice")
        _OPS[name] = factory
        return factory

    return wrap


def spatial_ops() -> list[str]:
    """Names of the registered spatial ops."""
    return list(_OPS)


def check_spatial_op(name: str) -> str:
    if name not in _OPS:
        raise ConfigError(f"unknown spatial op '{name}'; choose one of: {', '.join(_OPS)}")
    return name


def make_spatial_op(name: str, channels: int, stride: int = 1) -> nn.Module:
    """The module of spatial op ``name`` on ``channels`` channels with ``stride`` (1 or 2)."""
    check_spatial_op(name)
    channels = integer("channels", channels, lo=1)
    if stride not in (1, 2):
        raise ConfigError(f"spatial op stride must be 1 or 2, got {stride}")
    return _OPS[name](channels, stride)


class ConvBn(nn.Module):
    """Conv (no bias) + BatchNorm (PyTorch defaults) + optional ReLU."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1, groups: int = 1,
                 act: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Subsample(nn.Module):
    """Keep every ``stride``-th pixel (what a strided 1x1 conv does spatially); identity at stride 1."""

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.stride == 1 else x[:, :, :: self.stride, :: self.stride]


class PoolConv(nn.Module):
    """2x2 average pool (stride 2, no padding) then a 3x3 conv s1 + BN + ReLU: the downsampling
    spatial op of the paper's hybrid bottleneck (resolution is reduced *before* the conv)."""

    def __init__(self, channels: int):
        super().__init__()
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2, ceil_mode=True)
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(self.pool(x))))


@register_spatial_op("conv3x3")
def _conv3x3(channels: int, stride: int) -> nn.Module:
    return ConvBn(channels, channels, 3, stride, act=True)


@register_spatial_op("depthwise")
def _depthwise(channels: int, stride: int) -> nn.Module:
    return ConvBn(channels, channels, 3, stride, groups=channels, act=True)


@register_spatial_op("maxpool")
def _maxpool(channels: int, stride: int) -> nn.Module:
    return nn.MaxPool2d(kernel_size=3, stride=stride, padding=1)


@register_spatial_op("avgpool")
def _avgpool(channels: int, stride: int) -> nn.Module:
    return nn.AvgPool2d(kernel_size=3, stride=stride, padding=1)


@register_spatial_op("identity")
def _identity(channels: int, stride: int) -> nn.Module:
    return Subsample(stride)


@register_spatial_op("hybrid")
def _hybrid(channels: int, stride: int) -> nn.Module:
    return PoolConv(channels) if stride == 2 else nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
