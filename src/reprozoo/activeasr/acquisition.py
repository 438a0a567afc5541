"""Acquisition functions over CTC outputs (higher score = more informative) and budgeted top-b selection.

- ``random``: i.i.d. uniform scores (the baseline);
- ``least_confidence``: ``-(1/|y|) log p(y|x)`` with ``y`` the greedy (best-path) transcript and
  ``p`` its best-path probability, divided by the transcript length (``norm="label"``, the paper's
  length normalisation, so long utterances are not favoured automatically) or by the number of
  output frames (``norm="frames"``);
- ``frame_entropy``: mean over output frames of the entropy of the frame posterior;
- ``mc_dropout``: ``n_samples`` decodes with dropout on (BatchNorm untouched), score = mean pairwise
  CER between the hypotheses.

:func:`select_top` breaks ties with a seeded random key and respects a budget in utterances or in
audio seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import torch

from reprozoo.activeasr.metrics import utterance_cer
from reprozoo.activeasr.text import ctc_collapse, decode_ids
from reprozoo.errors import ConfigError, DataError
from reprozoo.runtime.checks import finite, finite_array, finite_tensor

ACQUISITIONS = ("random", "least_confidence", "frame_entropy", "mc_dropout")


def _valid(log_probs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    finite_tensor("log_probs", log_probs)
    if log_probs.dim() != 3 or lengths.shape != (log_probs.shape[1],):
        raise DataError(f"log_probs must be (time, batch, vocabulary) with one length per utterance, got "
                        f"{tuple(log_probs.shape)} and lengths {tuple(lengths.shape)}")
    if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > log_probs.shape[0]):
        raise DataError(f"lengths must be in 0..{log_probs.shape[0]} (the frames of log_probs), got {lengths.tolist()[:8]}")
    return (torch.arange(log_probs.shape[0])[:, None] < lengths[None, :]).to(log_probs.dtype)  # (T, B)


def least_confidence(log_probs: torch.Tensor, lengths: torch.Tensor, norm: str = "label") -> torch.Tensor:
    """(T, B, V) log-posteriors -> (B,) length-normalised negative best-path log-probability."""
    mask = _valid(log_probs, lengths)
    best, path = log_probs.max(-1)
    nll = -(best * mask).sum(0)
    if norm == "frames":
        return nll / lengths.clamp(min=1).to(nll.dtype)
    if norm != "label":
        raise ConfigError(f"least_confidence norm must be 'label' or 'frames', got '{norm}'")
    n_chars = torch.tensor([max(1, len(ctc_collapse(path[: int(n), b].tolist()))) for b, n in enumerate(lengths)],
                           dtype=nll.dtype)
    return nll / n_chars


def frame_entropy(log_probs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    mask = _valid(log_probs, lengths)
    ent = -(log_probs.exp() * log_probs).sum(-1)
    return (ent * mask).sum(0) / lengths.clamp(min=1).to(ent.dtype)


def mean_pairwise_cer(hyps: Sequence[str]) -> float:
    """Mean over hypothesis pairs of the symmetric CER (average of both directions)."""
    pairs = list(combinations(hyps, 2))
    if not pairs:
        return 0.0
    return float(np.mean([(utterance_cer(a, b) + utterance_cer(b, a)) / 2 for a, b in pairs]))


def best_path(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    _valid(log_probs, lengths)
    path = log_probs.argmax(-1)
    return [decode_ids(ctc_collapse(path[: int(n), b].tolist())) for b, n in enumerate(lengths)]


class mc_dropout_mode:
    """Context manager: Dropout modules in train mode (stochastic), everything else in eval mode."""

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def __enter__(self):
        self.was = self.model.training
        self.model.eval()
        for m in self.model.modules():
            if isinstance(m, torch.nn.Dropout) or (isinstance(m, torch.nn.RNNBase) and m.dropout > 0):
                m.train()
        return self.model

    def __exit__(self, *exc):
        self.model.train(self.was)


def score_batch(name: str, model: torch.nn.Module, feats: torch.Tensor, lengths: torch.Tensor, *,
                generator: torch.Generator, norm: str = "label", n_samples: int = 5) -> torch.Tensor:
    """Scores of one batch of (already featurised) utterances."""
    if name == "random":
        return torch.rand(feats.shape[0], generator=generator)
    if name in ("least_confidence", "frame_entropy"):
        was = model.training
        model.eval()
        with torch.no_grad():
            lp, n = model(feats, lengths)
        model.train(was)
        return least_confidence(lp, n, norm) if name == "least_confidence" else frame_entropy(lp, n)
    if name == "mc_dropout":
        hyps: list[list[str]] = []
        with torch.no_grad(), mc_dropout_mode(model):
            # dropout draws come from torch's global RNG (seeded per trial by the runtime)
            for _ in range(n_samples):
                lp, n = model(feats, lengths)
                hyps.append(best_path(lp, n))
        return torch.tensor([mean_pairwise_cer([h[i] for h in hyps]) for i in range(feats.shape[0])])
    raise ConfigError(f"unknown acquisition '{name}'; choose one of: {', '.join(ACQUISITIONS)}")


def select_top(scores: Sequence[float], budget: float, *, costs: Sequence[float] | None = None,
               rng: np.random.Generator) -> list[int]:
    """Indices of the highest scores (ties broken by ``rng``) until ``budget`` is spent. Without
    ``costs`` the budget counts items; with ``costs`` (e.g. durations in seconds) an item is taken
    when it still fits, and the scan continues with the next ones."""
    scores = finite_array("scores", scores, ndim=1)
    budget = finite("budget", budget, lo=0.0)
    order = np.lexsort((rng.random(scores.size), -scores))  # primary: score desc; ties: random
    if costs is None:
        return order[: int(budget)].tolist()
    costs = finite_array("costs", costs, ndim=1)
    if costs.shape != scores.shape or (costs < 0).any():
        raise DataError(f"costs must be {scores.size} values >= 0 (one per score), got {costs.size} values"
                        f"{' with a negative one' if (costs < 0).any() else ''}")
    out, spent = [], 0.0
    for i in order:
        if spent + costs[i] <= budget + 1e-9:
            out.append(int(i))
            spent += costs[i]
    return out


__all__ = ["ACQUISITIONS", "least_confidence", "frame_entropy", "mean_pairwise_cer", "mc_dropout_mode",
           "score_batch", "select_top"]
