"""Preprocessing shared by SINet's inference paths: :class:`Normalized` (the normalisation as a module,
which the ONNX export includes), :func:`as_batch` (any supported image as a float RGB batch in
[0, 1]) and :func:`letterbox` (resize keeping the aspect ratio, pad to a square).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import DataError
from reprozoo.runtime.checks import finite, integer


class Normalized(nn.Module):
    """``model((x - mean) / std)`` for RGB input in [0, 1] (what the ONNX export wraps)."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def as_batch(image: Any) -> tuple[torch.Tensor, bool]:
    """Any supported image -> (float (B, 3, H, W) RGB in [0, 1], whether the input was a batch).

    Accepted, with their value ranges:

    * ``PIL.Image.Image`` in any mode (converted to RGB; alpha composited over white);
    * numpy arrays ``(H, W, 3)`` (or ``(H, W)`` grayscale): uint8 in [0, 255], or float in [0, 1];
    * torch tensors ``(3, H, W)`` or ``(B, 3, H, W)``: uint8 in [0, 255], or float in [0, 1]
      (a float tensor is *not* divided by 255 again; float values above 1 are refused).
    """
    batched = False
    if hasattr(image, "convert") and hasattr(image, "size") and not isinstance(image, (np.ndarray, torch.Tensor)):
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            from PIL import Image

            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise DataError(f"a numpy image must be (H, W, 3) or (H, W), got shape {image.shape}")
        image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    if not isinstance(image, torch.Tensor):
        raise DataError(f"unsupported image type {type(image).__name__}: pass a PIL image, a numpy (H, W, 3) "
                        "array or a (3, H, W) / (B, 3, H, W) tensor")
    if image.ndim == 4:
        batched = True
    elif image.ndim == 3:
        image = image[None]
    else:
        raise DataError(f"a tensor image must be (3, H, W) or (B, 3, H, W), got shape {tuple(image.shape)}")
    if image.shape[1] != 3 or image.shape[0] == 0 or min(image.shape[-2:]) < 1:
        raise DataError(f"expected 3 RGB channels and a non-empty image, got shape {tuple(image.shape)}")
    if image.dtype == torch.uint8:
        return image.float() / 255, batched
    if not image.is_floating_point():
        raise DataError(f"integer images must be uint8 (0-255), got {image.dtype}")
    x = image.float()
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise DataError("a float image must hold finite values in [0, 1] (got "
                        f"{float(x.min()):.3g}..{float(x.max()):.3g}); pass uint8 for 0-255 data or divide by 255")
    return x, batched


def letterbox(x: torch.Tensor, size: int, fill: float = 0.5) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """(B, 3, H, W) in [0, 1] -> (B, 3, size, size): scaled so the longer side is ``size`` (aspect
    ratio kept), centred, padded with ``fill``. Returns the box (top, left, height, width)."""
    size, fill = integer("size", size, lo=1), finite("fill", fill, lo=0.0, hi=1.0)
    h, w = x.shape[-2:]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    top, left = (size - nh) // 2, (size - nw) // 2
    out = torch.full((x.shape[0], 3, size, size), fill, dtype=x.dtype)
    out[:, :, top:top + nh, left:left + nw] = resized
    return out, (top, left, nh, nw)
