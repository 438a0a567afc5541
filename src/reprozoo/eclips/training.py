"""Iteration-based training on bucket-balanced batches (FLIP's protocol) and frame scoring.

Each iteration draws ``n_per_bucket`` frames from every (source domain, class) bucket through a
:class:`~reprozoo.eclips.sampler.UncertaintySampler` (``eta = 0`` makes it uniform), applies FLIP's
augmentation (with probability 0.5 scale saturation by U(0.8, 1.2); random horizontal flip) and
ImageNet normalisation, and takes one Adam step on cross-entropy (single learner) or on
:func:`~reprozoo.eclips.ensemble.ensemble_loss` (ensemble). With the uncertainty sampler on, every
``refresh_every`` iterations the sampler re-scores a subset of the training frames with
``mc_samples`` MC-dropout passes. No checkpoint is selected on test data: the model after the last
iteration is the model.

With ``out_dir`` the state after every ``save_every`` iterations (weights, optimiser, the sampler's
uncertainties and weights, the ``generator`` and global RNG states, the history) goes to
``out_dir/checkpoints/last.pt``, and ``resume=True`` continues from it; the run then ends, bit for
bit on the CPU, as the run never stopped. The folder follows the library's rule
(:mod:`reprozoo.runtime.fit_folder`): one that holds a run is refused without ``resume=True``, and a
resume must use the run's settings, data, model size and initial ``generator`` state (only the
device may change).

The loop is written here rather than on :class:`reprozoo.runtime.trainer.Trainer` because its
sampler is iteration-based and refreshed from the model mid-training, which the epoch-based
trainer does not model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.eclips.ensemble import Ensemble, ensemble_loss
from reprozoo.eclips.sampler import MODES, UncertaintySampler
from reprozoo.eclips.uncertainty import predict
from reprozoo.errors import ConfigError
from reprozoo.runtime.accel import resolve_device
from reprozoo.runtime.fit_folder import CHECKPOINT, atomic_save, describe_model, fingerprint, prepare_out_dir
from reprozoo.runtime.seeding import get_rng_state, set_rng_state

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class FitSettings:
    iters: int = 300
    n_per_bucket: int = 8  # frames per (domain, class) bucket and iteration
    lr: float = 1e-3
    weight_decay: float = 1e-6
    lambda_mem: float = 1.0  # per-member CE weight (ensembles)
    fused_nll: bool = True  # ensembles: include the fused-mixture NLL (False: plain deep ensemble, members' CE only)
    beta_w: float = 0.0  # fusion-weight entropy bonus (ensembles)
    augment: bool = True
    uncertainty_sampling: bool = False
    eta: float = 0.5
    gamma: float = 1.0
    eps: float = 1e-4
    cap: float = 10.0
    subset: int = 5000
    refresh_every: int = 100
    mc_samples: int = 8  # MC-dropout passes when refreshing the sampler
    uncertainty: str = "variance"  # variance | bald
    sampler_mode: str = "sample"  # sample | loss_weight

    def validate(self, prefix: str = "") -> None:
        checks = [
            (self.iters >= 1, f"{prefix}iters must be >= 1, got {self.iters}"),
            (self.n_per_bucket >= 1, f"{prefix}n_per_bucket must be >= 1, got {self.n_per_bucket}"),
            (self.lr > 0 and np.isfinite(self.lr), f"{prefix}lr must be a positive number, got {self.lr}"),
            (self.weight_decay >= 0, f"{prefix}weight_decay must be >= 0, got {self.weight_decay}"),
            (self.lambda_mem >= 0 and self.beta_w >= 0, f"{prefix}lambda_mem and beta_w must be >= 0"),
            (0 <= self.eta <= 1, f"{prefix}eta must be in [0, 1], got {self.eta}"),
            (self.gamma >= 0 and self.eps > 0, f"{prefix}gamma must be >= 0 and eps > 0"),
            (self.cap >= 1, f"{prefix}cap must be >= 1 (a multiple of the uniform weight), got {self.cap}"),
            (self.subset >= 1 and self.refresh_every >= 1, f"{prefix}subset and refresh_every must be >= 1"),
            (self.mc_samples >= 1, f"{prefix}mc_samples must be >= 1, got {self.mc_samples}"),
            (self.uncertainty in ("variance", "bald"), f"{prefix}uncertainty must be variance or bald"),
            (self.sampler_mode in MODES, f"{prefix}sampler_mode must be one of {', '.join(MODES)}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)


def normalize(frames: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """uint8 (or [0, 1] float) frames -> normalised float."""
    x = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def augment(frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """FLIP's training augmentation on uint8/[0,1] frames: p=0.5 saturation x U(0.8, 1.2), random
    horizontal flip. Returns floats in [0, 1]."""
    x = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
    n = x.shape[0]
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    f = 0.8 + 0.4 * torch.rand(n, generator=generator)
    f = torch.where(torch.rand(n, generator=generator) < 0.5, f, torch.ones(n)).view(-1, 1, 1, 1)
    x = (gray + f * (x - gray)).clamp(0, 1)
    flip = torch.rand(n, generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


@torch.no_grad()
def score_frames(model: nn.Module, frames: torch.Tensor, *, mc_samples: int = 0, uncertainty: str = "variance",
                 batch_size: int = 1024, generator: torch.Generator | None = None,
                 device: str | torch.device | None = None) -> dict[str, np.ndarray]:
    """Per-frame live probability and uncertainty (see :func:`reprozoo.eclips.uncertainty.predict`),
    computed on ``device`` (default: the device the model's weights are on)."""
    device = _device_of(model) if device is None else torch.device(resolve_device(device))
    probs, uncs = [], []
    for start in range(0, len(frames), batch_size):
        x = normalize(frames[start:start + batch_size].to(device))
        out = predict(model, x, mc_samples=mc_samples, uncertainty=uncertainty, generator=generator)
        probs.append(out["prob"].cpu())
        uncs.append(out["uncertainty"].cpu())
    return {"prob": torch.cat(probs).double().numpy(), "uncertainty": torch.cat(uncs).double().numpy()}


def _save(path: Path, it: int, model, opt, sampler: UncertaintySampler, generator, history, running) -> None:
    state = {"iteration": it, "model": model.state_dict(), "optimizer": opt.state_dict(),
             "sampler_u": torch.from_numpy(sampler.u.copy()),
             "sampler_pi": [torch.from_numpy(sampler.pi[k].copy()) for k in sampler.buckets],
             "generator": generator.get_state(), "rng": get_rng_state(), "history": history, "running": running}
    atomic_save(state, path)


def _restore(path: Path, model, opt, sampler: UncertaintySampler, generator) -> tuple[int, dict, float]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sampler.u = state["sampler_u"].numpy().copy()
    sampler.pi = {k: v.numpy().copy() for k, v in zip(sampler.buckets, state["sampler_pi"])}
    generator.set_state(state["generator"])
    set_rng_state(state["rng"])
    return int(state["iteration"]), state["history"], float(state["running"])


def fit(model: nn.Module, frames: torch.Tensor, labels: torch.Tensor, domains: torch.Tensor,
        settings: FitSettings, *, generator: torch.Generator, device: str | torch.device = "auto",
        out_dir: str | Path | None = None, resume: bool = False, save_every: int = 50) -> dict[str, Any]:
    """Train ``model`` in place on ``device`` (read by :func:`reprozoo.runtime.accel.resolve_device`:
    ``auto`` is the GPU when one is visible); returns a small history (loss every 50 iterations, the
    fusion weights of an ensemble, the number of sampler refreshes). ``out_dir`` / ``resume`` /
    ``save_every``: see the module."""
    settings.validate()
    if save_every < 1:
        raise ConfigError(f"save_every must be >= 1, got {save_every}")
    record = {"call": "eclips.fit", **asdict(settings), "model": describe_model(model),
              "data": f"{tuple(frames.shape)}, sha256 {fingerprint(frames, labels, domains)}",
              "generator": f"sha256 {fingerprint(generator.get_state())}"} if out_dir is not None else {}
    again = prepare_out_dir(out_dir, record, resume=resume, what="an ECLIPS training run")
    device = torch.device(resolve_device(device))
    model.to(device).train()
    sampler = UncertaintySampler(domains.numpy(), labels.numpy(), settings.n_per_bucket,
                                 eta=settings.eta if settings.uncertainty_sampling else 0.0,
                                 gamma=settings.gamma, eps=settings.eps, cap=settings.cap, subset=settings.subset,
                                 mode=settings.sampler_mode)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    history: dict[str, Any] = {"loss": [], "refreshes": 0, "weights": []}
    is_ensemble = isinstance(model, Ensemble)

    def uncertainties(idx: np.ndarray) -> np.ndarray:
        out = score_frames(model, frames[torch.from_numpy(idx)], mc_samples=settings.mc_samples,
                           uncertainty=settings.uncertainty, generator=generator, device=device)
        model.train()
        return out["uncertainty"]

    running, first = 0.0, 0
    last = Path(out_dir) / CHECKPOINT if out_dir is not None else None
    if again:
        first, history, running = _restore(last, model, opt, sampler, generator)
    for it in range(first, settings.iters):
        if settings.uncertainty_sampling and it > 0 and it % settings.refresh_every == 0:
            sampler.refresh(uncertainties, generator)
            history["refreshes"] += 1
        idx, w = sampler.sample(generator)
        idx_t = torch.from_numpy(idx)
        x = augment(frames[idx_t], generator) if settings.augment else frames[idx_t].float() / 255.0
        x = normalize(x).to(device)
        y = labels[idx_t].to(device)
        sw = torch.as_tensor(w, dtype=torch.float32, device=device)
        if is_ensemble and settings.fused_nll:
            loss = ensemble_loss(model, x, y, lambda_mem=settings.lambda_mem, beta_w=settings.beta_w,
                                 sample_weight=sw)["loss"]
        elif is_ensemble:  # independent members (a plain deep ensemble)
            logits = model.member_logits(x)
            ce = F.cross_entropy(logits.flatten(0, 1), y.repeat(model.k), reduction="none").view(model.k, -1)
            loss = (ce * sw / sw.mean()).mean(1).sum()
        else:
            loss = (F.cross_entropy(model(x), y, reduction="none") * sw / sw.mean()).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running += float(loss.detach())
        if (it + 1) % 50 == 0 or it + 1 == settings.iters:
            history["loss"].append(running / ((it % 50) + 1))
            running = 0.0
            if is_ensemble and model.gate is None:
                history["weights"].append(model.weights().detach().cpu().tolist())
        if last is not None and ((it + 1) % save_every == 0 or it + 1 == settings.iters):
            _save(last, it + 1, model, opt, sampler, generator, history, running)
    model.eval()
    return history


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
