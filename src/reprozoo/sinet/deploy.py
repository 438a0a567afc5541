"""The deployment path: an eval-mode copy of a trained SINet (or any conv net) computing the same
function with fewer and cheaper operators (:func:`deploy_model`).

Besides the operator rewrites of :mod:`reprozoo.sinet.deploy_ops`, two rewrites use SINet's structure:
BatchNorm is folded into the convolution before it also across S2 blocks' bilinear upsampling (a
per-channel convex combination, so it commutes with a per-channel affine map), and each S2 module's
channel shuffle (a fixed permutation) is absorbed into the weights of its branches. The eager
:class:`~reprozoo.sinet.inference.Segmenter` uses those two; ``reprozoo export sinet`` uses them all.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from reprozoo.sinet.blocks import S2Block, S2Module
from reprozoo.sinet.deploy_ops import (
    densify_grouped_convs,
    fold_bn_into_conv,
    fuse_conv_prelu,
    narrow_convs_plain,
    replace_children,
    rewrite_prelu,
    se_as_conv,
)


def fold_batchnorm(model: nn.Module) -> int:
    """In place: fold BatchNorm2d into the convolution before it. Handles ``nn.Sequential`` runs
    (conv, bn, ...) anywhere in the model and SINet's S2 blocks (depthwise conv -> BN, pointwise
    conv -> [bilinear upsample] -> BN). Returns the number of BatchNorms folded."""
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, S2Block):
            if isinstance(module.br[0], nn.BatchNorm2d):
                module.dw = fold_bn_into_conv(module.dw, module.br[0])
                module.br[0] = nn.Identity()
                folded += 1
            if isinstance(module.bn, nn.BatchNorm2d):
                module.pw = fold_bn_into_conv(module.pw, module.bn)
                module.bn = nn.Identity()
                folded += 1
        elif isinstance(module, nn.Sequential):
            names = list(module._modules)
            for a, b in zip(names, names[1:]):
                conv, bn = module._modules[a], module._modules[b]
                if (isinstance(conv, nn.Conv2d) and type(bn) is nn.BatchNorm2d
                        and bn.track_running_stats and conv.out_channels == bn.num_features):
                    module._modules[a] = fold_bn_into_conv(conv, bn)
                    module._modules[b] = nn.Identity()
                    folded += 1
    return folded


class _S2ModuleNoShuffle(nn.Module):
    """An S2 module whose channel shuffle is absorbed into the two branches' weights (deployment
    only): the shuffle is a fixed channel permutation, and everything up to each branch's pointwise
    convolution acts per channel, so permuting the depthwise weights, the PReLU slopes and the
    pointwise input columns gives the same output without moving any data."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.reduce, self.branch_a, self.branch_b = module.reduce, module.branch_a, module.branch_b
        self.residual, self.br = module.residual, module.br

        self.add_branches = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.reduce(x)
        if self.add_branches:  # the branches write disjoint channels of the full output (see concat_as_add)
            y = self.branch_a(y) + self.branch_b(y)
        else:
            y = torch.cat([self.branch_a(y), self.branch_b(y)], dim=1)
        if self.residual:
            y = y + x
        return self.br(y)


@torch.no_grad()
def _pad_rows(conv: nn.Conv2d, total: int, start: int) -> nn.Conv2d:
    """``conv`` with ``total`` output channels: its own at ``start:start + out``, zero rows and zero
    bias elsewhere."""
    out = nn.Conv2d(conv.in_channels, total, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    conv.groups, bias=True, padding_mode=conv.padding_mode).to(conv.weight.device)
    out.weight.zero_()
    out.bias.zero_()
    stop = start + conv.out_channels
    out.weight[start:stop] = conv.weight
    if conv.bias is not None:
        out.bias[start:stop] = conv.bias
    return out


def concat_as_add(model: nn.Module, block: int = 16) -> int:
    """In place (after :func:`remove_channel_shuffle`): in every S2 module whose branch widths are
    not multiples of ``block`` (SINet's level 2: 24 + 24 channels), each branch's pointwise conv
    writes its channels of the full width (zero rows elsewhere) and the concatenation becomes an
    Add. ONNX Runtime's blocked layout holds ``block`` channels per vector (16 with AVX-512, 8 with
    AVX2) and concatenates only whole blocks, so a 24 + 24 concat costs four layout reorders; an Add
    (exact: the other branch contributes 0.0) stays blocked and fuses into the convolution. Costs the
    pointwise convs' MACs once more. Only branches without pooling (no upsample after the pointwise
    conv) are changed. Returns the number of modules changed."""
    done = 0
    for module in list(model.modules()):
        if not isinstance(module, _S2ModuleNoShuffle):
            continue
        a, b = module.branch_a, module.branch_b
        ca, cb = a.pw.out_channels, b.pw.out_channels
        if (ca % block == 0 and cb % block == 0) or a.pool > 1 or b.pool > 1:
            continue
        if not all(isinstance(m.bn, nn.Identity) and isinstance(m.pw, nn.Conv2d) for m in (a, b)):
            continue
        a.pw, b.pw = _pad_rows(a.pw, ca + cb, 0), _pad_rows(b.pw, ca + cb, ca)
        module.add_branches = True
        done += 1
    return done


def shuffle_permutation(channels: int, groups: int = 2) -> torch.Tensor:
    """``channel_shuffle(y, groups) == y[:, perm]``."""
    return torch.arange(channels).view(groups, channels // groups).t().reshape(-1)


@torch.no_grad()
def _absorb_shuffle(block: nn.Module, perm: torch.Tensor) -> None:
    """Make ``block(y)`` compute what it computed on ``y[:, perm]`` (BN already folded)."""
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(len(perm))
    block.dw.weight.copy_(block.dw.weight[inv])
    if block.dw.bias is not None:
        block.dw.bias.copy_(block.dw.bias[inv])
    act = block.br[1]
    if act.weight.numel() > 1:
        act.weight.copy_(act.weight[inv])
    block.pw.weight.copy_(block.pw.weight[:, inv])


def remove_channel_shuffle(model: nn.Module) -> int:
    """In place (after :func:`fold_batchnorm`): every S2 module loses its channel shuffle."""
    def make(c):
        if type(c) is not S2Module or not all(isinstance(b.br[0], nn.Identity) for b in (c.branch_a, c.branch_b)):
            return None
        perm = shuffle_permutation(c.reduce.out_channels, 2)
        _absorb_shuffle(c.branch_a, perm)
        _absorb_shuffle(c.branch_b, perm)
        return _S2ModuleNoShuffle(c)

    return replace_children(model, make)


def deploy_model(model: nn.Module, *, fold_bn: bool = True, max_prelu: bool = True,
                 drop_shuffle: bool = True, conv_prelu: bool = True, dense_groups: bool = True,
                 conv_se: bool = True, branch_add: bool = True, block: int = 16,
                 narrow: int = 4) -> tuple[nn.Module, dict]:
    """An eval-mode copy computing the same function with cheaper operators: BN folded into the
    convolution before it, (SINet) channel shuffles absorbed into weights, S2 branches whose widths
    break ORT's channel blocks (``block``) added instead of concatenated, grouped (non-depthwise)
    convolutions made dense, SE gates as global pooling + 1x1 convolutions, PReLU after a
    convolution or a lone BN as :class:`ConvPReLU`, any other PReLU as ``max(x, a*x)``, dense
    convolutions with at most ``narrow`` outputs (2-class heads) as :class:`RepeatedGroupConv`
    (0: off); each only where exact (a PReLU with a slope > 1 stays a PReLU). The input model is
    untouched. Returns ``(copy, info)`` with the counts ``bn_folded``, ``shuffles_removed``,
    ``conv_prelu_fused``, ``prelu_rewritten`` (to max), ``prelu_kept``, ``branch_concat_as_add``,
    ``grouped_densified``, ``se_as_conv`` and ``narrow_convs_plain``."""
    net = copy.deepcopy(model).eval()
    info = {"bn_folded": fold_batchnorm(net) if fold_bn else 0, "shuffles_removed": 0, "conv_prelu_fused": 0,
            "prelu_rewritten": 0, "prelu_kept": 0}
    if fold_bn and drop_shuffle:
        info["shuffles_removed"] = remove_channel_shuffle(net)
    info["branch_concat_as_add"] = concat_as_add(net, block) if fold_bn and drop_shuffle and branch_add else 0
    info["grouped_densified"] = densify_grouped_convs(net) if dense_groups else 0
    info["se_as_conv"] = se_as_conv(net) if conv_se else 0
    if fold_bn and conv_prelu:
        info["conv_prelu_fused"], _ = fuse_conv_prelu(net)
    if max_prelu:  # what is left: PReLU after Linear layers, and any with a slope > 1 (kept as PReLU)
        info["prelu_rewritten"], info["prelu_kept"] = rewrite_prelu(net)
    else:
        info["prelu_kept"] = sum(isinstance(m, nn.PReLU) for m in net.modules())
    info["narrow_convs_plain"] = narrow_convs_plain(net, narrow) if narrow else 0
    for p in net.parameters():
        p.requires_grad_(False)
    return net, info
