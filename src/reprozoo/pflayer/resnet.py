"""ResNet family with a pluggable spatial op: ResNet-50, R50-max, R50-hybrid and small study nets.

Layout (torchvision's ResNet v1.5, Sec. 4 of the paper): ``stem`` (7x7 conv s2 + BN + ReLU) ->
``stem_pool`` (3x3 max-pool s2) -> ``layer1..layer4`` of :class:`PfBottleneck` -> global average
pool -> ``fc``. A bottleneck is ``reduce`` (1x1 conv + BN + ReLU) -> ``spatial`` (any op of
:mod:`reprozoo.pflayer.ops`, carrying the block's stride) -> ``expand`` (1x1 conv + BN) -> add the
shortcut (1x1 conv s + BN when the shape changes) -> ReLU.

* ``resnet50_pf``: ``spatial_op="conv3x3"`` (torchvision's ``resnet50``; loads its weights);
* ``r50_max``: 3x3 max-pool in all 16 bottlenecks;
* ``r50_hybrid``: max-pool in the stride-1 blocks, 2x2 avg-pool + 3x3 conv in the first block of
  stages 2-4 (so exactly three trainable 3x3 convs remain).

``width_mult`` scales the planes of every stage (``int(planes * width_mult)``, stem fixed at 64
as in the official code), ``layers`` the depth. ``stem="small"`` (3x3 conv, no max-pool) and
``planes`` / ``expansion`` build the small networks of the layer-level study (Sec. 3).
``features_only=True`` makes ``forward`` return the maps listed in ``feature_info``.

Initialisation (``init``): ``"torch"`` (default) keeps PyTorch's own init of every layer, as the
official PfLayer ResNets do (they define no init: convs and the classifier draw from
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), std 1/sqrt(3 fan_in)); ``"kaiming"`` is torchvision's ResNet
init (Kaiming-normal convs with fan-out, std sqrt(2 / fan_out)). BatchNorms start at weight 1,
bias 0 and the classifier keeps PyTorch's init under both.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from reprozoo.errors import ConfigError
from reprozoo.pflayer.ops import ConvBn, check_spatial_op, make_spatial_op
from reprozoo.runtime.evaluation import check_out_indices
from reprozoo.runtime.registry import register_model

MAX_CLASSES = 1_000_000
INITS = ("torch", "kaiming")
R50_LAYERS = (3, 4, 6, 3)
R50_PLANES = (64, 128, 256, 512)


def check_common(num_classes: int, in_chans: int, drop_rate: float = 0.0, drop_path_rate: float = 0.0) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 0 <= num_classes <= MAX_CLASSES:
        raise ConfigError(f"num_classes must be an integer in [0, {MAX_CLASSES}] (0 = no classifier), "
                          f"got {num_classes!r}")
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
        raise ConfigError(f"in_chans must be a positive integer, got {in_chans!r}")
    for name, value in (("drop_rate", drop_rate), ("drop_path_rate", drop_path_rate)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {value!r}")


def check_width(width_mult: float) -> float:
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or not width_mult > 0 \
            or width_mult > 64:
        raise ConfigError(f"width_mult must be a number in (0, 64], got {width_mult!r}")
    return float(width_mult)


class PfBottleneck(nn.Module):
    """1x1 reduce -> spatial op (stride s) -> 1x1 expand, plus the shortcut, then ReLU."""

    def __init__(self, in_chs: int, planes: int, stride: int = 1, spatial_op: str = "conv3x3",
                 expansion: int = 4):
        super().__init__()
        out_chs = planes * expansion
        self.op_name, self.stride = spatial_op, stride
        self.reduce = ConvBn(in_chs, planes, 1, act=True)
        self.spatial = make_spatial_op(spatial_op, planes, stride)
        self.expand = ConvBn(planes, out_chs, 1)
        self.downsample = ConvBn(in_chs, out_chs, 1, stride) if (stride != 1 or in_chs != out_chs) else None
        self.act = nn.ReLU(inplace=True)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.expand.bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.expand(self.spatial(self.reduce(x)))
        return self.act(out + shortcut)


class PfResNet(nn.Module):
    """A bottleneck ResNet whose spatial op is chosen per model (``spatial_op``) or per block
    (``block_ops``: one op name per bottleneck, in order)."""

    def __init__(self, spatial_op: str = "conv3x3", layers: Sequence[int] = R50_LAYERS,
                 width_mult: float = 1.0, num_classes: int = 1000, in_chans: int = 3,
                 planes: Sequence[int] = R50_PLANES, expansion: int = 4, stem: str = "imagenet",
                 stem_chs: int = 64, drop_rate: float = 0.0, zero_init_residual: bool = False,
                 block_ops: Sequence[str] | None = None, features_only: bool = False,
                 out_indices: Sequence[int] = (0, 1, 2, 3, 4), init: str = "torch"):
        super().__init__()
        check_common(num_classes, in_chans, drop_rate)
        if init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(INITS)} (torch = the official PfLayer code's PyTorch "
                              f"defaults, kaiming = torchvision's ResNet init), got {init!r}")
        check_spatial_op(spatial_op)
        width_mult = check_width(width_mult)
        layers, planes = [int(v) for v in layers], [int(v) for v in planes]
        if not layers or len(layers) != len(planes) or any(v < 1 for v in layers):
            raise ConfigError(f"layers must list >= 1 block per stage, one entry per stage of planes {planes}, "
                              f"got {layers}")
        if expansion < 1 or stem_chs < 1:
            raise ConfigError(f"expansion and stem_chs must be >= 1, got {expansion}, {stem_chs}")
        if stem not in ("imagenet", "small", "small_s2"):
            raise ConfigError(f"stem must be 'imagenet' (7x7 s2 + max-pool), 'small' (3x3 s1) or 'small_s2' "
                              f"(3x3 s2), got '{stem}'")
        n_blocks = sum(layers)
        if block_ops is not None:
            block_ops = [check_spatial_op(op) for op in block_ops]
            if len(block_ops) != n_blocks:
                raise ConfigError(f"block_ops needs one op per bottleneck ({n_blocks}), got {len(block_ops)}")
        self.spatial_op, self.width_mult, self.num_classes = spatial_op, width_mult, num_classes
        if stem == "imagenet":
            self.stem = ConvBn(in_chans, stem_chs, 7, 2, act=True)
            self.stem_pool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            reduction = 4
        else:
            stride = 2 if stem == "small_s2" else 1
            self.stem = ConvBn(in_chans, stem_chs, 3, stride, act=True)
            self.stem_pool = nn.Identity()
            reduction = stride
        self.feature_info = [{"num_chs": stem_chs, "reduction": reduction // (2 if stem == "imagenet" else 1),
                              "module": "stem"}]
        in_chs, k = stem_chs, 0
        stages = []
        for s, (depth, base) in enumerate(zip(layers, planes)):
            width = max(1, int(base * width_mult))
            blocks = []
            for i in range(depth):
                stride = 2 if (s > 0 and i == 0) else 1
                op = block_ops[k] if block_ops is not None else spatial_op
                blocks.append(PfBottleneck(in_chs, width, stride, op, expansion))
                in_chs, k = width * expansion, k + 1
            reduction *= 2 if s > 0 else 1
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append({"num_chs": in_chs, "reduction": reduction, "module": f"layer{s + 1}"})
        self.stages = stages
        for s, stage in enumerate(stages):
            self.add_module(f"layer{s + 1}", stage)
        self.num_features = in_chs
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(in_chs, num_classes) if num_classes > 0 else nn.Identity()
        self.features_only = features_only
        if features_only:
            check_out_indices(out_indices, len(self.feature_info))
        self.out_indices = tuple(out_indices)
        self.init = init
        self._init_weights(init, zero_init_residual)

    @torch.no_grad()
    def _init_weights(self, init: str, zero_init_residual: bool) -> None:
        """``torch``: leave every layer as PyTorch built it (the official code); ``kaiming``:
        torchvision's ResNet init, Kaiming-normal (fan-out) convs. Unit BN, default Linear in both."""
        if init == "kaiming":
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, PfBottleneck):
                    m.zero_init_last()

    @property
    def blocks(self) -> list[PfBottleneck]:
        return [b for stage in self.stages for b in stage]

    def reset_classifier(self, num_classes: int) -> None:
        check_common(num_classes, 1)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.num_classes = num_classes

    def forward_intermediates(self, x: torch.Tensor, indices: Sequence[int] | None = None) -> list[torch.Tensor]:
        """Maps at ``feature_info[i]`` for ``i`` in ``indices`` (default: all)."""
        wanted = set(range(len(self.feature_info)) if indices is None else indices)
        outs = []
        x = self.stem(x)
        if 0 in wanted:
            outs.append(x)
        x = self.stem_pool(x)
        for s, stage in enumerate(self.stages, start=1):
            if s > max(wanted):
                break
            x = stage(x)
            if s in wanted:
                outs.append(x)
        return outs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_pool(self.stem(x))
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(x.mean((2, 3)))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor):
        if self.features_only:
            return self.forward_intermediates(x, self.out_indices)
        return self.forward_head(self.forward_features(x))


def hybrid_ops(layers: Sequence[int]) -> list[str]:
    """R50-hybrid's per-block ops: ``hybrid`` everywhere (max-pool at stride 1, avg-pool + conv at
    the stride-2 first block of stages 2..)."""
    return ["hybrid"] * sum(int(v) for v in layers)


def study_net(spatial_op: str, width_mult: float = 1.0, num_classes: int = 10, in_chans: int = 1,
              planes: Sequence[int] = (8, 16, 32), layers: Sequence[int] = (2, 2, 2), stem_chs: int = 16,
              expansion: int = 4, stem: str = "small_s2", init: str = "torch") -> PfResNet:
    """The small bottleneck network of the layer-level study: a 3x3 stem, three stages of two
    bottlenecks (downsampling by the block's own spatial op), global pooling and a linear head;
    networks built with different ``spatial_op`` differ in that op only."""
    return PfResNet(spatial_op, layers=layers, width_mult=width_mult, num_classes=num_classes, in_chans=in_chans,
                    planes=planes, expansion=expansion, stem=stem, stem_chs=stem_chs, init=init)


# ------------------------------------------------------------------ registered constructors
def _r50(spatial_op: str, layers: Sequence[int] | None, width_mult: float, **kwargs) -> PfResNet:
    return PfResNet(spatial_op, layers=tuple(layers) if layers is not None else R50_LAYERS, width_mult=width_mult,
                    **kwargs)


@register_model
def resnet50_pf(layers: Sequence[int] | None = None, width_mult: float = 1.0, **kwargs) -> PfResNet:
    """ResNet-50 (v1.5) built from the pluggable bottleneck with 3x3 convs: the paper's baseline."""
    return _r50("conv3x3", layers, width_mult, **kwargs)


@register_model
def r50_max(layers: Sequence[int] | None = None, width_mult: float = 1.0, **kwargs) -> PfResNet:
    """R50-max: a 3x3 max-pool between the 1x1 convs of all 16 bottlenecks."""
    return _r50("maxpool", layers, width_mult, **kwargs)


@register_model
def r50_hybrid(layers: Sequence[int] | None = None, width_mult: float = 1.0, **kwargs) -> PfResNet:
    """R50-hybrid: max-pool in the stride-1 blocks, avg-pool 2x2 + 3x3 conv in stages 2-4's first block."""
    return _r50("hybrid", layers, width_mult, **kwargs)
