"""Offline data for the NARA demos: binarised 8x8 digits as 64-long binary sequences (raster
order) and generated noisy sine / AR(p) sequences."""

from __future__ import annotations

import torch

from reprozoo.data import load_digits_tensors, split_indices
from reprozoo.errors import ConfigError, DataError
from reprozoo.runtime.checks import finite


def digits_sequences(seed: int = 0, test_fraction: float = 0.165) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn digits binarised at half intensity, flattened in raster order: ``(n, 64)`` 0/1
    floats; returns ``(train, test)`` (1,500 / 297 with the default fraction)."""
    x, y = load_digits_tensors(binarize=True)
    flat = x.flatten(1)
    train_idx, test_idx = split_indices(len(flat), [1.0 - test_fraction, test_fraction], seed=seed)
    return flat[torch.as_tensor(train_idx)], flat[torch.as_tensor(test_idx)]


def noisy_sines(n: int, length: int = 64, *, noise_std: float = 0.05, amplitude: tuple[float, float] = (0.5, 1.0),
                frequency: tuple[float, float] = (0.15, 0.5), seed: int = 0) -> torch.Tensor:
    """``a * sin(w t + phi) + noise_std * eps`` with ``a ~ U(amplitude)``, ``w ~ U(frequency)``,
    ``phi ~ U(0, 2 pi)``: ``(n, length)`` floats."""
    if n < 1 or length < 1:
        raise DataError(f"need n >= 1 and length >= 1 sequences, got n={n}, length={length}")
    finite("noise_std", noise_std, lo=0.0)
    for name, (lo, hi) in (("amplitude", amplitude), ("frequency", frequency)):
        if finite(f"{name}[0]", lo) > finite(f"{name}[1]", hi):
            raise ConfigError(f"{name} must be a (low, high) range with low <= high, got {(lo, hi)}")
    g = torch.Generator().manual_seed(seed)
    a = amplitude[0] + (amplitude[1] - amplitude[0]) * torch.rand(n, 1, generator=g)
    w = frequency[0] + (frequency[1] - frequency[0]) * torch.rand(n, 1, generator=g)
    phi = 2 * torch.pi * torch.rand(n, 1, generator=g)
    t = torch.arange(length, dtype=torch.float32)[None, :]
    return a * torch.sin(w * t + phi) + noise_std * torch.randn(n, length, generator=g)


def ar_process(n: int, length: int = 64, coeffs: tuple[float, ...] = (1.6, -0.8), *, noise_std: float = 0.1,
               burn_in: int = 50, seed: int = 0) -> torch.Tensor:
    """A stationary AR(p) process ``x_t = sum_i c_i x_{t-i} + noise_std * eps_t``: ``(n, length)``."""
    if n < 1 or length < 1:
        raise DataError(f"need n >= 1 and length >= 1 sequences, got n={n}, length={length}")
    p = len(coeffs)
    if p < 1:
        raise DataError("an AR(p) process needs at least one coefficient")
    g = torch.Generator().manual_seed(seed)
    total = length + burn_in + p
    x = torch.zeros(n, total)
    eps = noise_std * torch.randn(n, total, generator=g)
    c = torch.tensor(coeffs, dtype=torch.float32)
    for t in range(p, total):
        x[:, t] = x[:, t - p:t].flip(1) @ c + eps[:, t]
    if not torch.isfinite(x).all() or x.abs().max() > 1e6:
        raise DataError(f"AR coefficients {coeffs} give an explosive process; use stationary coefficients")
    return x[:, -length:]


def sequence_task(kind: str, n: int, length: int = 64, seed: int = 0) -> torch.Tensor:
    """``kind``: ``sine`` or ``ar2``."""
    if kind == "sine":
        return noisy_sines(n, length, seed=seed)
    if kind == "ar2":
        return ar_process(n, length, seed=seed)
    raise DataError(f"unknown sequence kind '{kind}'; choose 'sine' or 'ar2'")
