"""Shared helpers of the parity tests: the golden outputs of the official PPS code (sunoh-kim/pps @ 1e1d176)
in ``tests/fixtures/gmp`` and reprozoo runs on the same weights and inputs (see its README)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import torch
from safetensors.torch import load_file

from reprozoo.gmp.models import GMP
from reprozoo.gmp.official import load_official_checkpoint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gmp"
NAMES = ("charades", "activitynet")
CLIPS = 64
TOL_MASKS = 5e-5  # components, masks, negative masks
TOL = 2e-5  # every other tensor, the losses and the metrics
# the official batched forward: its two bugs reproduced too
BATCHED_OFFICIAL = {"legacy_width_indexing": True, "legacy_eos_cut": True}


@cache
def golden(name: str) -> dict:
    return json.loads((FIXTURES / "golden.json").read_text())[name]


@cache
def tensors(name: str) -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURES / f"{name}_io.safetensors"))


def load(name: str, **overrides) -> GMP:
    """The official-layout weights through the public loader, in float64 (the golden run's precision)."""
    model = load_official_checkpoint(FIXTURES / f"{name}_weights.safetensors", golden(name)["config"], clips=CLIPS,
                                     embeddings=tensors(name)["embeddings"], **overrides)
    return model.double()


def batch(name: str, samples=None) -> dict:
    """The golden inputs as a reprozoo batch (``word_mask`` = the official run's masked words);
    ``samples``: a subset, each run padded to its own longest sentence as the official collate does."""
    t = tensors(name)
    words, lengths = t["words_id"], t["words_len"]
    hidden = torch.zeros_like(words, dtype=torch.bool)
    for b, positions in enumerate(t["masked_positions"].tolist()):
        for p in positions:
            if p > 0:
                hidden[b, p - 1] = True  # official position p = word p (position 0 is the start token)
    out = {"video": t["video"].double(), "words": words, "lengths": lengths, "weights": t["weights"].double(),
           "mask_seed": torch.zeros(len(lengths), dtype=torch.long), "word_mask": hidden, "gt": t["gt"].double()}
    if samples is not None:
        out = {k: v[samples] for k, v in out.items()}
        n = int(out["lengths"].max())
        out["words"], out["weights"], out["word_mask"] = out["words"][:, :n], out["weights"][:, :n], out["word_mask"][:, :n]
    return out


def importance_table(out: dict, k_max: int) -> torch.Tensor:
    """reprozoo's per-mixture importances in the official (B, K, K) layout (row k-1 = mixture k)."""
    b = out["masks"].shape[0]
    table = torch.zeros(b, k_max, k_max, dtype=torch.float64)
    for k, a in enumerate(out["importance"]):
        table[:, k, :k + 1] = a
    return table


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())
