"""Inference paths that run K identical members in one pass: :func:`stacked_forward` (``vmap``
over stacked parameters, any members) and :class:`GroupedMembers` (grouped convolutions, SmallCNN
members). Both equal the loop over the members in eval mode."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.eclips.backbones import Backbone, SmallCNN
from reprozoo.eclips.ensemble import BaseLearner
from reprozoo.errors import ConfigError


# ------------------------------------------------------------------------------------ batched members
def stacked_forward(members: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Eval-mode logits of identical-architecture members in one vectorised pass
    (``torch.func.stack_module_state`` + ``vmap``): (K, B, 2), equal to looping over the members."""
    from torch.func import functional_call, stack_module_state, vmap

    params, buffers = stack_module_state(list(members))
    base = members[0]

    def one(p: dict[str, Any], b: dict[str, Any], inp: torch.Tensor) -> torch.Tensor:
        return functional_call(base, (p, b), (inp,))

    return vmap(one, in_dims=(0, 0, None))(params, buffers, x)


class GroupedMembers(nn.Module):
    """K :class:`SmallCNN` base learners fused into one network for inference: the first conv
    concatenates the members' filters, the later convs are grouped (``groups=K``), BatchNorm runs
    over the K x C channels with the members' running statistics, and the heads are batched matrix
    products. ``forward(x)`` -> (K, B, 2), equal to looping over the members in eval mode.
    A snapshot: build it again after the members change."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        members = list(members)
        if not members or not all(isinstance(m, BaseLearner) and isinstance(m.backbone, Backbone)
                                  and isinstance(m.backbone.model, SmallCNN) for m in members):
            raise ConfigError("GroupedMembers needs SmallCNN base learners (see base_learner); "
                              "use stacked_forward for other members")
        self.k = k = len(members)
        stages = [list(m.backbone.model.features) for m in members]
        layers: list[nn.Module] = []
        first = True
        for i, mod in enumerate(stages[0]):
            if isinstance(mod, nn.Conv2d):
                w = torch.cat([s[i].weight.detach() for s in stages])
                conv = nn.Conv2d(mod.in_channels * (1 if first else k), mod.out_channels * k, mod.kernel_size,
                                 padding=mod.padding, bias=False, groups=1 if first else k)
                conv.weight.data.copy_(w)
                layers.append(conv)
                first = False
            elif isinstance(mod, nn.BatchNorm2d):
                bn = nn.BatchNorm2d(mod.num_features * k, eps=mod.eps)
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(bn, name).data.copy_(torch.cat([getattr(s[i], name).detach() for s in stages]))
                layers.append(bn)
            else:
                layers.append(copy.deepcopy(mod))  # ReLU / max-pool: no parameters
        self.features = nn.Sequential(*layers)
        heads = [m.head for m in members]
        self.feature_norm = heads[0].feature_norm
        self.register_buffer("w1", torch.stack([h.embed.weight.detach() for h in heads]))  # (K, E, D)
        self.register_buffer("b1", torch.stack([h.embed.bias.detach() for h in heads]))  # (K, E)
        w2 = torch.stack([h.classifier.weight.detach() for h in heads])  # (K, 2, E)
        self.register_buffer("w2", F.normalize(w2, p=2, dim=1) if self.feature_norm else w2)
        self.register_buffer("b2", torch.stack([h.classifier.bias.detach() for h in heads]))  # (K, 2)
        super().train(False)

    def train(self, mode: bool = True) -> GroupedMembers:
        if mode:
            raise ConfigError("GroupedMembers is for inference only (it holds a snapshot of the members)")
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x).mean((2, 3))  # (B, K * D)
        f = f.view(f.shape[0], self.k, -1).transpose(0, 1)  # (K, B, D)
        z = F.relu(torch.baddbmm(self.b1[:, None], f, self.w1.transpose(1, 2)))  # (K, B, E)
        if self.feature_norm:
            z = z / (z.norm(p=2, dim=2, keepdim=True).clamp_min(1e-12).sqrt() * math.sqrt(2.0))
        return torch.baddbmm(self.b2[:, None], z, self.w2.transpose(1, 2))  # (K, B, 2)
