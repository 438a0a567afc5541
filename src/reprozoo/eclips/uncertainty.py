"""MC dropout and predictive uncertainty over T dropout passes x K ensemble members.

* :func:`mc_dropout`: a context manager that puts the model in eval mode and re-enables only its
  Dropout modules (BatchNorm keeps its running statistics).
* :func:`predict`: predictive mean and uncertainty (variance of the member-sample live
  probabilities, or BALD mutual information).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from reprozoo.eclips.ensemble import Ensemble
from reprozoo.errors import ConfigError, DataError
from reprozoo.runtime.seeding import generator_scope

UNCERTAINTIES = ("variance", "bald")


# ------------------------------------------------------------------------------------ MC dropout
_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


@contextlib.contextmanager
def mc_dropout(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Eval mode with only the Dropout modules stochastic (BatchNorm stays in eval mode); the
    previous train/eval state of every module is restored on exit."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    if enabled:
        for m in model.modules():
            if isinstance(m, _DROPOUTS):
                m.train()
    try:
        yield model
    finally:
        for m, mode in modes.items():
            m.training = mode


def member_probs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Live probabilities per member, (K, B); a single learner counts as K = 1."""
    if isinstance(model, Ensemble):
        return torch.softmax(model.member_logits(x), dim=-1)[..., 1]
    return torch.softmax(model(x), dim=-1)[None, :, 1]


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, mc_samples: int = 0, uncertainty: str = "variance",
            generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """``{"prob": (B,), "uncertainty": (B,), "samples": (T, K, B)}``.

    ``mc_samples = 0``: deterministic (eval mode), ``prob`` is the fused probability, uncertainty
    the spread over the K members (0 for a single learner). ``mc_samples = T > 0``: T passes with
    dropout on; ``prob = (1/T) sum_t sum_k w_k p_k^(t)``; uncertainty = variance of the T*K member
    samples (``"variance"``) or the mutual information between prediction and sample (``"bald"``).
    ``generator`` makes the dropout masks reproducible without touching the global RNG."""
    if uncertainty not in UNCERTAINTIES:
        raise ConfigError(f"uncertainty must be one of {', '.join(UNCERTAINTIES)}, got '{uncertainty}'")
    if mc_samples < 0:
        raise ConfigError(f"mc_samples must be >= 0, got {mc_samples}")
    t = max(1, mc_samples)
    samples, fused = [], []
    with mc_dropout(model, enabled=mc_samples > 0), generator_scope(generator):
        for _ in range(t):
            if isinstance(model, Ensemble):
                logits = model.member_logits(x)
                samples.append(torch.softmax(logits, -1)[..., 1])
                fused.append(model.fuse(logits).exp()[:, 1])
            else:
                p = torch.softmax(model(x), -1)[:, 1]
                samples.append(p[None])
                fused.append(p)
    s = torch.stack(samples)  # (T, K, B)
    if not bool(torch.isfinite(s).all()):
        raise DataError("the model's probabilities are not finite (NaN or inf in the input frames or diverged "
                        "weights); check the frames and the checkpoint")
    prob = torch.stack(fused).mean(0).clamp(0, 1)
    flat = s.reshape(-1, s.shape[-1])
    if uncertainty == "variance":
        u = flat.var(0, unbiased=False)
    else:
        u = _entropy(flat.mean(0)) - _entropy(flat).mean(0)
    return {"prob": prob, "uncertainty": u.clamp_min(0), "samples": s}


def _entropy(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(p * p.log() + (1 - p) * (1 - p).log())
