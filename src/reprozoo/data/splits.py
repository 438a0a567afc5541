"""Seeded, stratified splits and a tiny tensor dataset."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from reprozoo.errors import DataError


class TensorDataset(Dataset):
    """Like ``torch.utils.data.TensorDataset`` with an optional per-sample ``transform`` on x."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform=None):
        if len(x) != len(y):
            raise DataError(f"x has {len(x)} samples but y has {len(y)}")
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        x = self.x[i]
        return (self.transform(x) if self.transform is not None else x), self.y[i]


def split_indices(n: int, fractions: Sequence[float], seed: int = 0,
                  labels: Sequence[int] | np.ndarray | None = None) -> list[np.ndarray]:
    """Partition ``range(n)`` into parts with the given fractions (summing to 1), seeded.

    With ``labels`` the split is stratified: each class is split with the same fractions.
    The parts are disjoint and cover every index exactly once.
    """
    fr = np.asarray(fractions, dtype=float)
    if n < 0 or (fr < 0).any() or not np.isclose(fr.sum(), 1.0):
        raise DataError(f"fractions must be non-negative and sum to 1, got {list(fractions)}")
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if labels is None else [
        np.flatnonzero(np.asarray(labels) == c) for c in np.unique(np.asarray(labels))
    ]
    parts: list[list[int]] = [[] for _ in fr]
    for idx in groups:
        idx = rng.permutation(idx)
        bounds = np.round(np.cumsum(fr) * len(idx)).astype(int)
        start = 0
        for k, end in enumerate(bounds):
            parts[k].extend(idx[start:end].tolist())
            start = end
    return [np.sort(np.asarray(p, dtype=int)) for p in parts]


def train_val_test(x: torch.Tensor, y: torch.Tensor, fractions=(0.7, 0.15, 0.15), seed: int = 0,
                   stratify: bool = True) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
    parts = split_indices(len(x), fractions, seed, labels=y.numpy() if stratify else None)
    return tuple(TensorDataset(x[torch.as_tensor(p)], y[torch.as_tensor(p)]) for p in parts)  # type: ignore[return-value]
