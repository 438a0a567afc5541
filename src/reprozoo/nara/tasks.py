"""The two demo tasks end to end: data -> mother AR -> Q -> C (used by the experiment and the
benchmark)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from reprozoo.errors import ConfigError
from reprozoo.nara.data import digits_sequences, sequence_task
from reprozoo.nara.models import nara_causal_conv, nara_made
from reprozoo.nara.predictors import ConfidencePredictor, PriorPredictor
from reprozoo.nara.protocol import ModuleAR
from reprozoo.nara.samplers import sample_sequential
from reprozoo.nara.training import FitConfig, confidence_states, fit_confidence, fit_mother, fit_prior
from reprozoo.runtime.seeding import seed_everything


@dataclass
class TaskConfig:
    """One demo task. ``kind``: digits | sine | ar2. ``observed``: prefix length P0 given as
    context (0 = unconditional)."""

    kind: str = "digits"
    length: int = 64
    observed: int = 0
    n_train: int = 4000  # sequences only; digits use the fixed 1,500 / 297 split
    n_test: int = 500
    hidden: tuple[int, ...] = (256, 256)  # MADE hidden sizes
    channels: int = 64  # causal conv channels
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16)
    mother: FitConfig = field(default_factory=lambda: FitConfig(epochs=60, batch_size=100))
    prior: FitConfig = field(default_factory=lambda: FitConfig(epochs=60, batch_size=100))
    prior_hidden: tuple[int, ...] = (256, 256)
    prior_targets: str = "data"  # data (maximum likelihood) | mother (distillation on the mother's samples)
    confidence: FitConfig = field(default_factory=lambda: FitConfig(epochs=20, batch_size=200))
    confidence_hidden: tuple[int, ...] = (256, 256)
    confidence_states: int = 8000
    sweeps: int = 3  # max extra refinement sweeps when making C's training states
    delta: float = 0.5  # continuous label: |x_new - x_ref| < delta * sigma

    def check(self, name: str = "task") -> None:
        """Ranges of the task options; at least one position must be left to generate after the prefix."""
        if self.kind not in ("digits", "sine", "ar2"):
            raise ConfigError(f"{name}.kind must be digits, sine or ar2, got '{self.kind}'")
        if self.sweeps < 0 or self.delta <= 0:
            raise ConfigError(f"{name}.sweeps must be >= 0 and {name}.delta > 0 (label width in sigmas), "
                              f"got {self.sweeps} and {self.delta}")
        n = 64 if self.kind == "digits" else self.length
        if not 0 <= self.observed < n:
            raise ConfigError(f"{name}.observed must lie in [0, {n}) (positions to generate remain), "
                              f"got {self.observed}")


@dataclass
class Task:
    kind: str
    mother: ModuleAR
    prior: PriorPredictor
    confidence: ConfidencePredictor
    train: torch.Tensor
    test: torch.Tensor
    start: int
    history: dict = field(default_factory=dict)

    def context(self, n: int, offset: int = 0) -> torch.Tensor | None:
        """Observed prefixes of ``n`` test sequences (cycled), or None for unconditional tasks."""
        if self.start == 0:
            return None
        idx = (torch.arange(n) + offset) % len(self.test)
        return self.test[idx, : self.start]


def check_cpu_device(device: str) -> None:
    """The demo tasks train and sample on the CPU; anything else would leave the fitted models on the
    accelerator while data and noise stay on the CPU."""
    if device not in ("auto", "cpu"):
        raise ConfigError(f"the nara demo tasks run on the CPU (tiny models; AR-call counts do not depend on "
                          f"the device), got device='{device}'; use device=cpu")


def build_task(cfg: TaskConfig, seed: int = 0, device: str = "cpu", progress: bool | None = False) -> Task:
    check_cpu_device(device)
    cfg.check()
    device = "cpu"
    if cfg.prior_targets not in ("data", "mother"):
        raise ConfigError(f"prior_targets must be 'data' or 'mother', got '{cfg.prior_targets}'")
    seed_everything(seed)
    if cfg.kind == "digits":
        train, test = digits_sequences(seed)
        mother = nara_made(64, cfg.hidden)
    else:
        train = sequence_task(cfg.kind, cfg.n_train, cfg.length, seed=seed)
        test = sequence_task(cfg.kind, cfg.n_test, cfg.length, seed=seed + 10_000)
        mother = nara_causal_conv(cfg.length, cfg.channels, 2, cfg.dilations)
    n = mother.length
    hist = {}
    fits = [cfg.mother, cfg.prior, cfg.confidence]
    for f in fits:
        f.seed, f.device = seed, device
    hist["mother"] = fit_mother(mother, train, cfg.mother, progress=progress)
    for p in mother.parameters():
        p.requires_grad_(False)
    prior = PriorPredictor(n, mother.family, tuple(cfg.prior_hidden))
    targets = train
    if cfg.prior_targets == "mother":
        gen = torch.Generator().manual_seed(seed + 2)
        ctx = train[:, : cfg.observed] if cfg.observed else None
        targets = sample_sequential(mother, batch=len(train), context=ctx, generator=gen).x
    hist["prior"] = fit_prior(prior, targets, cfg.prior, start=cfg.observed, progress=progress)
    for p in prior.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed + 1)
    ctx = None
    if cfg.observed:
        idx = torch.randint(0, len(train), (cfg.confidence_states,), generator=gen)
        ctx = train[idx, : cfg.observed]
    states = confidence_states(mother, prior, cfg.confidence_states, context=ctx, sweeps=cfg.sweeps,
                               delta=cfg.delta, generator=gen)
    confidence = ConfidencePredictor(n, mother.family, tuple(cfg.confidence_hidden))
    hist["confidence"] = fit_confidence(confidence, states, cfg.confidence, progress=progress)
    hist["confidence_positive_rate"] = states.positive_rate
    for p in confidence.parameters():
        p.requires_grad_(False)
    return Task(cfg.kind, mother.eval(), prior.eval(), confidence.eval(), train, test, cfg.observed, hist)
