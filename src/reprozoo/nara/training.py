"""Training the mother AR model, the prior predictor Q and the confidence predictor C with the
foundation :class:`~reprozoo.runtime.trainer.Trainer` (custom ``step_fn`` each).

With ``out_dir`` every epoch writes ``out_dir/checkpoints/last.pt`` and the call's settings go to
``out_dir/fit_settings.json``, under the library's one rule for output folders
(:mod:`reprozoo.runtime.fit_folder`). ``resume=True`` continues that run from its last finished epoch
(the settings must be the run's: a changed one is a :class:`~reprozoo.errors.ConfigError` naming it;
``epochs`` may grow, since no schedule depends on it, and ``device`` may change); without it an
``out_dir`` that already holds a checkpoint is refused (:class:`~reprozoo.errors.OutputExistsError`),
so a run is never continued or overwritten by accident.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from reprozoo.errors import ConfigError, DataError
from reprozoo.nara.predictors import PriorPredictor, prefix_mask, step_change
from reprozoo.nara.protocol import Gaussian, ModuleAR, ParallelAR
from reprozoo.nara.samplers import draw_noise, sample_sequential
from reprozoo.runtime.fit_folder import describe_model, fingerprint
from reprozoo.runtime.trainer import TrainConfig, Trainer

logger = logging.getLogger(__name__)
FREE_ON_RESUME = ("epochs", "device")  # may differ from the run's on resume


@dataclass
class FitConfig:
    """Optimisation settings for one of the three networks (Adam)."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps (runtime.accel.resolve_device)
    max_steps_per_epoch: int = 0

    def validate(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or not (0 < self.lr < float("inf")):
            raise ConfigError("fit settings need epochs >= 0, batch_size >= 1 and lr > 0")


def _whole_batch(batch):
    """Collate for datasets with ``__getitems__`` that already return batched tensors."""
    return batch


def _settings(call: str, model: nn.Module, tensors, fit: FitConfig, **more) -> dict:
    shapes = " x ".join(str(tuple(t.shape)) for t in tensors)
    return {"call": call, **asdict(fit), **more, "model": describe_model(model),
            "data": f"{shapes}, sha256 {fingerprint(*tensors)}"}


def _train(model, dataset, fit: FitConfig, step_fn, out_dir, progress, resume: bool, settings: dict
           ) -> list[dict[str, float]]:
    fit.validate()
    cfg = TrainConfig(epochs=fit.epochs, batch_size=fit.batch_size, seed=fit.seed, device=fit.device,
                      checkpoint_every=0 if out_dir is None else 1, max_steps_per_epoch=fit.max_steps_per_epoch)
    opt = torch.optim.Adam(model.parameters(), lr=fit.lr)
    collate = _whole_batch if hasattr(dataset, "__getitems__") else None
    trainer = Trainer(model, opt, dataset, cfg, step_fn=step_fn, out_dir=out_dir, progress=progress,
                      collate_fn=collate, settings=settings, free_on_resume=FREE_ON_RESUME)
    history = trainer.fit(resume=resume)
    model.eval()
    return history


def _random_boundary(b: int, start: int, length: int, device) -> torch.Tensor:
    return torch.randint(start, length, (b,), device=device)


class Rows(Dataset):
    """The rows of one tensor, fetched a whole batch at a time (``batch[0]`` is ``(b, N)``)."""

    def __init__(self, data: torch.Tensor):
        self.data = data.cpu()

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        return (self.data[i],)

    def __getitems__(self, indices: list[int]):
        return (self.data[torch.as_tensor(indices)],)


# ------------------------------------------------------------------ mother
def mother_step(model: ModuleAR, batch) -> dict[str, torch.Tensor]:
    x = batch[0]
    nll = -model.family.log_prob(x, model.conditionals(x)).mean()
    return {"loss": nll}


def fit_mother(model: ModuleAR, data: torch.Tensor, fit: FitConfig, *, out_dir=None, resume: bool = False,
               progress=False):
    """Maximum likelihood (mean NLL per position, nats). ``out_dir`` / ``resume``: see the module."""
    if data.dim() != 2 or data.shape[1] != model.length:
        raise DataError(f"training data must be (n, {model.length}), got {tuple(data.shape)}")
    settings = _settings("fit_mother", model, (data,), fit) if out_dir is not None else {}
    return _train(model, Rows(data), fit, mother_step, out_dir, progress, resume, settings)


# ------------------------------------------------------------------ prior Q
def prior_step(start: int):
    def step(q: PriorPredictor, batch) -> dict[str, torch.Tensor]:
        x = batch[0]
        m = _random_boundary(x.shape[0], start, q.length, x.device)
        future = 1.0 - prefix_mask(m, q.length)
        nll = -(q.family.log_prob(x, q(x, m)) * future).sum() / future.sum()
        return {"loss": nll}

    return step


def fit_prior(prior: PriorPredictor, data: torch.Tensor, fit: FitConfig, *, start: int = 0, out_dir=None,
              resume: bool = False, progress=False):
    """Maximum likelihood of ``x_t, t >= m`` given the masked prefix, random boundary
    ``m ~ U{start..N-1}``. ``data`` may be real sequences or samples of the mother (distillation).
    ``out_dir`` / ``resume``: see the module."""
    settings = _settings("fit_prior", prior, (data,), fit, start=start) if out_dir is not None else {}
    return _train(prior, Rows(data), fit, prior_step(start), out_dir, progress, resume, settings)


# ------------------------------------------------------------------ confidence C
class ConfidenceStates(Dataset):
    """Sampler states with labels: ``(x_prev, x_new, params, m, code, label, weight)`` per item
    (``code`` = the family's transform of the shared noise, an input of :class:`LocalConfidence`)."""

    def __init__(self, x_prev, x_new, params, m, code, label, weight):
        self.tensors = (x_prev, x_new, params, m, code, label, weight)

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, i: int):
        return tuple(t[i] for t in self.tensors)

    def __getitems__(self, indices: list[int]):
        idx = torch.as_tensor(indices)
        return tuple(t[idx] for t in self.tensors)

    @property
    def positive_rate(self) -> float:
        label, weight = self.tensors[5], self.tensors[6]
        return float((label * weight).sum() / weight.sum().clamp_min(1))


@torch.no_grad()
def confidence_states(model: ParallelAR, prior: PriorPredictor | None, n_states: int, *,
                      context: torch.Tensor | None = None, sweeps: int = 3, delta: float = 0.5,
                      generator: torch.Generator | None = None, chunk: int = 1024) -> ConfidenceStates:
    """States a sampler meets, labelled against the shared-noise sequential sample.

    For each state: draw noise, sample the sequential reference ``x_ref``, pick a boundary
    ``m ~ U{P0..N-1}``, fill ``t >= m`` with Q's draws (zeros without Q), apply ``k ~ U{0..sweeps}``
    parallel refinement sweeps, then one more sweep gives ``(x_prev, x_new)``. Label: ``x_new_t ==
    x_ref_t`` (discrete) or ``|x_new_t - x_ref_t| < delta * sigma_t`` (Gaussian). Loss weight 1 on
    positions ``t > m`` whose context moved (the positions the exact rule cannot accept).
    Computed on the model's device; returned on the CPU (the trainer moves batches).
    """
    n = model.length
    if n_states < 1:
        raise ConfigError(f"n_states must be >= 1, got {n_states}")
    if context is not None and len(context) != n_states:
        raise DataError(f"context has {len(context)} rows but n_states={n_states}")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    fam = model.family
    dev = _device_of(model)
    parts = []
    for lo in range(0, n_states, chunk):
        b = min(chunk, n_states - lo)
        ctx = context[lo:lo + b].to(dev) if context is not None else None
        p0 = 0 if ctx is None else ctx.shape[1]
        u = draw_noise(model, b, gen, dev)
        x_ref = sample_sequential(model, context=ctx, noise=u).x
        m = torch.randint(p0, n, (b,), generator=gen).to(dev)
        pos = torch.arange(n, device=dev)[None, :]
        fut = pos >= m[:, None]
        x = torch.where(fut, torch.zeros_like(x_ref), x_ref)
        if prior is not None:
            x = prior.propose(x, m, u)
        k = torch.randint(0, sweeps + 1, (b,), generator=gen).to(dev)
        for i in range(sweeps):
            upd = fut & (k > i)[:, None]
            x = torch.where(upd, fam.sample(model.conditionals(x), u), x)
        params = model.conditionals(x)
        x_new = torch.where(fut, fam.sample(params, u), x)
        if isinstance(fam, Gaussian):
            label = ((x_new - x_ref).abs() < delta * fam.scale(params)).float()
        else:
            label = (x_new == x_ref).float()
        weight = ((pos > m[:, None]) & (step_change(x, x_new)[1] > 0)).float()
        parts.append(tuple(t.cpu() for t in (x, x_new, params, m, fam.noise_code(u), label, weight)))
    return ConfidenceStates(*[torch.cat(t) for t in zip(*parts)])


def _device_of(model) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def confidence_step(c: nn.Module, batch) -> dict[str, torch.Tensor]:
    x_prev, x_new, params, m, code, label, weight = batch
    logits = c(x_prev, x_new, params, m, code=code)
    loss = (F.binary_cross_entropy_with_logits(logits, label, reduction="none") * weight).sum()
    return {"loss": loss / weight.sum().clamp_min(1.0)}


def fit_confidence(confidence: nn.Module, states: ConfidenceStates, fit: FitConfig, *,
                   out_dir=None, resume: bool = False, progress=False):
    """BCE on the "matches the sequential sample" label, mother and Q frozen. ``out_dir`` /
    ``resume``: see the module."""
    settings = _settings("fit_confidence", confidence, states.tensors, fit) if out_dir is not None else {}
    return _train(confidence, states, fit, confidence_step, out_dir, progress, resume, settings)
