"""Small evaluation helpers shared by experiments that keep their data in tensors."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from reprozoo.errors import ConfigError


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
    """Top-1 accuracy of ``model`` (put in eval mode) on tensors ``x``, ``y``, in batches on the
    model's device."""
    model.eval()
    dev = next(model.parameters()).device
    correct = sum(int((model(x[i:i + batch].to(dev)).argmax(1).cpu() == y[i:i + batch]).sum())
                  for i in range(0, len(x), batch))
    return correct / len(x)


def check_out_indices(out_indices: Sequence[int], n_stages: int) -> tuple[int, ...]:
    """``features_only`` stage indices: a non-empty subset of ``0..n_stages-1``."""
    bad = [i for i in out_indices if not 0 <= i < n_stages]
    if bad or not out_indices:
        raise ConfigError(f"out_indices {list(out_indices)} must be a non-empty subset of 0..{n_stages - 1}")
    return tuple(out_indices)
