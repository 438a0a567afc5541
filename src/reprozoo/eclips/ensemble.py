"""The FLIP-style head, the base learner and the ECLIPS ensemble with decision fusion.

* :class:`FASHead`: Linear(d, 512) (weights N(0, 0.005), bias 0.1), ReLU, Dropout(0.5), optional
  feature normalisation (divide by sqrt(||f||) * sqrt(2)) and Linear(512, 2) (weights N(0, 0.01),
  bias 0) whose weight is L2-normalised along the class axis before every forward when normalising.
* :class:`BaseLearner` = backbone + head -> 2 logits (index 1 = live).
* :class:`Ensemble`: K members, decision fusion ``p(y|x) = sum_k w_k p_k(y|x)`` with
  ``w = softmax(alpha / tau)`` (``alpha`` learnable, initialised 0 = uniform), fixed uniform weights
  (``fusion="mean"``) or an input-dependent gate (``fusion="gate"``: MLP 2K -> 16 -> K on the
  member logits). ``forward`` returns the *log* of the fused probabilities, so
  ``softmax(model(x))`` is the fused probability for a single learner and for an ensemble alike.
* :func:`ensemble_loss`: fused-mixture NLL + member cross-entropy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import ConfigError

FUSIONS = ("learned", "mean", "gate")


# ------------------------------------------------------------------------------------ head
class FASHead(nn.Module):
    """Embedder (Linear-ReLU-Dropout) + optional FLIP feature normalisation + 2-way classifier."""

    def __init__(self, in_features: int, embed_dim: int = 512, dropout: float = 0.5, feature_norm: bool = True):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        self.embed = nn.Linear(in_features, embed_dim)
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(embed_dim, 2)
        self.feature_norm = feature_norm
        nn.init.normal_(self.embed.weight, 0.0, 0.005)
        nn.init.constant_(self.embed.bias, 0.1)
        nn.init.normal_(self.classifier.weight, 0.0, 0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        z = self.drop(F.relu(self.embed(feat)))
        if not self.feature_norm:
            return self.classifier(z)
        z = z / (z.norm(p=2, dim=1, keepdim=True).clamp_min(1e-12).sqrt() * math.sqrt(2.0))
        w = F.normalize(self.classifier.weight, p=2, dim=0)  # along the class axis
        return F.linear(z, w, self.classifier.bias)


class BaseLearner(nn.Module):
    """Backbone + :class:`FASHead`; ``forward(x)`` -> 2 logits (index 1 = live)."""

    def __init__(self, backbone: nn.Module, embed_dim: int = 512, dropout: float = 0.5, feature_norm: bool = True):
        super().__init__()
        self.backbone = backbone
        self.head = FASHead(int(backbone.num_features), embed_dim, dropout, feature_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


# ------------------------------------------------------------------------------------ ensemble
class Ensemble(nn.Module):
    """K base learners with decision fusion; ``forward(x)`` -> log fused probabilities (B, 2)."""

    def __init__(self, members: Sequence[nn.Module], fusion: str = "learned", tau: float = 1.0):
        super().__init__()
        if len(members) < 1:
            raise ConfigError("an ensemble needs at least one member")
        if fusion not in FUSIONS:
            raise ConfigError(f"fusion must be one of {', '.join(FUSIONS)}, got '{fusion}'")
        if not tau > 0:
            raise ConfigError(f"tau must be > 0, got {tau}")
        self.members = nn.ModuleList(members)
        self.fusion, self.tau = fusion, float(tau)
        k = len(members)
        if fusion == "learned":
            self.alpha = nn.Parameter(torch.zeros(k))
        else:
            self.register_buffer("alpha", torch.zeros(k))
        self.gate = nn.Sequential(nn.Linear(2 * k, 16), nn.ReLU(), nn.Linear(16, k)) if fusion == "gate" else None

    @property
    def k(self) -> int:
        return len(self.members)

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(K, B, 2)."""
        return torch.stack([m(x) for m in self.members])

    def weights(self, logits: torch.Tensor | None = None) -> torch.Tensor:
        """Fusion weights: (K,) for learned/mean fusion, (B, K) for the gate."""
        if self.gate is not None:
            if logits is None:
                raise ValueError("the gate's weights depend on the input; pass member logits")
            return torch.softmax(self.gate(logits.permute(1, 0, 2).flatten(1)) / self.tau, dim=1)
        return torch.softmax(self.alpha / self.tau, dim=0)

    def fuse(self, logits: torch.Tensor) -> torch.Tensor:
        """Log of ``sum_k w_k softmax(logits_k)`` computed stably: (B, 2)."""
        w = self.weights(logits)
        logw = torch.log(w).T[:, :, None] if w.ndim == 2 else torch.log(w)[:, None, None]
        return torch.logsumexp(logw + torch.log_softmax(logits, dim=-1), dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.member_logits(x))


def ensemble_loss(model: Ensemble, x: torch.Tensor, y: torch.Tensor, *, lambda_mem: float = 1.0,
                  beta_w: float = 0.0, sample_weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """NLL of the fused mixture + ``lambda_mem`` x mean member cross-entropy (keeps every member
    competent so the fusion weights do not collapse) - ``beta_w`` x entropy of the weights."""
    logits = model.member_logits(x)
    fused = model.fuse(logits)
    sw = sample_weight if sample_weight is not None else torch.ones_like(y, dtype=fused.dtype)
    sw = sw / sw.mean()
    nll = (F.nll_loss(fused, y, reduction="none") * sw).mean()
    member = torch.stack([(F.cross_entropy(lg, y, reduction="none") * sw).mean() for lg in logits]).mean()
    loss = nll + lambda_mem * member
    w = model.weights(logits)
    entropy = -(w * torch.log(w.clamp_min(1e-12))).sum(-1).mean()
    if beta_w:
        loss = loss - beta_w * entropy
    return {"loss": loss, "nll": nll.detach(), "member_ce": member.detach(), "w_entropy": entropy.detach()}
