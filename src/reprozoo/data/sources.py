"""Bundled, offline sources: scikit-learn digits and scikit-image's images (LFW crops, textures).

Nothing here downloads: scikit-learn ships digits, scikit-image ships ``lfw_subset`` and the
texture images in its wheel.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from reprozoo.errors import DataError
from reprozoo.runtime.extras import require

# scikit-image data functions that return texture-like grayscale/RGB images bundled in the wheel
_TEXTURES = ("brick", "grass", "gravel", "camera", "coffee", "rocket", "chelsea",
             "astronaut", "coins", "moon", "page", "text")


def load_digits_tensors(size: int = 8, binarize: bool = False, normalize: bool = True,
                        channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8x8 digits as ``(N, C, size, size)`` float tensors and int64 labels.

    ``size > 8`` upsamples bilinearly; ``binarize`` thresholds at half intensity (values 0/1);
    ``normalize`` scales pixels to [0, 1] (the raw data is 0..16).
    """
    from sklearn.datasets import load_digits

    if size < 1:
        raise DataError(f"size must be >= 1, got {size}")
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1)
    if normalize or binarize:
        x = x / 16.0
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if binarize:
        x = (x > 0.5).float()
    if channels != 1:
        x = x.expand(-1, channels, -1, -1).contiguous()
    return x, torch.tensor(data.target, dtype=torch.long)


@lru_cache(maxsize=1)
def _lfw() -> np.ndarray:
    data = require("skimage.data", what="the LFW face crops")
    return np.asarray(data.lfw_subset(), dtype=np.float32)


def lfw_faces(size: int | None = None) -> torch.Tensor:
    """scikit-image's 200 grayscale 25x25 LFW crops (first 100 faces, last 100 non-faces) in [0,1]
    as ``(200, 1, H, W)``; ``size`` resizes them."""
    x = torch.from_numpy(_lfw().copy()).unsqueeze(1)
    if x.max() > 1.0:
        x = x / 255.0
    if size is not None:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.clamp(0, 1)


def texture_names() -> list[str]:
    return list(_TEXTURES)


def textures(names: list[str] | None = None, rgb: bool = True) -> dict[str, torch.Tensor]:
    """Bundled scikit-image pictures as float tensors ``(C, H, W)`` in [0, 1]."""
    data = require("skimage.data", what="the bundled pictures")
    out = {}
    for name in names or list(_TEXTURES):
        if name not in _TEXTURES:
            raise DataError(f"unknown texture '{name}'; choose from {', '.join(_TEXTURES)}")
        img = np.asarray(getattr(data, name)(), dtype=np.float32)
        if img.max() > 1.0:
            img = img / 255.0
        if img.ndim == 2:
            img = img[..., None]
        img = img[..., :3]
        if rgb and img.shape[-1] == 1:
            img = np.repeat(img, 3, axis=-1)
        out[name] = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    return out
