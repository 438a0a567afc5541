"""Operator-level rewrites for deployment: each replaces a module by one computing the same function
with operators that ONNX Runtime runs faster (used by :func:`reprozoo.sinet.deploy.deploy_model`).

ONNX Runtime's profiler on the plain SINet export shows the time going to PReLU (about half of the
kernel time) and to the layout reorders around it, not to arithmetic. The rewrites here are exact
(or exact up to float rounding): BatchNorm folded into the convolution before it
(:func:`fold_bn_into_conv`, through ``torch.nn.utils.fusion.fuse_conv_bn_eval``), PReLU as
``max(x, a * x)`` or as a pair of convolutions (only where every slope ``a <= 1``: a larger slope
would flip the two branches, so such a PReLU is kept), grouped convolutions made dense, the SE gate's
Linear layers as 1x1 convolutions, and narrow heads as grouped convolutions.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from reprozoo.sinet.blocks import S2Block, SEGate


def replace_children(model: nn.Module, make) -> int:
    """In place: every submodule ``child`` for which ``make(child)`` returns a module is replaced by
    that module in its parent (the replacements themselves are not visited). Returns the number
    replaced."""
    done = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            new = make(child)
            if new is not None:
                setattr(parent, name, new)
                done += 1
    return done


@torch.no_grad()
def fold_bn_into_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new convolution computing ``bn(conv(x))`` with the BatchNorm's running statistics
    (``torch.nn.utils.fusion.fuse_conv_bn_eval`` on the two in eval mode; the inputs keep their
    training flags and weights)."""
    modes = conv.training, bn.training
    conv.eval()
    bn.eval()
    try:
        fused = fuse_conv_bn_eval(conv, bn)
    finally:
        conv.train(modes[0])
        bn.train(modes[1])
    return fused


class MaxPReLU(nn.Module):
    """``max(x, a * x)`` with per-channel slopes ``a <= 1``: equal to PReLU, but an elementwise
    Max/Mul pair that ONNX Runtime runs in its blocked layout."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", weight.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if w.numel() > 1:
            w = w.view(1, -1, *([1] * (x.dim() - 2)))
        return torch.maximum(x, x * w)


def prelu_rewritable(prelu: nn.PReLU) -> bool:
    """``max(x, a*x) == PReLU(x)`` for every x iff every slope a <= 1."""
    return bool((prelu.weight.detach() <= 1.0).all())


def rewrite_prelu(model: nn.Module) -> tuple[int, int]:
    """In place: PReLU -> :class:`MaxPReLU` where valid. Returns (rewritten, kept)."""
    kept = sum(isinstance(m, nn.PReLU) and not prelu_rewritable(m) for m in model.modules())
    done = replace_children(model, lambda c: MaxPReLU(c.weight)
                            if isinstance(c, nn.PReLU) and prelu_rewritable(c) else None)
    return done, kept


class ConvPReLU(nn.Module):
    """``PReLU(conv(x))`` for slopes ``a <= 1``, written as ``conv_a(x) + relu(conv_b(x))`` where
    ``conv_a`` has weights and bias scaled by ``a`` and ``conv_b`` by ``1 - a`` (per output
    channel): ``a*y + (1-a)*relu(y) == PReLU(y)`` for ``1 - a >= 0``. Both halves are plain
    convolutions with ReLU/Add that ONNX Runtime fuses and keeps in its blocked layout, so no layout
    reorder surrounds the activation; the price is one more (usually depthwise) convolution."""

    def __init__(self, conv: nn.Conv2d, slope: torch.Tensor):
        super().__init__()
        a = slope.detach().reshape(-1).float().to(conv.weight.device)
        if a.numel() == 1:
            a = a.expand(conv.out_channels)
        self.conv_a, self.conv_b = _scaled_conv(conv, a), _scaled_conv(conv, 1 - a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_a(x) + torch.relu(self.conv_b(x))


@torch.no_grad()
def _scaled_conv(conv: nn.Conv2d, scale: torch.Tensor) -> nn.Conv2d:
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode).to(conv.weight.device)
    out.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels, device=conv.weight.device)
    out.bias.copy_(bias * scale)
    return out


@torch.no_grad()
def _bn_as_conv(bn: nn.BatchNorm2d) -> nn.Conv2d:
    """An eval-mode BatchNorm2d as a 1x1 depthwise convolution."""
    c = bn.num_features
    ident = nn.Conv2d(c, c, 1, groups=c, bias=False).to(bn.running_mean.device)
    ident.weight.fill_(1.0)
    return fold_bn_into_conv(ident, bn)


def fuse_conv_prelu(model: nn.Module) -> tuple[int, int]:
    """In place (after :func:`fold_batchnorm`): every PReLU with slopes <= 1 that follows a
    convolution (``nn.Sequential`` conv [-> Identity] -> PReLU, SINet's S2-block depthwise conv ->
    PReLU) or a lone BatchNorm (``BN -> PReLU``, as a 1x1 depthwise convolution) becomes a
    :class:`ConvPReLU`. Returns (fused, PReLUs left because a slope > 1)."""
    fused = kept = 0
    for module in list(model.modules()):
        if isinstance(module, S2Block) and isinstance(module.br[0], nn.Identity) and isinstance(module.br[1], nn.PReLU):
            if prelu_rewritable(module.br[1]):
                module.dw = ConvPReLU(module.dw, module.br[1].weight)
                module.br = nn.Identity()
                fused += 1
            else:
                kept += 1
        elif isinstance(module, nn.Sequential):
            names = list(module._modules)
            for i, name in enumerate(names):
                act = module._modules[name]
                if not isinstance(act, nn.PReLU) or i == 0:
                    continue
                j = i - 1
                while j > 0 and isinstance(module._modules[names[j]], nn.Identity):
                    j -= 1
                prev = module._modules[names[j]]
                if type(prev) is nn.BatchNorm2d and prev.track_running_stats:
                    prev = _bn_as_conv(prev)
                if not isinstance(prev, nn.Conv2d):
                    continue
                if not prelu_rewritable(act):
                    kept += 1
                    continue
                module._modules[names[j]] = ConvPReLU(prev, act.weight)
                for k in range(j + 1, i + 1):
                    module._modules[names[k]] = nn.Identity()
                fused += 1
    return fused, kept


@torch.no_grad()
def dense_from_grouped(conv: nn.Conv2d) -> nn.Conv2d:
    """A dense (groups=1) convolution computing the grouped ``conv``: block-diagonal weights, zeros
    elsewhere (exact: the zeros add exact 0.0 terms)."""
    g = conv.groups
    cin_g, cout_g = conv.in_channels // g, conv.out_channels // g
    dense = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, 1, bias=conv.bias is not None, padding_mode=conv.padding_mode)
    dense = dense.to(conv.weight.device)
    dense.weight.zero_()
    for k in range(g):
        dense.weight[k * cout_g:(k + 1) * cout_g, k * cin_g:(k + 1) * cin_g] = conv.weight[k * cout_g:(k + 1) * cout_g]
    if conv.bias is not None:
        dense.bias.copy_(conv.bias)
    return dense


def densify_grouped_convs(model: nn.Module, max_groups: int = 4) -> int:
    """In place: every grouped convolution that is not depthwise and has ``groups <= max_groups``
    (SINet's g=2 reduce convs) becomes a dense block-diagonal one. ONNX Runtime's blocked-layout
    (NCHWc) path takes dense and depthwise convolutions only; a grouped one drops out of it and costs
    a layout reorder on each side. Returns the number replaced."""
    def make(c):
        grouped = type(c) is nn.Conv2d and 1 < c.groups <= max_groups
        return dense_from_grouped(c) if grouped and not c.groups == c.in_channels == c.out_channels else None

    return replace_children(model, make)


class ConvSEGate(nn.Module):
    """SINet's SE gate with global average pooling and the Linear layers as 1x1 convolutions
    (the same function): ``GlobalAveragePool`` and the 1x1 convs run in ORT's blocked layout,
    where ``mean(dim=(2, 3))`` + ``Gemm`` needed a reorder."""

    def __init__(self, gate: nn.Module):
        super().__init__()
        layers = []
        for m in gate.fc:
            if isinstance(m, nn.Linear):
                conv = nn.Conv2d(m.in_features, m.out_features, 1, bias=m.bias is not None).to(m.weight.device)
                with torch.no_grad():
                    conv.weight.copy_(m.weight[:, :, None, None])
                    if m.bias is not None:
                        conv.bias.copy_(m.bias)
                layers.append(conv)
            else:
                layers.append(m)
        self.fc = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(torch.nn.functional.adaptive_avg_pool2d(x, 1))


def se_as_conv(model: nn.Module) -> int:
    """In place: every :class:`reprozoo.sinet.blocks.SEGate` becomes a :class:`ConvSEGate`."""
    return replace_children(model, lambda c: ConvSEGate(c) if type(c) is SEGate else None)


class RepeatedGroupConv(nn.Module):
    """A dense convolution with few outputs (``out <= narrow``, e.g. a 2-class head) as a grouped one
    over ``out`` copies of the input: group ``k`` sees the whole input and computes output ``k``
    (the same function). ORT's blocked layout would pad the few output channels to a whole block
    (16 with AVX-512: 8x the work for 2 outputs) and reorder back; a grouped convolution stays in
    the plain layout, and so does everything after it."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.copies = conv.out_channels
        self.conv = nn.Conv2d(conv.in_channels * self.copies, conv.out_channels, conv.kernel_size, conv.stride,
                              conv.padding, conv.dilation, self.copies, bias=conv.bias is not None,
                              padding_mode=conv.padding_mode).to(conv.weight.device)
        with torch.no_grad():
            self.conv.weight.copy_(conv.weight)
            if conv.bias is not None:
                self.conv.bias.copy_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([x] * self.copies, dim=1))


def narrow_convs_plain(model: nn.Module, narrow: int = 4) -> int:
    """In place (last step): every dense convolution with ``2 <= out_channels <= narrow`` becomes a
    :class:`RepeatedGroupConv`. Returns the number replaced."""
    return replace_children(model, lambda c: RepeatedGroupConv(c)
                            if type(c) is nn.Conv2d and c.groups == 1 and 2 <= c.out_channels <= narrow else None)
