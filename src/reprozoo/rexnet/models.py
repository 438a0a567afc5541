"""ReXNet v1 (all released widths) and ReXNet-lite.

Layout: ``stem`` -> ``blocks`` (16 :class:`LinearBottleneck` at depth 1.0) -> ``pen`` (1x1 conv,
BN, act) -> ``head`` (global average pool, dropout, classifier). ``forward_features`` returns the
map before pooling, ``forward_head`` the logits; ``features_only=True`` makes ``forward`` return
the multi-scale maps listed in ``feature_info`` (strides 2, 4, 8, 16, 32) for detection or
segmentation necks.

Initialisation: ``weight_init="default"`` keeps PyTorch's defaults like the official code;
``"efficientnet"`` is the fan-out normal init used by timm's port.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from reprozoo.errors import ConfigError
from reprozoo.rexnet.blocks import ConvBnAct, LinearBottleneck
from reprozoo.rexnet.schedule import STAGE_STRIDES, Schedule, lite_schedule, rexnet_schedule
from reprozoo.runtime.evaluation import check_out_indices
from reprozoo.runtime.registry import register_model

MAX_CLASSES = 1_000_000


def _check_common(num_classes: int, in_chans: int, drop_rate: float, drop_path_rate: float) -> None:
    if not isinstance(num_classes, int) or not 0 <= num_classes <= MAX_CLASSES:
        raise ConfigError(f"num_classes must be an integer in [0, {MAX_CLASSES}] (0 = no classifier), "
                          f"got {num_classes!r}")
    if not isinstance(in_chans, int) or in_chans < 1:
        raise ConfigError(f"in_chans must be a positive integer, got {in_chans!r}")
    for name, value in (("drop_rate", drop_rate), ("drop_path_rate", drop_path_rate)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {value!r}")


class ClassifierHead(nn.Module):
    """Global average pool -> [hidden 1x1 conv + BN + act] -> dropout -> linear classifier."""

    def __init__(self, in_chs: int, num_classes: int, drop_rate: float, hidden: int = 0,
                 hidden_act: str = "relu6"):
        super().__init__()
        self.hidden = None
        if hidden:
            self.hidden = ConvBnAct(in_chs, hidden, 1, act=hidden_act, bias=True)
            in_chs = hidden
        self.num_features = in_chs
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(in_chs, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean((2, 3), keepdim=self.hidden is not None)
        if self.hidden is not None:
            x = self.hidden(x).flatten(1)
        x = self.drop(x)
        return x if pre_logits else self.fc(x)


class ReXNet(nn.Module):
    """ReXNet v1 (``lite=False``) or ReXNet-lite (``lite=True``: no SE, ReLU6 everywhere including
    after the depthwise conv, widths snapped to multiples of 8, a 1024-wide hidden head)."""

    def __init__(self, width_mult: float = 1.0, depth_mult: float = 1.0, num_classes: int = 1000,
                 in_chans: int = 3, drop_rate: float = 0.2, drop_path_rate: float = 0.0,
                 se_divisor: int = 12, act: str = "silu", dw_act: str | None = None,
                 lite: bool = False, kernel_conf: str = "333333", weight_init: str = "default",
                 features_only: bool = False, out_indices: Sequence[int] = (0, 1, 2, 3, 4),
                 block_channels: Sequence[int] | None = None,
                 stage_strides: Sequence[int] = STAGE_STRIDES):
        super().__init__()
        _check_common(num_classes, in_chans, drop_rate, drop_path_rate)
        if weight_init not in ("default", "efficientnet"):
            raise ConfigError(f"weight_init must be 'default' or 'efficientnet', got {weight_init!r}")
        if lite:
            if block_channels is not None or tuple(stage_strides) != STAGE_STRIDES:
                raise ConfigError("block_channels and stage_strides are only supported for ReXNet v1 (lite=False)")
            act, dw_act = "relu6", "relu6"
            schedule = lite_schedule(width_mult, depth_mult, kernel_conf=kernel_conf)
        else:
            schedule = rexnet_schedule(width_mult, depth_mult, block_channels=block_channels,
                                       stage_strides=stage_strides)
        self.schedule: Schedule = schedule
        self.width_mult, self.lite, self.num_classes = width_mult, lite, num_classes
        self.stem = ConvBnAct(in_chans, schedule.stem_chs, 3, stride=2, act=act)
        n = len(schedule.blocks)
        blocks = []
        for spec in schedule.blocks:
            rate = drop_path_rate * spec.index / max(n - 1, 1)
            blocks.append(LinearBottleneck(
                spec.in_chs, spec.out_chs, spec.expansion, spec.stride, se=spec.se, act=act,
                dw_act=dw_act, post_act=None if lite else "relu6", kernel_size=spec.kernel_size,
                se_divisor=se_divisor, drop_path=rate))
        self.blocks = nn.Sequential(*blocks)
        self.pen = ConvBnAct(schedule.blocks[-1].out_chs, schedule.pen_chs, 1, act=act)
        self.num_features = schedule.pen_chs
        self.head = ClassifierHead(schedule.pen_chs, num_classes, drop_rate, hidden=1024 if lite else 0)
        self.feature_info = self._feature_info()
        self.features_only = features_only
        if features_only:
            check_out_indices(out_indices, len(self.feature_info))
        self.out_indices = tuple(out_indices)
        if weight_init == "efficientnet":
            efficientnet_init_(self)

    def _feature_info(self) -> list[dict]:
        """Block outputs just before each stride-2 block, and the last block (reductions 2..32)."""
        info, reduction = [], 2
        specs = self.schedule.blocks
        for spec in specs:
            reduction *= spec.stride
            nxt = specs[spec.index + 1] if spec.index + 1 < len(specs) else None
            if nxt is None or nxt.stride > 1:
                info.append({"index": spec.index, "num_chs": spec.out_chs, "reduction": reduction,
                             "module": f"blocks.{spec.index}"})
        return info

    def reset_classifier(self, num_classes: int) -> None:
        _check_common(num_classes, 1, 0.0, 0.0)
        feats = self.head.num_features
        self.head.fc = nn.Linear(feats, num_classes) if num_classes > 0 else nn.Identity()
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pen(self.blocks(self.stem(x)))

    def forward_intermediates(self, x: torch.Tensor, indices: Sequence[int] | None = None) -> list[torch.Tensor]:
        """Feature maps at ``feature_info[i]`` for ``i`` in ``indices`` (default: all five)."""
        wanted = {self.feature_info[i]["index"] for i in (indices if indices is not None else
                                                          range(len(self.feature_info)))}
        last = max(wanted)
        outs = []
        x = self.stem(x)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in wanted:
                outs.append(x)
            if i == last:
                break
        return outs

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor):
        if self.features_only:
            return self.forward_intermediates(x, self.out_indices)
        return self.forward_head(self.forward_features(x))


@torch.no_grad()
def efficientnet_init_(model: nn.Module) -> None:
    """Fan-out normal init for convs, unit BN, uniform(+-1/sqrt(out)) for linear layers."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            m.weight.normal_(0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.fill_(1.0)
            m.bias.zero_()
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.weight.size(0))
            m.weight.uniform_(-bound, bound)
            m.bias.zero_()


# ------------------------------------------------------------------ registered constructors
WIDTHS = {"rexnet_090": 0.9, "rexnet_100": 1.0, "rexnet_130": 1.3, "rexnet_150": 1.5, "rexnet_200": 2.0,
          "rexnet_220": 2.2, "rexnet_300": 3.0}
LITE_WIDTHS = {"rexnet_lite_100": 1.0, "rexnet_lite_130": 1.3, "rexnet_lite_150": 1.5, "rexnet_lite_200": 2.0}


def rexnet(width_mult: float = 1.0, **kwargs) -> ReXNet:
    """ReXNet v1 at any width (the registered names cover the released ones)."""
    return ReXNet(width_mult=width_mult, **kwargs)


@register_model
def rexnet_090(**kwargs) -> ReXNet:
    return ReXNet(width_mult=0.9, **kwargs)


@register_model
def rexnet_100(**kwargs) -> ReXNet:
    return ReXNet(width_mult=1.0, **kwargs)


@register_model
def rexnet_130(**kwargs) -> ReXNet:
    return ReXNet(width_mult=1.3, **kwargs)


@register_model
def rexnet_150(**kwargs) -> ReXNet:
    return ReXNet(width_mult=1.5, **kwargs)


@register_model
def rexnet_200(**kwargs) -> ReXNet:
    return ReXNet(width_mult=2.0, **kwargs)


@register_model
def rexnet_220(**kwargs) -> ReXNet:
    return ReXNet(width_mult=2.2, **kwargs)


@register_model
def rexnet_300(**kwargs) -> ReXNet:
    return ReXNet(width_mult=3.0, **kwargs)


@register_model
def rexnet_lite_100(**kwargs) -> ReXNet:
    return ReXNet(width_mult=1.0, lite=True, **kwargs)


@register_model
def rexnet_lite_130(**kwargs) -> ReXNet:
    return ReXNet(width_mult=1.3, lite=True, **kwargs)


@register_model
def rexnet_lite_150(**kwargs) -> ReXNet:
    return ReXNet(width_mult=1.5, lite=True, **kwargs)


@register_model
def rexnet_lite_200(**kwargs) -> ReXNet:
    return ReXNet(width_mult=2.0, lite=True, **kwargs)
