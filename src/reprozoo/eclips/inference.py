"""Checkpoints and video-wise scoring with a trained model (the ``antispoof`` command uses this).

A checkpoint is the library's format (:mod:`reprozoo.runtime.checkpoint`): the registered model
(``eclips_cnn_small`` / ``eclips_cnn_ensemble``) with its kwargs and weights, and as extra fields
the input size, the ImageNet normalisation, the *validation* EER threshold the decision uses, the
label polarity (live = 1) and the MC-dropout sample count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from reprozoo.eclips.ensemble import Ensemble
from reprozoo.eclips.training import IMAGENET_MEAN, IMAGENET_STD, normalize
from reprozoo.errors import CheckpointError, DataError
from reprozoo.runtime.checkpoint import load_checkpoint, save_checkpoint


def cnn_spec(model: torch.nn.Module) -> tuple[str, dict[str, Any]]:
    """The registered name and kwargs of a :func:`base_learner` or an :class:`Ensemble` of them."""
    first = model.members[0] if isinstance(model, Ensemble) else model
    try:
        conv, head = first.backbone.model.features[0], first.head
    except AttributeError:
        raise CheckpointError("only SmallCNN base learners (base_learner) and their ensembles are saved as "
                              "antispoof checkpoints") from None
    kw = {"width": conv.out_channels, "embed_dim": head.embed.out_features, "drop_rate": head.drop.p,
          "feature_norm": bool(head.feature_norm), "in_chans": conv.in_channels}
    if isinstance(model, Ensemble):
        return "eclips_cnn_ensemble", {"k": len(model.members), **kw, "fusion": model.fusion, "tau": model.tau}
    return "eclips_cnn_small", kw


def save_antispoofer(model: torch.nn.Module, path: str | Path, cfg: Any, *, threshold: float, arm: str) -> Path:
    """:func:`reprozoo.runtime.checkpoint.save_checkpoint` with what :class:`AntiSpoofer` needs
    (``cfg``: an ECLIPSConfig-like object giving the input size and the MC-dropout settings)."""
    name, kwargs = cnn_spec(model)
    return save_checkpoint(model, path, model_name=name, model_kwargs=kwargs, arm=arm, image_size=int(cfg.size),
                           mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD), threshold=float(threshold),
                           threshold_source="val_eer", live_label=1, mc_samples=int(cfg.test_mc_samples),
                           mc_test=bool(getattr(cfg, "mc_test", False)))


def load_antispoofer(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model (eval mode) and the checkpoint's extra fields (threshold, normalisation, ...)."""
    if not Path(path).is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `reprozoo run eclips-fas` "
                              "(it writes eclips.safetensors into the run folder)")
    model, meta = load_checkpoint(path)
    missing = [k for k in ("image_size", "mean", "std", "threshold", "mc_samples") if k not in meta]
    if missing:
        raise CheckpointError(f"{path}: not an antispoof checkpoint (it lacks {', '.join(missing)})")
    return model, meta


@dataclass
class VideoVerdict:
    video: str
    n_frames: int
    live_probability: float
    uncertainty: float
    frame_std: float
    decision: str
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class AntiSpoofer:
    """Scores videos (uint8 frame stacks) with a checkpoint: mean frame live probability (the
    deterministic fused one unless the checkpoint was trained with ``mc_test``), the mean
    MC-dropout x member uncertainty, the frame-level spread (std of frame probabilities) and the decision
    ``live`` if the video score >= the stored validation threshold."""

    def __init__(self, model: torch.nn.Module, meta: dict[str, Any], seed: int = 0):
        self.model, self.meta, self.seed = model, meta, seed

    @classmethod
    def from_checkpoint(cls, path: str | Path, seed: int = 0) -> AntiSpoofer:
        return cls(*load_antispoofer(path), seed=seed)

    def frame_scores(self, frames: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        from reprozoo.eclips.uncertainty import predict

        if not isinstance(frames, torch.Tensor) or frames.dtype != torch.uint8 or frames.dim() != 4 \
                or frames.shape[1] != 3 or frames.shape[0] == 0:
            raise DataError(f"frames must be a (n_frames >= 1, 3, H, W) uint8 tensor (0-255), got "
                            f"{getattr(frames, 'dtype', type(frames).__name__)} of shape {tuple(getattr(frames, 'shape', ()))}")
        s = int(self.meta["image_size"])
        x = frames.float() / 255.0
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
        x = normalize(x.clamp(0, 1), self.meta["mean"], self.meta["std"])
        mc = predict(self.model, x, mc_samples=int(self.meta["mc_samples"]),
                     generator=torch.Generator().manual_seed(self.seed))
        prob = mc["prob"] if self.meta.get("mc_test") else predict(self.model, x)["prob"]
        return prob.double().numpy(), mc["uncertainty"].double().numpy()

    def score_video(self, name: str, frames: torch.Tensor) -> VideoVerdict:
        p, u = self.frame_scores(frames)
        t = float(self.meta["threshold"])
        score = float(p.mean())
        return VideoVerdict(name, len(p), score, float(u.mean()), float(p.std()),
                            "live" if score >= t else "spoof", t)
