"""Checkpoints and single-query inference: ``Grounder.from_checkpoint(path).ground(features, query)``.

Checkpoints are the library's format (:mod:`reprozoo.runtime.checkpoint`); the official code's
``model-N.pt`` files are read by :func:`reprozoo.gmp.official.load_official_checkpoint`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from reprozoo.data.grounding import Vocabulary, resample_clips
from reprozoo.errors import CheckpointError, DataError
from reprozoo.gmp.metrics import rank_predictions
from reprozoo.gmp.models import MaskedQueryGrounder
from reprozoo.runtime.checkpoint import load_checkpoint, save_checkpoint
from reprozoo.runtime.checks import finite_array, integer


def save_grounder(model: MaskedQueryGrounder, path: str | Path, vocab: Vocabulary, clips: int,
                  vote: str = "loss") -> Path:
    """:func:`reprozoo.runtime.checkpoint.save_checkpoint` with what :class:`Grounder` needs: the
    vocabulary (words and masking weights; the word vectors are the model's ``embeddings``), the
    clip count the model was trained on and the top-1 vote."""
    return save_checkpoint(model, path, words=list(vocab.words), weights=vocab.weights, clips=int(clips), vote=vote)


def load_grounder(path: str | Path) -> tuple[MaskedQueryGrounder, Vocabulary, dict[str, Any]]:
    """The model, its vocabulary and the checkpoint's extra fields (``clips``, ``vote``)."""
    if not Path(path).is_file():
        raise CheckpointError(f"no checkpoint at {path} (train one with `reprozoo run gmp-grounding`; it writes "
                              "trials/<arm>__seed<N>/grounder.safetensors)")
    model, extra = load_checkpoint(path)
    if not isinstance(model, MaskedQueryGrounder) or not {"words", "weights", "clips"} <= set(extra):
        raise CheckpointError(f"{path} is not a grounding checkpoint (no CPL/PPS model with a vocabulary)")
    emb = model.embeddings.numpy()
    vocab = Vocabulary(list(extra["words"]), emb, np.asarray(extra["weights"], np.float32))
    return model, vocab, extra


class Grounder:
    """A trained model + its vocabulary: ground a sentence in one video's (N, D) clip features."""

    def __init__(self, model: MaskedQueryGrounder, vocab: Vocabulary, clips: int, vote: str = "loss",
                 max_words: int = 20):
        self.model, self.vocab, self.clips, self.vote, self.max_words = model.eval(), vocab, clips, vote, max_words

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> Grounder:
        model, vocab, extra = load_grounder(path)
        return cls(model, vocab, extra["clips"], extra.get("vote", "loss"))

    @torch.no_grad()
    def ground(self, features: np.ndarray, query: str, duration: float | None = None, top: int = 5,
               seed: int = 0, name: str = "video") -> dict[str, Any]:
        """Top-1 segment and the ``top`` lowest-loss proposals, in the units of ``duration``
        (default: the number of feature rows)."""
        feats = finite_array(f"{name}: features", features, dtype=np.float32)  # float32 overflow -> inf too
        top = integer("top", top, lo=1)
        dim = self.model.config.frame_dim
        if feats.ndim != 2 or feats.shape[0] == 0:
            raise DataError(f"{name}: features must be a non-empty (N, {dim}) array, got shape {feats.shape}")
        if feats.shape[1] != dim:
            raise DataError(f"{name}: features have dimension {feats.shape[1]}, the model expects {dim}")
        if not np.isfinite(feats).all():
            raise DataError(f"{name}: features contain NaN or infinite values")
        length = float(feats.shape[0]) if duration is None else float(duration)
        if not np.isfinite(length) or length <= 0:
            raise DataError(f"{name}: the video length must be > 0, got {duration}")
        ids = self.vocab.encode_checked(query, self.max_words)
        video = torch.as_tensor(resample_clips(feats, self.clips))[None]
        words = torch.as_tensor(ids)[None]
        batch = {"video": video, "words": words, "lengths": torch.tensor([len(ids)]),
                 "weights": torch.as_tensor(self.vocab.weights)[words], "mask_seed": torch.tensor([seed])}
        out = self.model(batch)
        if not (torch.isfinite(out["segments"]).all() and torch.isfinite(out["loss"]).all()):
            big = float(np.abs(feats).max())
            raise DataError(f"{name}: the model's outputs are not finite for these features (largest |value| "
                            f"{big:.3g}); use features of the kind the model was trained on")
        top1, ranked = rank_predictions(out["segments"], out["loss"], self.vote)
        order = out["loss"][0].argsort()
        props = [(float(s) * length, float(e) * length, float(out["loss"][0, k]))
                 for (s, e), k in zip(ranked[0].tolist(), order.tolist())][:top]
        return {"segment": (float(top1[0, 0]) * length, float(top1[0, 1]) * length), "proposals": props,
                "length": length, "words": [self.vocab.words[i - 1] for i in ids]}
