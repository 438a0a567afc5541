"""Checkpoints and single-query inference: ``Grounder.from_checkpoint(path).ground(features, query)``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reprozoo.data.grounding import Vocabulary, resample_clips
from reprozoo.errors import CheckpointError, DataError
from reprozoo.gmp.metrics import rank_predictions
from reprozoo.gmp.models import CPL, GMP, GrounderConfig, MaskedQueryGrounder
from reprozoo.runtime.checks import finite_array, integer, one_line

FORMAT = "reprozoo.gmp/1"


def save_checkpoint(model: MaskedQueryGrounder, vocab: Vocabulary, path: str | Path, clips: int,
                    vote: str = "loss") -> Path:
    """A self-contained checkpoint: weights (word vectors included), config, vocabulary, clip count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, "kind": "cpl" if isinstance(model, CPL) else "gmp",
             "config": asdict(model.config), "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "words": list(vocab.words), "weights": vocab.weights.tolist(), "clips": int(clips), "vote": vote}
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path) -> tuple[MaskedQueryGrounder, Vocabulary, dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path} (train one with `reprozoo run gmp-grounding`; it writes "
                              "trials/<arm>__seed<N>/grounder.pt)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise CheckpointError(f"{path} is not a readable torch checkpoint: {one_line(err)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a reprozoo.gmp checkpoint (format {FORMAT})")
    # checkpoints written before the official-code options existed ran reprozoo's former variant
    config = GrounderConfig(**{"official": False, **state["config"]})
    cls = CPL if state["kind"] == "cpl" else GMP
    model = cls(config)
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    model.eval()
    emb = state["model"]["embeddings"].numpy()
    vocab = Vocabulary(list(state["words"]), emb, np.asarray(state["weights"], np.float32))
    return model, vocab, state


class Grounder:
    """A trained model + its vocabulary: ground a sentence in one video's (N, D) clip features."""

    def __init__(self, model: MaskedQueryGrounder, vocab: Vocabulary, clips: int, vote: str = "loss",
                 max_words: int = 20):
        self.model, self.vocab, self.clips, self.vote, self.max_words = model.eval(), vocab, clips, vote, max_words

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> Grounder:
        model, vocab, state = load_checkpoint(path)
        return cls(model, vocab, state["clips"], state.get("vote", "loss"))

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
