"""Several seeds of one ``rexnet-channels`` arm as ONE batched model (``torch.func``), for measurement.

The per-seed networks (same arm, so the same shapes) are stacked with
``torch.func.stack_module_state`` and trained with ``vmap`` over ``functional_call``: every seed keeps
its own parameters, its own batch-norm buffers (stacked too, so each seed's running statistics are
updated from its own batches) and its own batches; one AdamW step on the stacked tensors is the
per-seed AdamW step, since AdamW acts element by element and the summed loss has per-seed gradients.
So a batched seed gives the numbers it gives alone, up to float rounding (tested).

On CPU this is slower than training the seeds one after the other in the channels-last layout
(``reprozoo bench rexnet`` measures the ratio in one run): vmap turns each conv into one grouped
conv over the seeds, which this hardware runs slower than the separate convs. The experiment
therefore trains one seed per trial; this module backs the benchmark and its equality test.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


class StackedSeeds:
    """``len(models)`` networks of one architecture trained together; ``step`` takes one batch per model."""

    def __init__(self, models: Sequence[nn.Module], lr: float = 1e-3, weight_decay: float = 0.01, eps: float = 1e-8):
        params, buffers = stack_module_state(list(models))
        self.params = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
        self.buffers = {k: v.detach().clone() for k, v in buffers.items()}
        self.template = copy.deepcopy(models[0]).to("meta")
        self.opt = torch.optim.AdamW(self.params.values(), lr=lr, weight_decay=weight_decay, eps=eps)

    def _forward(self, p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.template, (p, b), (x,))

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One training step; ``x`` is ``(models, batch, C, H, W)``, ``y`` ``(models, batch)``; returns the
        per-model logits."""
        logits = vmap(self._forward)(self.params, self.buffers, x)
        n, b = y.shape
        loss = F.cross_entropy(logits.reshape(n * b, -1), y.reshape(-1), reduction="none").view(n, b).mean(1).sum()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return logits.detach()

    def state(self, i: int) -> dict[str, torch.Tensor]:
        """Model ``i``'s parameters and buffers, keyed as in its ``state_dict``."""
        out = {k: v[i].detach() for k, v in self.params.items()}
        out.update({k: v[i] for k, v in self.buffers.items()})
        return out


def sequential_steps(models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor, steps: int, lr: float = 1e-3,
                     weight_decay: float = 0.01, eps: float = 1e-8, channels_last: bool = False) -> list[torch.Tensor]:
    """The reference: each model trained alone for ``steps`` steps on its own slice of ``x``/``y``;
    returns each model's logits of its last step."""
    outs = []
    for i, model in enumerate(models):
        xi = x[i].contiguous(memory_format=torch.channels_last) if channels_last else x[i]
        if channels_last:
            model.to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, eps=eps)
        model.train()
        for _ in range(steps):
            out = model(xi)
            loss = F.cross_entropy(out, y[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        outs.append(out.detach())
    return outs
