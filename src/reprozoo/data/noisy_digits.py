"""Noisy shifted digits: scikit-learn's 1,797 8x8 handwritten digits placed on a larger canvas.

Each image is one digit upsampled (bilinear) to ``digit_size`` pixels, pasted at a random offset
of up to ``shift`` pixels from the centre of a ``size`` x ``size`` canvas, scaled by a random
contrast in ``contrast`` and covered by Gaussian noise of std ``noise``. The digits are split into
train and test sources once (``split_seed``), so no test digit is ever seen in training, and each
source digit can be drawn several times (``copies``) with independent distortions. Everything comes
from ``numpy`` generators: the same seeds give the same images; nothing is downloaded (the digits
ship inside scikit-learn).

Difficulty knobs: ``noise`` (the main one), ``shift``, ``contrast`` and ``digit_size``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from reprozoo.errors import DataError

N_DIGITS = 1797


def _check(size: int, digit_size: int, shift: int, noise: float, contrast: tuple[float, float],
           copies: int) -> None:
    if not 8 <= digit_size <= size:
        raise DataError(f"digit_size must be in [8, size={size}], got {digit_size}")
    if shift < 0 or 2 * shift > size - digit_size:
        raise DataError(f"shift must be in [0, (size - digit_size) / 2 = {(size - digit_size) // 2}], got {shift}; "
                        "lower shift or digit_size, or raise size")
    if not (0 <= noise < float("inf")):  # NaN fails this too
        raise DataError(f"noise must be a finite number >= 0, got {noise}")
    if not 0 < contrast[0] <= contrast[1]:
        raise DataError(f"contrast must be (min, max) with 0 < min <= max, got {contrast}")
    if copies < 1:
        raise DataError(f"copies must be >= 1, got {copies}")


def digit_split(test_fraction: float = 0.2, split_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the train and test source digits (disjoint, fixed by ``split_seed``)."""
    if not 0 < test_fraction < 1:
        raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}")
    perm = np.random.default_rng(split_seed).permutation(N_DIGITS)
    n_test = int(round(test_fraction * N_DIGITS))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def noisy_digits(indices: np.ndarray, *, copies: int = 1, size: int = 32, digit_size: int = 20, shift: int = 6,
                 noise: float = 0.5, contrast: tuple[float, float] = (0.4, 1.0),
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``copies`` distorted draws of the digits at ``indices``: images ``(n, 1, size, size)``
    float32 and labels ``(n,)`` int64, n = len(indices) * copies (copy-major order)."""
    from sklearn.datasets import load_digits

    contrast = (float(contrast[0]), float(contrast[1]))
    _check(size, digit_size, shift, noise, contrast, copies)
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= N_DIGITS):
        raise DataError(f"indices must be in [0, {N_DIGITS}), got {indices.min()}..{indices.max()}")
    data = load_digits()
    src = torch.tensor(data.images[indices], dtype=torch.float32).unsqueeze(1) / 16.0
    src = F.interpolate(src, size=(digit_size, digit_size), mode="bilinear", align_corners=False).clamp(0, 1)
    src = src.squeeze(1).numpy()
    labels = np.asarray(data.target, dtype=np.int64)[indices]
    rng = np.random.default_rng(seed)
    n = len(indices) * copies
    top = (size - digit_size) // 2
    offs = rng.integers(-shift, shift + 1, (n, 2)) + top
    amp = rng.uniform(contrast[0], contrast[1], n).astype(np.float32)
    img = np.zeros((n, size, size), np.float32)
    for j in range(n):
        r, c = offs[j]
        img[j, r:r + digit_size, c:c + digit_size] = amp[j] * src[j % len(indices)]
    if noise:
        img += rng.normal(0.0, noise, img.shape).astype(np.float32)
    return torch.from_numpy(img).unsqueeze(1), torch.from_numpy(np.tile(labels, copies))


def noisy_digit_splits(train_copies: int = 2, test_copies: int = 3, *, test_fraction: float = 0.2,
                       split_seed: int = 0, seed: int = 0, **kwargs):
    """``((x_train, y_train), (x_test, y_test))`` from disjoint source digits; train and test
    distortions come from independent streams (``seed`` and ``seed + 1_000_003``)."""
    tr, te = digit_split(test_fraction, split_seed)
    return (noisy_digits(tr, copies=train_copies, seed=seed, **kwargs),
            noisy_digits(te, copies=test_copies, seed=seed + 1_000_003, **kwargs))
