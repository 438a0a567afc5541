"""SINet building blocks: CBR/BR, the SE depthwise-separable downsampler, channel shuffle and the
Spatial Squeeze (S2) block and module (the paper's S2-module section).

Every convolution is bias-free, every BatchNorm uses ``eps=1e-3``, PReLU is per channel (init 0.25).
Upsampling is bilinear with ``align_corners=True`` *to a size* (not a scale factor), so any input
size works and ONNX export sees no data-dependent shapes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3


def upsample_to(x: torch.Tensor, size) -> torch.Tensor:
    """Bilinear resize with ``align_corners=True`` (what ``nn.UpsamplingBilinear2d`` does)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, g*c, H, W) -> interleave the g groups. Uses ``.shape`` (not ``.data.size()``) so tracing
    and ONNX export keep working for any batch size."""
    b, c, h, w = x.shape
    x = x.reshape(b, groups, c // groups, h, w).transpose(1, 2)
    return x.reshape(b, c, h, w)


class CBR(nn.Sequential):
    """k x k conv (stride s, 'same' padding) -> BN -> PReLU."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1):
        super().__init__(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False),
                         nn.BatchNorm2d(cout, eps=BN_EPS), nn.PReLU(cout))


class BR(nn.Sequential):
    """BN -> PReLU."""

    def __init__(self, channels: int):
        super().__init__(nn.BatchNorm2d(channels, eps=BN_EPS), nn.PReLU(channels))


class SEGate(nn.Module):
    """SINet's squeeze-excitation: global average pool -> Linear(s) each followed by PReLU (not a
    sigmoid), then a channel-wise product with the input. ``reduction=1`` uses a single Linear."""

    def __init__(self, channels: int, reduction: int = 2):
        super().__init__()
        if reduction > 1:
            hidden = channels // reduction
            self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.PReLU(hidden),
                                    nn.Linear(hidden, channels), nn.PReLU(channels))
        else:
            self.fc = nn.Sequential(nn.Linear(channels, channels), nn.PReLU(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.fc(x.mean(dim=(2, 3)))
        return x * w[:, :, None, None]


class SEDSConv(nn.Module):
    """Depthwise 3x3 (stride s) -> SE gate -> pointwise 1x1 -> BN -> PReLU (the downsampler)."""

    def __init__(self, cin: int, cout: int, stride: int = 2, reduction: int = 2):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
        self.se = SEGate(cin, reduction)
        self.pw = CBR(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.se(self.dw(x)))


class S2Block(nn.Module):
    """[AvgPool p] -> depthwise k x k -> BN -> PReLU -> 1x1 -> [bilinear back up] -> BN (no final act)."""

    def __init__(self, cin: int, cout: int, kernel: int, pool: int):
        super().__init__()
        self.pool = pool
        self.dw = nn.Conv2d(cin, cin, kernel, 1, (kernel - 1) // 2, groups=cin, bias=False)
        self.br = BR(cin)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        if self.pool > 1:
            x = F.avg_pool2d(x, self.pool, self.pool)
        x = self.pw(self.br(self.dw(x)))
        if self.pool > 1:
            x = upsample_to(x, size)
        return self.bn(x)


class S2Module(nn.Module):
    """Grouped 1x1 reduce (g=2) -> channel shuffle -> two S2 blocks on the same tensor -> concat ->
    [+ input when ``residual``] -> BN -> PReLU."""

    def __init__(self, cin: int, cout: int, config: tuple[tuple[int, int], tuple[int, int]],
                 residual: bool = True):
        super().__init__()
        n = cout // 2
        n1 = cout - 2 * n
        (k1, p1), (k2, p2) = config
        self.reduce = nn.Conv2d(cin, n, 1, groups=2, bias=False)
        self.branch_a = S2Block(n, n + n1, k1, p1)
        self.branch_b = S2Block(n, n, k2, p2)
        self.residual = residual and cin == cout
        self.br = BR(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = channel_shuffle(self.reduce(x), 2)
        y = torch.cat([self.branch_a(y), self.branch_b(y)], dim=1)
        if self.residual:
            y = y + x
        return self.br(y)
