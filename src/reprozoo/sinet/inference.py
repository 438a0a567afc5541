"""Single-image inference for SINet (used by ``reprozoo segment`` and ``reprozoo export``).

:class:`Segmenter` *letterboxes* any input: it resizes the image so its longer side is
``image_size`` (aspect ratio kept), pads the rest with gray 0.5 (the training augmentation's padding
colour), runs the model, cuts the padding off the foreground probability and resizes it back to the
input size. ``fit="stretch"`` resizes to ``image_size`` squared instead, as the official code does;
:meth:`Segmenter.pretrained` (the bundled official weights) uses it. Checkpoints (the model with its
normalisation, input size, fit and threshold) are written and read by :mod:`reprozoo.sinet.checkpoint`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import DataError
from reprozoo.sinet.checkpoint import FITS, load_segmenter, save_checkpoint, save_segmenter
from reprozoo.sinet.deploy import deploy_model
from reprozoo.sinet.network import SINet
from reprozoo.sinet.official import IMAGE_SIZE, OFFICIAL_MEAN, OFFICIAL_STD, load_pretrained
from reprozoo.sinet.preprocess import Normalized, as_batch, letterbox

load_checkpoint = load_segmenter  # the former name: (model, info) of a segmenter checkpoint
__all__ = ["Normalized", "Segmenter", "as_batch", "compiled", "letterbox", "load_checkpoint", "load_segmenter",
           "save_checkpoint", "save_segmenter"]


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

    >>> seg = Segmenter.from_checkpoint("sinet.safetensors")  # doctest: +SKIP
    >>> prob = seg.probability(pil_image)                  # (H, W) float in [0, 1]  # doctest: +SKIP

    Inputs: see :func:`as_batch` (PIL, numpy HxWx3 uint8/float, CHW/BCHW tensors; uint8 is 0-255,
    float is 0-1). A (B, 3, H, W) batch gives (B, H, W); a single image gives (H, W).
    ``deploy=True`` (default) runs an eval copy with BatchNorm folded and the channel shuffles absorbed
    (:func:`reprozoo.sinet.deploy.deploy_model` with only its eager-friendly steps; equal outputs to
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
                 deploy: bool = True, compile: bool = False, fit: str = "letterbox", threshold: float = 0.5):
        if fit not in FITS:
            raise DataError(f"fit must be one of {', '.join(FITS)}, got '{fit}'")
        if not 0.0 < threshold < 1.0:
            raise DataError(f"threshold must be in (0, 1), got {threshold}")
        self.model = model  # as given (what save() writes)
        self.mean, self.std = [float(v) for v in mean], [float(v) for v in std]
        self.fit, self.threshold = fit, float(threshold)
        if deploy:  # same function, fewer operators: BN folded, no channel shuffles
            model = deploy_model(model, max_prelu=False, conv_prelu=False, dense_groups=False, conv_se=False,
                                 branch_add=False, narrow=0)[0]
        self.net = Normalized(model, mean, std).eval()
        if compile:
            self.net = compiled(self.net)
        self.image_size = image_size
        self.synthetic = synthetic

    @classmethod
    def from_checkpoint(cls, path: str | Path, compile: bool = False, deploy: bool = True) -> Segmenter:
        """The segmenter a checkpoint describes (:func:`reprozoo.sinet.checkpoint.load_segmenter`: the
        library format, or the former ``sinet.pt``)."""
        model, info = load_segmenter(path)
        return cls(model, info["mean"], info["std"], info["image_size"], info["synthetic"], deploy=deploy,
                   compile=compile, fit=info["fit"], threshold=info["threshold"])

    @classmethod
    def pretrained(cls, compile: bool = False, deploy: bool = True) -> Segmenter:
        """The bundled official SINet (EG1800 portraits) with its own preprocessing: each image is
        resized to 224x224 without keeping the aspect ratio, as the official code does."""
        return cls(load_pretrained(), OFFICIAL_MEAN, OFFICIAL_STD, IMAGE_SIZE, synthetic=False, deploy=deploy,
                   compile=compile, fit="stretch")

    def save(self, path: str | Path) -> Path:
        """Write the model and this segmenter's settings as a ``*.safetensors`` checkpoint
        (:func:`reprozoo.sinet.checkpoint.save_segmenter`), readable by :meth:`from_checkpoint`."""
        return save_segmenter(self.model, path, mean=self.mean, std=self.std, image_size=self.image_size,
                              fit=self.fit, threshold=self.threshold, synthetic=self.synthetic)

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

    def mask(self, image: Any, threshold: float | None = None) -> torch.Tensor:
        """1 where the foreground probability exceeds ``threshold`` (default: the segmenter's), else 0."""
        return (self.probability(image) > (self.threshold if threshold is None else threshold)).to(torch.uint8)
