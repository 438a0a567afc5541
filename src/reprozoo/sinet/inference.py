"""Checkpoints and single-image inference for SINet (used by ``reprozoo segment``/``export``).

A checkpoint is a ``torch.save`` dict loadable with ``weights_only=True``::

    {"format": "reprozoo.sinet/1", "model": state_dict, "model_kwargs": {...},
     "mean": [r, g, b], "std": [r, g, b], "image_size": 224, "synthetic": True}

``mean``/``std`` are on the [0, 1] RGB scale; ``synthetic`` says the model saw only generated
portraits (``reprozoo segment`` warns about the domain gap); an optional ``fit`` is ``"letterbox"``
(default) or ``"stretch"``. :class:`Segmenter` *letterboxes* any input: it resizes the image so its
longer side is ``image_size`` (aspect ratio kept), pads the rest with gray 0.5 (the training
augmentation's padding colour), runs the model, cuts the padding off the foreground probability and
resizes it back to the input size. ``fit="stretch"`` resizes to ``image_size`` squared instead, as
the official code does; :meth:`Segmenter.pretrained` (the bundled official weights) uses it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import CheckpointError, DataError, ReproZooError
from reprozoo.runtime.checks import finite, integer, one_line
from reprozoo.sinet.models import SINet

FORMAT = "reprozoo.sinet/1"
FITS = ("letterbox", "stretch")


def save_checkpoint(path: str | Path, model: SINet, *, mean, std, image_size: int,
                    model_kwargs: dict[str, Any] | None = None, synthetic: bool | None = None) -> Path:
    """Write a checkpoint atomically; ``synthetic=True`` records that the training data was
    generated (``None``: unknown)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = dict(model_kwargs or {})
    kwargs.setdefault("num_classes", model.num_classes)
    kwargs.setdefault("decoder", model.decoder)
    state = {"format": FORMAT, "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "model_kwargs": kwargs, "mean": [float(v) for v in mean], "std": [float(v) for v in std],
             "image_size": int(image_size)}
    if synthetic is not None:
        state["synthetic"] = bool(synthetic)
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
        raise CheckpointError(f"{path} is not a readable checkpoint ({one_line(err)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a reprozoo SINet checkpoint (expected format {FORMAT})")
    missing = [k for k in ("model", "model_kwargs", "mean", "std", "image_size") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: the checkpoint lacks {', '.join(missing)}; re-save it with save_checkpoint")
    _check_preprocessing(path, ckpt)
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


def _check_preprocessing(path: Path, ckpt: dict[str, Any]) -> None:
    """mean/std: three finite numbers, std > 0; image_size: an integer >= 32."""
    for key in ("mean", "std"):
        values = ckpt[key]
        ok = isinstance(values, (list, tuple)) and len(values) == 3
        ok = ok and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
        if not ok:
            raise CheckpointError(f"{path}: '{key}' must be three finite numbers (R, G, B), got {values!r}")
    if min(ckpt["std"]) <= 0:
        raise CheckpointError(f"{path}: 'std' must be > 0 for every channel, got {ckpt['std']!r} "
                              "(dividing by it would give a garbage mask)")
    size = ckpt["image_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 32:
        raise CheckpointError(f"{path}: 'image_size' must be an integer >= 32, got {size!r}")


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


def compiled(net: nn.Module):
    """``torch.compile`` for inference with inductor's ``freezing`` (weights become constants, so BN
    and activations fold into the generated kernels). The result must be called under ``no_grad`` /
    ``inference_mode``; it compiles on the first call of each input shape."""
    import torch._inductor.config as inductor_config

    compiled_net = torch.compile(net, dynamic=False)

    def run(x: torch.Tensor) -> torch.Tensor:
        with inductor_config.patch(freezing=True):
            return compiled_net(x)

    return run


class Segmenter:
    """Foreground probability / mask for images of any size (letterboxed at the model's size, or
    stretched to it with ``fit="stretch"``, the official preprocessing of :meth:`pretrained`).

    >>> seg = Segmenter.pretrained()                       # the official EG1800 weights, bundled

    >>> seg = Segmenter.from_checkpoint("sinet.pt")        # doctest: +SKIP
    >>> prob = seg.probability(pil_image)                  # (H, W) float in [0, 1]  # doctest: +SKIP

    Inputs: see :func:`as_batch` (PIL, numpy HxWx3 uint8/float, CHW/BCHW tensors; uint8 is 0-255,
    float is 0-1). A (B, 3, H, W) batch gives (B, H, W); a single image gives (H, W).
    ``deploy=True`` (default) runs an eval copy with BatchNorm folded and the channel shuffles absorbed
    (:func:`reprozoo.sinet.export.deploy_model` with only its eager-friendly steps; equal outputs to
    ~1e-7); ``deploy=False`` runs the model as given. The other deployment rewrites (PReLU as
    convolution pairs, dense grouped convs, ...) pay off only in ONNX Runtime: in eager PyTorch they made
    SINet about 1.4x slower (30 vs 21 ms at 224x224 on 2 threads), so ``reprozoo export sinet`` applies
    them and this class does not.

    ``compile=True`` runs the network through ``torch.compile`` with inductor's weight freezing
    (constants folded, PReLU and BN fused into the generated kernels; same outputs to ~1e-10). On 2 CPU
    threads at 224x224 it took SINet from 15-21 to about 8 ms per image, but the first call of each
    input shape compiles for 20-50 s and needs a C++ compiler, so it is off by default; ONNX Runtime
    (``reprozoo export sinet``) is faster still.
    """

    def __init__(self, model: SINet, mean, std, image_size: int = 224, synthetic: bool | None = None,
                 deploy: bool = True, compile: bool = False, fit: str = "letterbox"):
        if fit not in FITS:
            raise DataError(f"fit must be one of {', '.join(FITS)}, got '{fit}'")
        self.fit = fit
        if deploy:  # same function, fewer operators: BN folded, no channel shuffles
            from reprozoo.sinet.export import deploy_model

            model = deploy_model(model, max_prelu=False, conv_prelu=False, dense_groups=False, conv_se=False,
                                 branch_add=False, narrow=0)[0]
        self.net = Normalized(model, mean, std).eval()
        if compile:
            self.net = compiled(self.net)
        self.image_size = image_size
        self.synthetic = synthetic

    @classmethod
    def from_checkpoint(cls, path: str | Path, compile: bool = False) -> Segmenter:
        model, ckpt = load_checkpoint(path)
        return cls(model, ckpt["mean"], ckpt["std"], ckpt["image_size"], ckpt.get("synthetic"), compile=compile,
                   fit=ckpt.get("fit", "letterbox"))

    @classmethod
    def pretrained(cls, compile: bool = False, deploy: bool = True) -> Segmenter:
        """The bundled official SINet (EG1800 portraits) with its own preprocessing: each image is
        resized to 224x224 without keeping the aspect ratio, as the official code does."""
        from reprozoo.sinet.official import IMAGE_SIZE, OFFICIAL_MEAN, OFFICIAL_STD, load_pretrained

        return cls(load_pretrained(), OFFICIAL_MEAN, OFFICIAL_STD, IMAGE_SIZE, synthetic=False, deploy=deploy,
                   compile=compile, fit="stretch")

    @torch.no_grad()
    def probability(self, image: Any) -> torch.Tensor:
        """Foreground probability at the input's size: (H, W), or (B, H, W) for a batch."""
        x, batched = as_batch(image)
        h, w = x.shape[-2:]
        if self.fit == "stretch":
            boxed = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                                  align_corners=False, antialias=True)
            top, left, nh, nw = 0, 0, self.image_size, self.image_size
        else:
            boxed, (top, left, nh, nw) = letterbox(x, self.image_size)
        logits = self.net(boxed)
        prob = torch.sigmoid(logits)[:, 0] if logits.shape[1] == 1 else torch.softmax(logits, 1)[:, 1]
        prob = prob[:, None, top:top + nh, left:left + nw]
        prob = F.interpolate(prob, size=(h, w), mode="bilinear", align_corners=False)[:, 0].clamp(0, 1)
        return prob if batched else prob[0]

    def mask(self, image: Any, threshold: float = 0.5) -> torch.Tensor:
        return (self.probability(image) > threshold).to(torch.uint8)
