"""Several stand-alone trainings of ONE genotype run as one grouped network (affordable seeds).

The copies are built one by one (each from its own seeded initial weights) and merged by
:func:`group_networks`: every ``Conv2d`` becomes a grouped convolution (``groups`` x K) whose
filters are the copies' filters stacked copy by copy, every ``BatchNorm2d`` holds the K copies'
channels side by side (per-channel statistics, so each copy's batch statistics are its own), and
the linear head becomes a :class:`GroupedLinear`. Pooling, identity, zero and ReLU act per channel
and need no change. Copy k reads only channels ``[k*c, (k+1)*c)`` everywhere, so the grouped net
computes exactly the K networks side by side.

:func:`fit_grouped` trains the copies with the recipe of :func:`~reprozoo.genas.supernet.fit_in_memory`
(SGD with Nesterov momentum and weight decay, cosine schedule, gradient-norm clipping): each copy
has its own seeded batch order, its own loss (the sum of the copies' mean losses, so each copy's
gradient is its own), and its gradient is clipped by its own norm. SGD is elementwise, so every
copy follows the trajectory it follows alone, up to float rounding of the grouped kernels
(tests/genas check the equality against :func:`fit_in_memory`). On the tiny 8x8 networks the cost
of one step is mostly per-call overhead, so K copies cost little more than one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import ConfigError, DataError
from reprozoo.genas.proxies import evaluate
from reprozoo.genas.supernet import SupernetConfig, fit_in_memory, sgd_cosine


class GroupedLinear(nn.Module):
    """K linear heads: input ``[B, K * in]`` -> output ``[B, K * out]`` (copy-major)."""

    def __init__(self, linears: Sequence[nn.Linear]):
        super().__init__()
        self.k = len(linears)
        self.weight = nn.Parameter(torch.stack([m.weight.detach().clone() for m in linears]))  # [K, out, in]
        self.bias = nn.Parameter(torch.stack([m.bias.detach().clone() for m in linears]))  # [K, out]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        xs = x.reshape(b, self.k, -1)
        return (torch.einsum("bki,koi->bko", xs, self.weight) + self.bias).reshape(b, -1)


def _grouped_conv(convs: Sequence[nn.Conv2d]) -> nn.Conv2d:
    c = convs[0]
    k = len(convs)
    out = nn.Conv2d(c.in_channels * k, c.out_channels * k, c.kernel_size, c.stride, c.padding, c.dilation,
                    groups=c.groups * k, bias=c.bias is not None)
    with torch.no_grad():
        out.weight.copy_(torch.cat([m.weight for m in convs]))
        if c.bias is not None:
            out.bias.copy_(torch.cat([m.bias for m in convs]))
    return out


def _grouped_bn(bns: Sequence[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    b = bns[0]
    out = nn.BatchNorm2d(b.num_features * len(bns), eps=b.eps, momentum=b.momentum, affine=b.affine,
                         track_running_stats=b.track_running_stats)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(b, name, None) is not None:
                getattr(out, name).copy_(torch.cat([getattr(m, name) for m in bns]))
        if b.track_running_stats:
            out.num_batches_tracked.copy_(b.num_batches_tracked)
    return out


def group_networks(nets: Sequence[nn.Module]) -> nn.Module:
    """One module computing the K same-shaped ``nets`` side by side (input channels copy-major)."""
    if not nets:
        raise ConfigError("group_networks needs at least one network")
    shapes = [[(n, tuple(p.shape)) for n, p in m.named_parameters()] for m in nets]
    if any(s != shapes[0] for s in shapes):
        raise ConfigError("group_networks needs networks of the same architecture (same parameter names and shapes)")
    grouped = copy.deepcopy(nets[0])
    mods = [dict(m.named_modules()) for m in nets]
    for name, module in list(grouped.named_modules()):
        if not name:
            continue
        same = [d[name] for d in mods]
        if isinstance(module, nn.Conv2d):
            new = _grouped_conv(same)
        elif isinstance(module, nn.BatchNorm2d):
            new = _grouped_bn(same)
        elif isinstance(module, nn.Linear):
            new = GroupedLinear(same)
        elif any(p is not None for p in module._parameters.values()):
            raise ConfigError(f"group_networks cannot group module '{name}' ({type(module).__name__})")
        else:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = grouped.get_submodule(parent_name) if parent_name else grouped
        setattr(parent, child, new)
    grouped.copies = len(nets)
    return grouped


def _clip_per_copy(params: Sequence[nn.Parameter], k: int, max_norm: float) -> None:
    """Clip each copy's gradient by its own total norm (``clip_grad_norm_`` applied to each copy)."""
    grads = [p.grad for p in params if p.grad is not None]
    sq = torch.zeros(k)
    for g in grads:
        sq += g.detach().reshape(k, -1).pow(2).sum(1)
    coef = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.reshape(k, *([1] * (g.dim() - 1))).repeat_interleave(g.shape[0] // k, 0))


def copy_major_input(xs: Sequence[torch.Tensor]) -> torch.Tensor:
    """K image batches of the same size -> one ``[B, K * C, H, W]`` batch for the grouped net."""
    return torch.cat(list(xs), dim=1)


def fit_grouped(build: Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor, cfg: SupernetConfig, *,
                init_seeds: Sequence[int], order_seeds: Sequence[int]) -> nn.Module:
    """Train ``len(init_seeds)`` copies of ``build()`` as one grouped network; copy k starts from the
    weights ``build()`` gives under ``torch.manual_seed(init_seeds[k])`` and reads the training set
    in the order of ``torch.Generator().manual_seed(order_seeds[k])``, exactly as
    :func:`~reprozoo.genas.supernet.fit_in_memory` with ``seed=order_seeds[k]`` would."""
    cfg.validate()
    if len(x) == 0:
        raise DataError("the training set is empty")
    if len(init_seeds) != len(order_seeds) or not init_seeds:
        raise ConfigError("fit_grouped needs one init seed and one order seed per copy")
    nets = []
    for s in init_seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(s))
            nets.append(build())
    k = len(nets)
    model = group_networks(nets)
    opt, sched = sgd_cosine(model, cfg, cfg.epochs)
    gens = [torch.Generator().manual_seed(int(s)) for s in order_seeds]
    params = list(model.parameters())
    model.train()
    for _ in range(cfg.epochs):
        perms = [torch.randperm(len(x), generator=g) for g in gens]
        for i in range(0, len(x), cfg.batch_size):
            idx = [p[i:i + cfg.batch_size] for p in perms]
            out = model(copy_major_input([x[j] for j in idx])).reshape(len(idx[0]), k, -1)
            loss = sum(F.cross_entropy(out[:, c], y[idx[c]]) for c in range(k))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                _clip_per_copy(params, k, cfg.grad_clip)
            opt.step()
        sched.step()
    model.eval()
    return model


@torch.no_grad()
def evaluate_grouped(model: nn.Module, batches: Sequence) -> list[tuple[float, float]]:
    """Per copy: (mean over batches of the batch-mean cross-entropy, top-1 accuracy), as
    :func:`~reprozoo.genas.proxies.evaluate` gives for each copy alone."""
    k = int(model.copies)
    losses: list[list[float]] = [[] for _ in range(k)]
    correct, total = [0] * k, 0
    for x, y in batches:
        out = model(x.repeat(1, k, 1, 1)).reshape(len(x), k, -1)
        for c in range(k):
            losses[c].append(float(F.cross_entropy(out[:, c], y)))
            correct[c] += int((out[:, c].argmax(1) == y).sum())
        total += int(y.numel())
    if total == 0:
        raise DataError("the evaluation set is empty")
    return [(sum(ls) / len(ls), n / total) for ls, n in zip(losses, correct)]


def train_copies(build: Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor, cfg: SupernetConfig, *,
                 init_seeds: Sequence[int], order_seeds: Sequence[int], grouped: bool = True,
                 evals: dict[str, Sequence]) -> dict[str, list[tuple[float, float]]]:
    """Train the copies (grouped, or one at a time with :func:`fit_in_memory`: the same numbers up to
    float rounding) and evaluate each on every batch list of ``evals``: ``{name: [(loss, acc) per copy]}``."""
    if grouped:
        model = fit_grouped(build, x, y, cfg, init_seeds=init_seeds, order_seeds=order_seeds)
        return {name: evaluate_grouped(model, batches) for name, batches in evals.items()}
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in evals}
    for init, order in zip(init_seeds, order_seeds):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(init))
            net = build()
        fit_in_memory(net, x, y, cfg, seed=int(order))
        for name, batches in evals.items():
            out[name].append(evaluate(net, batches))
    return out
