"""Mirror digits: a 20-class, partly inseparable variant of the noisy shifted digits.

Every source digit of :mod:`reprozoo.data.noisy_digits` appears twice per copy: as drawn (class
``d``) and mirrored left-right (class ``d + 10``). Telling a digit from its mirror image takes its
shape's orientation, and for the nearly symmetric 0, 1 and 8 the two classes overlap (the data are
less separable than the 10-class set on purpose). The mirror is taken after the distortion, so both
versions carry the same offset magnitude, contrast and noise statistics. Generated from scikit-learn's
bundled digits; nothing is downloaded.

:func:`epoch_draw` is the online-augmentation variant: every epoch re-draws the offsets, contrasts and
noise of the same source digits from its own stream (:func:`epoch_seed`), so a network never sees the
same train image twice and cannot fit the set by memorising images.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from reprozoo.errors import DataError

N_CLASSES = 20


def mirror_digits(indices, *, copies: int = 1, size: int = 16, digit_size: int = 12, shift: int = 2,
                  noise: float = 0.2, contrast: tuple[float, float] = (0.4, 1.0), seed: int = 0,
                  rotate: float = 0.0, scale: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(2 n, 1, size, size)`` and labels in ``[0, 20)``: the ``n = len(indices) * copies``
    noisy digits followed by their mirror images (labels + 10). ``rotate`` (degrees) and ``scale``
    (relative) > 0 also turn each shifted digit by an angle in ``[-rotate, rotate]`` and resize it by
    a factor in ``[1 - scale, 1 + scale]`` about the canvas centre, before the noise is added."""
    from reprozoo.data.noisy_digits import noisy_digits

    kw = dict(copies=copies, size=size, digit_size=digit_size, shift=shift, contrast=contrast, seed=seed)
    if not (rotate or scale):
        x, y = noisy_digits(indices, noise=noise, **kw)
    else:
        if not (0 <= rotate <= 180 and 0 <= scale < 0.5):
            raise DataError(f"rotate must be in [0, 180] degrees and scale in [0, 0.5), got {rotate}, {scale}")
        x, y = noisy_digits(indices, noise=0.0, **kw)
        rng = np.random.default_rng([int(seed), 0x7761])
        x = _warp(x, rng.uniform(-rotate, rotate, len(x)), rng.uniform(1 - scale, 1 + scale, len(x)))
        if noise:
            x = x + torch.from_numpy(rng.normal(0.0, noise, tuple(x.shape)).astype(np.float32))
    return torch.cat([x, x.flip(-1)]), torch.cat([y, y + 10])


def _warp(x: torch.Tensor, degrees: np.ndarray, factors: np.ndarray) -> torch.Tensor:
    """Rotate image ``i`` by ``degrees[i]`` and enlarge it by ``factors[i]`` about the centre (bilinear, zeros outside)."""
    a = torch.from_numpy(np.deg2rad(degrees)).float()
    inv = 1.0 / torch.from_numpy(factors).float()
    cos, sin, zero = torch.cos(a) * inv, torch.sin(a) * inv, torch.zeros(len(x))
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the fresh draw of ``epoch``: one independent stream per ``(seed, epoch)``."""
    return int(np.random.SeedSequence([int(seed), int(epoch), 0x6D6972]).generate_state(1)[0])


def epoch_draw(indices, epoch: int, *, seed: int = 0, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`mirror_digits` of ``indices`` with the distortions of ``epoch`` (reproducible from
    ``seed`` and ``epoch``; other epochs draw other offsets, contrasts and noise)."""
    return mirror_digits(indices, seed=epoch_seed(seed, epoch), **kwargs)
