"""Offline data for the GeNAS demos: scikit-learn digits split into a small training set
(supernet and stand-alone training), a validation set (proxy scoring), a test set (ground
truth) and a noisy copy of the test set (a distribution shift)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reprozoo.data.sources import load_digits_tensors
from reprozoo.data.splits import TensorDataset, split_indices
from reprozoo.errors import ConfigError


@dataclass
class DigitsSplits:
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    shifted: TensorDataset  # test images + N(0, shift_std^2) pixel noise, clipped to [0, 1]


def digits_splits(n_train: int = 250, n_val: int = 300, shift_std: float = 0.25, seed: int = 0) -> DigitsSplits:
    """Stratified, seeded splits of the 1,797 digits; the test set is everything left over."""
    x, y = load_digits_tensors()
    n = len(x)
    if n_train < 10 or n_val < 10 or n_train + n_val > n - 10:
        raise ConfigError(f"n_train and n_val must be >= 10 and leave >= 10 test images of {n}, "
                          f"got {n_train} and {n_val}")
    if not shift_std >= 0:
        raise ConfigError(f"shift_std must be >= 0, got {shift_std}")
    parts = split_indices(n, [n_train / n, n_val / n, 1 - (n_train + n_val) / n], seed=seed, labels=y.numpy())
    tr, va, te = ([torch.as_tensor(p) for p in parts])
    gen = torch.Generator().manual_seed(10_007 + seed)
    noisy = (x[te] + shift_std * torch.randn(x[te].shape, generator=gen)).clamp(0, 1)
    return DigitsSplits(TensorDataset(x[tr], y[tr]), TensorDataset(x[va], y[va]), TensorDataset(x[te], y[te]),
                        TensorDataset(noisy, y[te]))
