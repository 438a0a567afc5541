"""One trial of ``rexnet-channels``: train one study network, keep every epoch's train accuracy.

A plain loop (AdamW, per-step warm-up then cosine, the seed's own batch order and initial weights)
in the channels-last memory format, which is faster on CPU for these small networks; the per-epoch
train accuracy is what the plateau gate of the experiment reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from reprozoo.errors import DataError
from reprozoo.runtime.trainer import tensor_epoch


def fit_and_test(model: nn.Module, data, *, seed: int, epochs: int, batch_size: int, lr: float,
                 weight_decay: float, warmup_epochs: float, channels_last: bool = True,
                 eval_batch: int = 512, test_every_epoch: bool = False,
                 train_draw: Callable[[int], tuple[torch.Tensor, torch.Tensor]] | None = None) -> dict[str, Any]:
    """Train ``model`` on ``data = ((x_train, y_train), (x_test, y_test))``; returns ``test_acc``,
    ``train_acc`` (per epoch, measured on the fly), ``train_loss`` (per epoch) and, with
    ``test_every_epoch``, ``test_acc_curve`` (test accuracy after each epoch; budget calibration).
    With ``train_draw``, epoch ``e`` trains on ``train_draw(e)`` (fresh images of the train set's size)
    instead of the fixed train set (online augmentation)."""
    from reprozoo.rexnet.training import warmup_cosine

    (xtr, ytr), (xte, yte) = data
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        xtr, xte = xtr.contiguous(memory_format=torch.channels_last), xte.contiguous(memory_format=torch.channels_last)
    n = len(xtr)
    steps = math.ceil(n / batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = warmup_cosine(opt, steps * epochs, int(round(warmup_epochs * steps)))
    gen = torch.Generator().manual_seed(7919 * int(seed) + 3)
    accs, losses, tests = [], [], []
    for epoch in range(epochs):
        model.train()
        if train_draw is not None:
            xtr, ytr = train_draw(epoch)
            if len(xtr) != n:
                raise DataError(f"train_draw({epoch}) gave {len(xtr)} images, expected {n}")
            if channels_last:
                xtr = xtr.contiguous(memory_format=torch.channels_last)
        acc, loss = tensor_epoch(model, xtr, ytr, torch.randperm(n, generator=gen), batch_size, opt, sched)
        accs.append(acc)
        losses.append(loss)
        if test_every_epoch or epoch == epochs - 1:
            tests.append(test_accuracy(model, xte, yte, eval_batch))
    out = {"test_acc": tests[-1], "train_acc": accs, "train_loss": losses}
    if test_every_epoch:
        out["test_acc_curve"] = tests
    return out


def test_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eval_batch: int = 512) -> float:
    """Accuracy of ``model`` in eval mode (batch-norm running statistics) on ``(x, y)``."""
    model.eval()
    with torch.no_grad():
        hits = sum(int((model(x[i:i + eval_batch]).argmax(1) == y[i:i + eval_batch]).sum())
                   for i in range(0, len(x), eval_batch))
    return hits / len(x)
