"""Procedural "dot patterns": 10 classes of four identical dots arranged as tetromino-like shapes.

Every image holds exactly four equal square dots of one random contrast on a noisy background; the
class is only the *arrangement* of the dots (a horizontal or vertical line, two diagonals, a square,
T, S, Z, L, J). Local statistics (dot size, count, contrast) carry no label information, so a
network must aggregate over space - over several dot spacings - to classify; a network whose
receptive field stays at a few pixels (1x1 convs after a 3x3 stem, then global pooling) is close to
chance. Everything is drawn from one ``numpy`` generator: the same ``seed`` gives the same images.

Knobs (defaults calibrated so a small 3x3-conv bottleneck network lands clearly below 100%):
``spacing`` (grid step in pixels, drawn per image), ``dot`` (dot side), ``jitter`` (per-dot
offset, pixels), ``contrast`` (dot intensity range) and ``noise`` (Gaussian std).
"""

from __future__ import annotations

import numpy as np
import torch

from reprozoo.errors import DataError

# (row, col) grid cells of the four dots of each class
PATTERNS: dict[str, tuple[tuple[int, int], ...]] = {
    "line_h": ((0, 0), (0, 1), (0, 2), (0, 3)),
    "line_v": ((0, 0), (1, 0), (2, 0), (3, 0)),
    "diag_down": ((0, 0), (1, 1), (2, 2), (3, 3)),
    "diag_up": ((3, 0), (2, 1), (1, 2), (0, 3)),
    "square": ((0, 0), (0, 1), (1, 0), (1, 1)),
    "t": ((0, 0), (0, 1), (0, 2), (1, 1)),
    "s": ((0, 1), (0, 2), (1, 0), (1, 1)),
    "z": ((0, 0), (0, 1), (1, 1), (1, 2)),
    "l": ((0, 0), (1, 0), (2, 0), (2, 1)),
    "j": ((0, 1), (1, 1), (2, 1), (2, 0)),
}
CLASSES = tuple(PATTERNS)


def _check(n: int, size: int, spacing: tuple[int, int], dot: int, jitter: int, contrast: tuple[float, float],
           noise: float) -> None:
    lo, hi = spacing
    if n < 0:
        raise DataError(f"n must be >= 0, got {n}")
    if dot < 1 or jitter < 0 or noise < 0:
        raise DataError(f"dot >= 1, jitter >= 0 and noise >= 0 are required, got {dot}, {jitter}, {noise}")
    if not 1 <= lo <= hi:
        raise DataError(f"spacing must be (min, max) with 1 <= min <= max, got {spacing}")
    if lo - 2 * jitter < dot:
        raise DataError(f"dots may overlap: spacing min {lo} - 2 x jitter {jitter} < dot {dot}; "
                        "raise spacing or lower jitter")
    span = 3 * hi + dot + 2 * jitter
    if span > size:
        raise DataError(f"a 4-dot line with spacing {hi}, dot {dot}, jitter {jitter} spans {span} px > "
                        f"image size {size}; lower spacing or raise size")
    if not 0 < contrast[0] <= contrast[1]:
        raise DataError(f"contrast must be (min, max) with 0 < min <= max, got {contrast}")


def dot_patterns(n: int, *, size: int = 32, seed: int = 0, spacing: tuple[int, int] = (5, 7), dot: int = 2,
                 jitter: int = 1, contrast: tuple[float, float] = (0.5, 1.0), noise: float = 0.2,
                 balanced: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images ``(n, 1, size, size)`` float32 and labels ``(n,)`` int64 in ``0..9``.

    ``balanced`` cycles the labels (then shuffles them) so every class has ``n // 10`` or one more.
    """
    spacing = (int(spacing[0]), int(spacing[1]))
    _check(n, size, spacing, dot, jitter, contrast, noise)
    rng = np.random.default_rng(seed)
    k = len(CLASSES)
    labels = rng.permutation(np.arange(n) % k) if balanced else rng.integers(0, k, n)
    cells = np.asarray([PATTERNS[c] for c in CLASSES])  # (10, 4, 2)
    step = rng.integers(spacing[0], spacing[1] + 1, n)  # (n,)
    pos = cells[labels] * step[:, None, None]  # (n, 4, 2) top-left corners relative to the pattern
    pos = pos + rng.integers(-jitter, jitter + 1, pos.shape) if jitter else pos
    pos = pos - pos.min(axis=1, keepdims=True)
    extent = pos.max(axis=1) + dot  # (n, 2)
    offset = (rng.random((n, 2)) * (size - extent + 1)).astype(int)
    pos = pos + offset[:, None, :]
    amp = rng.uniform(contrast[0], contrast[1], n).astype(np.float32)
    img = np.zeros((n, size, size), np.float32)
    idx = np.arange(n)
    for d in range(4):
        for dr in range(dot):
            for dc in range(dot):
                img[idx, pos[:, d, 0] + dr, pos[:, d, 1] + dc] = amp
    if noise:
        img += rng.normal(0.0, noise, img.shape).astype(np.float32)
    return torch.from_numpy(img).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def dot_pattern_splits(n_train: int, n_test: int, seed: int = 0, **kwargs):
    """Disjoint train and test sets drawn from independent streams of one seed (``seed`` and
    ``seed + 1_000_003``): ``((x_train, y_train), (x_test, y_test))``."""
    return dot_patterns(n_train, seed=seed, **kwargs), dot_patterns(n_test, seed=seed + 1_000_003, **kwargs)
