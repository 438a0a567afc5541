"""ReXNet building blocks: conv-BN-act, squeeze-excitation with BN inside, the linear bottleneck
with a partial (no-projection) shortcut, and per-sample stochastic depth."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import StochasticDepth

from reprozoo.errors import ConfigError

ACTIVATIONS = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "hardswish": nn.Hardswish,
    "softplus": nn.Softplus,
}


_INPLACE = ("relu", "relu6", "silu", "swish", "elu", "leaky_relu", "hardswish")


def make_act(name: str, inplace: bool = False) -> nn.Module:
    """An activation module by name; ``inplace`` where the op supports it (saves a copy)."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation '{name}'; choose one of: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name](inplace=True) if (inplace and name in _INPLACE) else ACTIVATIONS[name]()


class ConvBnAct(nn.Module):
    """Conv (bias-free unless asked), BatchNorm (PyTorch defaults), optional activation."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1, groups: int = 1,
                 act: str | None = None, bias: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2, groups=groups, bias=bias)
        self.bn = nn.BatchNorm2d(out_chs)
        self.act = make_act(act, inplace=True) if act else nn.Identity()  # acts on the fresh BN output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """Global average -> 1x1 conv (C -> C // divisor) -> BN -> ReLU -> 1x1 conv -> sigmoid gate."""

    def __init__(self, chs: int, divisor: int = 12):
        super().__init__()
        hidden = chs // divisor
        if hidden < 1:
            raise ConfigError(f"SE on {chs} channels with divisor {divisor} has no hidden units; "
                              "use a larger width or a smaller se_divisor")
        self.reduce = nn.Conv2d(chs, hidden, 1, bias=True)
        self.bn = nn.BatchNorm2d(hidden)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(hidden, chs, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.expand(self.act(self.bn(self.reduce(s))))
        return x * s.sigmoid()


class LinearBottleneck(nn.Module):
    """ReXNet inverted bottleneck.

    ``[1x1 expand + BN + act]`` (only when ``expansion != 1``) -> 3x3 depthwise + BN
    [+ ``dw_act`` in the lite model] -> [SE] -> ``post_act`` (ReLU6) -> 1x1 projection + BN (linear).
    With stride 1 and ``in <= out`` the input is added to the first ``in`` output channels only.
    """

    def __init__(self, in_chs: int, out_chs: int, expansion: int = 6, stride: int = 1, se: bool = False,
                 act: str = "silu", dw_act: str | None = None, post_act: str | None = "relu6",
                 kernel_size: int = 3, se_divisor: int = 12, drop_path: float = 0.0):
        super().__init__()
        self.in_chs, self.out_chs = in_chs, out_chs
        self.use_shortcut = stride == 1 and in_chs <= out_chs
        dw = in_chs * expansion
        self.expand = ConvBnAct(in_chs, dw, 1, act=act) if expansion != 1 else None
        self.dw = ConvBnAct(dw, dw, kernel_size, stride, groups=dw, act=dw_act)
        self.se = SqueezeExcite(dw, se_divisor) if se else None
        self.post_act = make_act(post_act, inplace=True) if post_act else nn.Identity()
        self.project = ConvBnAct(dw, out_chs, 1, act=None)
        # stochastic depth only where a shortcut exists, else the main branch itself would vanish
        self.drop_path = StochasticDepth(drop_path, mode="row") if (drop_path > 0 and self.use_shortcut) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x) if self.expand is not None else x
        out = self.dw(out)
        if self.se is not None:
            out = self.se(out)
        out = self.project(self.post_act(out))
        if self.use_shortcut:
            out = self.drop_path(out)
            if self.in_chs == self.out_chs:
                return out + x
            if not torch.is_grad_enabled():  # inference: add in place, no concatenation copy
                out[:, : self.in_chs] += x
                return out
            return torch.cat((out[:, : self.in_chs] + x, out[:, self.in_chs:]), dim=1)
        return out
