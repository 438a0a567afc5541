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

N_CLASSES = 20


def mirror_digits(indices, *, copies: int = 1, size: int = 16, digit_size: int = 12, shift: int = 2,
                  noise: float = 0.2, contrast: tuple[float, float] = (0.4, 1.0),
                  seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(2 n, 1, size, size)`` and labels in ``[0, 20)``: the ``n = len(indices) * copies``
    noisy digits followed by their mirror images (labels + 10)."""
    from reprozoo.data.noisy_digits import noisy_digits

    x, y = noisy_digits(indices, copies=copies, size=size, digit_size=digit_size, shift=shift, noise=noise,
                        contrast=contrast, seed=seed)
    return torch.cat([x, x.flip(-1)]), torch.cat([y, y + 10])


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the fresh draw of ``epoch``: one independent stream per ``(seed, epoch)``."""
    return int(np.random.SeedSequence([int(seed), int(epoch), 0x6D6972]).generate_state(1)[0])


def epoch_draw(indices, epoch: int, *, seed: int = 0, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`mirror_digits` of ``indices`` with the distortions of ``epoch`` (reproducible from
    ``seed`` and ``epoch``; other epochs draw other offsets, contrasts and noise)."""
    return mirror_digits(indices, seed=epoch_seed(seed, epoch), **kwargs)
