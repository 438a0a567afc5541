"""Consistency regularisation with CTC pseudo-labels (FixMatch / noisy-student style, for sequences).

For an unlabelled utterance the teacher (the model itself in eval mode, or an EMA copy) decodes a
weakly perturbed view greedily; the transcript is kept as a pseudo-label when its confidence
``exp(mean over frames of log max-posterior)`` reaches ``tau`` and it is non-empty; the student's
CTC loss on a strongly augmented view of the same utterance is then trained towards it. The loss
weight ramps up as ``lambda_max * exp(-5 (1 - t / t_ramp)^2)`` (0 before ``start_step``).
Pseudo-labels are recomputed every step, never cached.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F

from reprozoo.activeasr.text import ctc_collapse


def ramp_weight(step: int, *, lambda_max: float, ramp_steps: int, start_step: int = 0) -> float:
    """Sigmoid-shaped ramp-up: 0 before ``start_step``, ``lambda_max`` after ``start_step + ramp_steps``."""
    t = step - start_step
    if t < 0:
        return 0.0
    if ramp_steps <= 0 or t >= ramp_steps:
        return float(lambda_max)
    return float(lambda_max * math.exp(-5.0 * (1.0 - t / ramp_steps) ** 2))


def frame_confidence(log_probs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """exp(mean over valid frames of the max log-posterior), one value per utterance."""
    mask = (torch.arange(log_probs.shape[0])[:, None] < lengths[None, :]).to(log_probs.dtype)
    best = log_probs.max(-1).values
    return torch.exp((best * mask).sum(0) / lengths.clamp(min=1).to(best.dtype))


def pseudo_labels(log_probs: torch.Tensor, lengths: torch.Tensor, tau: float) -> tuple[list[list[int]], torch.Tensor,
                                                                                         torch.Tensor]:
    """(label ids per utterance, confidence, keep mask): kept when confidence >= tau and non-empty."""
    conf = frame_confidence(log_probs, lengths)
    path = log_probs.argmax(-1)
    labels = [ctc_collapse(path[: int(n), b].tolist()) for b, n in enumerate(lengths)]
    keep = torch.tensor([bool(c >= tau) and len(lab) > 0 for c, lab in zip(conf.tolist(), labels)])
    return labels, conf, keep


def ctc_loss(log_probs: torch.Tensor, out_len: torch.Tensor, labels: list[list[int]]) -> torch.Tensor:
    """Mean over utterances of CTC / label length (blank 0, infeasible alignments -> 0)."""
    targets = torch.tensor([i for lab in labels for i in lab], dtype=torch.long)
    target_len = torch.tensor([len(lab) for lab in labels], dtype=torch.long)
    return F.ctc_loss(log_probs, targets, out_len, target_len, blank=0, reduction="mean", zero_infinity=True)


class EMATeacher:
    """Exponential moving average of the student's weights (decay per step)."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, student: torch.nn.Module) -> None:
        for t, s in zip(self.model.parameters(), student.parameters()):
            t.mul_(self.decay).add_(s.detach(), alpha=1 - self.decay)
        for t, s in zip(self.model.buffers(), student.buffers()):
            t.copy_(s)
