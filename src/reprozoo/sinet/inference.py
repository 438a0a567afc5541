"""Checkpoints and single-image inference for SINet (used by ``reprozoo segment``/``export``).

A checkpoint is a ``torch.save`` dict loadable with ``weights_only=True``::

    {"format": "reprozoo.sinet/1", "model": state_dict, "model_kwargs": {...},
     "mean": [r, g, b], "std": [r, g, b], "image_size": 224}

``mean``/``std`` are on the [0, 1] RGB scale. :class:`Segmenter` resizes any input to
``image_size``, runs the model and resizes the foreground probability back to the input size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import CheckpointError, ReproZooError
from reprozoo.sinet.models import SINet

FORMAT = "reprozoo.sinet/1"


def save_checkpoint(path: str | Path, model: SINet, *, mean, std, image_size: int,
                    model_kwargs: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = dict(model_kwargs or {})
    kwargs.setdefault("num_classes", model.num_classes)
    kwargs.setdefault("decoder", model.decoder)
    state = {"format": FORMAT, "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "model_kwargs": kwargs, "mean": [float(v) for v in mean], "std": [float(v) for v in std],
             "image_size": int(image_size)}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path) -> tuple[SINet, dict[str, Any]]:
    """Rebuild the model of a checkpoint; returns ``(model in eval mode, checkpoint dict)``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; train one with `reprozoo run sinet-portrait` "
                              "(it writes sinet.pt) or pass the right --checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a reprozoo SINet checkpoint (expected format {FORMAT})")
    missing = [k for k in ("model", "model_kwargs", "mean", "std", "image_size") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: the checkpoint lacks {', '.join(missing)}; re-save it with save_checkpoint")
    try:
        model = SINet(**ckpt["model_kwargs"])
    except (TypeError, ReproZooError) as err:
        raise CheckpointError(f"{path}: cannot rebuild the model from model_kwargs "
                              f"{ckpt['model_kwargs']!r} ({err})") from None
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit the SINet it describes ({first})") from None
    return model.eval(), ckpt


class Normalized(nn.Module):
    """``model((x - mean) / std)`` for RGB input in [0, 1] (what the ONNX export wraps)."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


class Segmenter:
    """Foreground probability / mask for images of any size.

    >>> seg = Segmenter.from_checkpoint("sinet.pt")        # doctest: +SKIP
    >>> prob = seg.probability(image_uint8_3xHxW)          # (H, W) float in [0, 1]  # doctest: +SKIP
    """

    def __init__(self, model: SINet, mean, std, image_size: int = 224):
        self.net = Normalized(model, mean, std).eval()
        self.image_size = image_size

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> Segmenter:
        model, ckpt = load_checkpoint(path)
        return cls(model, ckpt["mean"], ckpt["std"], ckpt["image_size"])

    @torch.no_grad()
    def probability(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 RGB (3, H, W) -> foreground probability (H, W), resized back to H x W."""
        h, w = image.shape[-2:]
        x = image[None].float() / 255
        x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                          align_corners=False, antialias=True)
        logits = self.net(x)
        prob = torch.sigmoid(logits)[:, 0] if logits.shape[1] == 1 else torch.softmax(logits, 1)[:, 1]
        return F.interpolate(prob[:, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]

    def mask(self, image: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
        return (self.probability(image) > threshold).to(torch.uint8)
