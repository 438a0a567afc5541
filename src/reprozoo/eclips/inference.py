"""Checkpoints and video-wise scoring with a trained model (the ``antispoof`` command uses this).

A checkpoint is a plain dict loadable with ``torch.load(..., weights_only=True)``: the architecture
(``arch``), ``state_dict``, the input size, the ImageNet normalisation, the *validation* EER
threshold the decision uses, the label polarity (live = 1) and the MC-dropout sample count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from reprozoo.eclips.models import Ensemble, base_learner
from reprozoo.eclips.training import IMAGENET_MEAN, IMAGENET_STD, normalize
from reprozoo.errors import CheckpointError, DataError
from reprozoo.runtime.checks import one_line

FORMAT = "reprozoo.eclips/1"


def save_checkpoint(path: str | Path, model: torch.nn.Module, cfg: Any, *, threshold: float, arm: str) -> Path:
    """Write ``model`` with what inference needs (``cfg``: an ECLIPSConfig-like object)."""
    path = Path(path)
    arch = {"kind": "ensemble" if isinstance(model, Ensemble) else "single", "width": cfg.width,
            "embed_dim": cfg.embed_dim, "dropout": cfg.dropout, "feature_norm": cfg.feature_norm,
            "k": model.k if isinstance(model, Ensemble) else 1,
            "fusion": model.fusion if isinstance(model, Ensemble) else "none",
            "tau": model.tau if isinstance(model, Ensemble) else 1.0}
    blob = {"format": FORMAT, "arch": arch, "arm": arm, "state_dict": model.state_dict(), "image_size": cfg.size,
            "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "threshold": float(threshold),
            "threshold_source": "val_eer", "live_label": 1,
            "mc_samples": int(cfg.test_mc_samples), "mc_test": bool(getattr(cfg, "mc_test", False))}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `reprozoo run eclips-fas` "
                              "(it writes eclips.pt into the run folder)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise CheckpointError(f"cannot read checkpoint {path}: {one_line(err)}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an ECLIPS checkpoint (format {FORMAT!r} expected)")
    try:
        a = blob["arch"]
        members = [base_learner(a["width"], a["embed_dim"], a["dropout"], a["feature_norm"]) for _ in range(a["k"])]
        model = Ensemble(members, fusion=a["fusion"], tau=a["tau"]) if a["kind"] == "ensemble" else members[0]
        missing, unexpected = model.load_state_dict(blob["state_dict"], strict=False)
    except KeyError as err:
        raise CheckpointError(f"{path}: the checkpoint lacks {err}; re-save it with save_checkpoint") from None
    except (TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: cannot rebuild the model it describes ({one_line(err)})") from None
    if missing or unexpected:
        raise CheckpointError(f"{path}: state dict does not match its architecture (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]})")
    return model.eval(), blob


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
        return cls(*load_checkpoint(path), seed=seed)

    def frame_scores(self, frames: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        from reprozoo.eclips.models import predict

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
