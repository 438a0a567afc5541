"""The two demo tasks end to end: data -> mother AR -> Q -> C (used by the experiment and the
benchmark)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torch import nn

from reprozoo.errors import ConfigError
from reprozoo.nara.data import digits_sequences, sequence_task
from reprozoo.nara.models import nara_causal_conv, nara_made
from reprozoo.nara.predictors import PriorPredictor, make_confidence
from reprozoo.nara.protocol import Gaussian, ModuleAR
from reprozoo.nara.samplers import draw_noise, sample_sequential
from reprozoo.nara.training import FitConfig, confidence_states, fit_confidence, fit_mother, fit_prior
from reprozoo.runtime.accel import resolve_device

logger = logging.getLogger(__name__)


@dataclass
class TaskConfig:
    """One demo task. ``kind``: digits | sine | ar2. ``observed``: prefix length P0 given as
    context (0 = unconditional)."""

    kind: str = "digits"
    length: int = 64
    observed: int = 0
    n_train: int = 4000  # sequences only; digits use the fixed 1,500 / 297 split
    n_test: int = 500
    n_reference: int = 300  # sequences only: held-out data for MMD / autocorrelation
    hidden: tuple[int, ...] = (256, 256)  # MADE hidden sizes
    channels: int = 64  # causal conv channels
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16)
    mother: FitConfig = field(default_factory=lambda: FitConfig(epochs=60, batch_size=100))
    prior: FitConfig = field(default_factory=lambda: FitConfig(epochs=60, batch_size=100))
    prior_hidden: tuple[int, ...] = (256, 256)
    prior_targets: str = "data"  # data (maximum likelihood) | mother (distillation on the mother's samples)
    confidence: FitConfig = field(default_factory=lambda: FitConfig(epochs=20, batch_size=200))
    confidence_kind: str = "local"  # local (per-position, cheap) | global (MLP over the whole canvas)
    confidence_hidden: tuple[int, ...] = (16,)
    confidence_states: int = 8000
    sweeps: int = 3  # max extra refinement sweeps when making C's training states
    delta: float = 0.5  # continuous label: |x_new - x_ref| < delta * sigma

    def check(self, name: str = "task") -> None:
        """Ranges of the task options; at least one position must be left to generate after the prefix."""
        if self.confidence_kind not in ("local", "global"):
            raise ConfigError(f"{name}.confidence_kind must be 'local' or 'global', got '{self.confidence_kind}'")
        if self.kind != "digits" and self.n_reference < 2:
            raise ConfigError(f"{name}.n_reference must be >= 2 held-out sequences, got {self.n_reference}")
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
    """A trained task. ``test``: held-out sequences whose rows ``[0, n)`` / ``[n, 2n)`` give the
    validation / test prefixes; ``reference``: held-out data for distribution statistics (MMD,
    autocorrelation) that no sampler's prefixes come from; ``sigma``: the mother's median noise
    scale on training sequences (the unit of tolerance Jacobi's tolerance; 1 for discrete tasks)."""

    kind: str
    mother: ModuleAR
    prior: PriorPredictor
    confidence: nn.Module
    train: torch.Tensor
    test: torch.Tensor
    start: int
    history: dict = field(default_factory=dict)
    reference: torch.Tensor | None = None
    sigma: float = 1.0

    @property
    def device(self) -> torch.device:
        return self.train.device

    def context(self, n: int, offset: int = 0) -> torch.Tensor | None:
        """Observed prefixes of ``n`` test sequences (cycled), or None for unconditional tasks."""
        if self.start == 0:
            return None
        idx = (torch.arange(n, device=self.test.device) + offset) % len(self.test)
        return self.test[idx, : self.start]

    def untrained(self, seed: int, confidence_kind: str, confidence_hidden: tuple[int, ...],
                  prior_hidden: tuple[int, ...]) -> tuple[PriorPredictor, nn.Module]:
        """Q and C as initialised, never trained (the negative control), built without touching the
        global random streams."""
        n, fam = self.mother.length, self.mother.family
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 3)
            prior = PriorPredictor(n, fam, tuple(prior_hidden))
            conf = make_confidence(confidence_kind, n, fam, tuple(confidence_hidden))
        return prior.to(self.device).eval(), conf.to(self.device).eval()


@torch.no_grad()
def noise_scale(mother: ModuleAR, data: torch.Tensor, start: int, rows: int = 500) -> float:
    """Median conditional sigma of a Gaussian mother over (training) sequences; 1 otherwise."""
    if not isinstance(mother.family, Gaussian):
        return 1.0
    params = mother.conditionals(data[:rows])
    return float(mother.family.scale(params)[:, start:].median())


def build_task(cfg: TaskConfig, seed: int = 0, device: str = "auto", progress: bool | None = False) -> Task:
    """Data -> mother -> Q -> C on ``device`` (models, data and noise on the same device)."""
    cfg.check()
    device = resolve_device(device)
    if cfg.prior_targets not in ("data", "mother"):
        raise ConfigError(f"prior_targets must be 'data' or 'mother', got '{cfg.prior_targets}'")
    with torch.random.fork_rng(devices=[]):  # deterministic in ``seed``; the caller's streams untouched
        torch.manual_seed(seed)
        return _build(cfg, seed, device, progress)


def _build(cfg: TaskConfig, seed: int, device: str, progress: bool | None) -> Task:
    if cfg.kind == "digits":
        train, test = digits_sequences(seed)
        reference = test
        mother = nara_made(64, cfg.hidden)
    else:
        train = sequence_task(cfg.kind, cfg.n_train, cfg.length, seed=seed)
        test = sequence_task(cfg.kind, cfg.n_test, cfg.length, seed=seed + 10_000)
        reference = sequence_task(cfg.kind, cfg.n_reference, cfg.length, seed=seed + 20_000)
        mother = nara_causal_conv(cfg.length, cfg.channels, 2, cfg.dilations)
    n = mother.length
    hist = {}
    for f in (cfg.mother, cfg.prior, cfg.confidence):
        f.seed, f.device = seed, device
    logger.info("nara %s task, seed %d: training the mother on %d sequences (%s)", cfg.kind, seed, len(train), device)
    hist["mother"] = fit_mother(mother, train, cfg.mother, progress=progress)
    mother = mother.to(device).eval()
    for p in mother.parameters():
        p.requires_grad_(False)
    train, test, reference = train.to(device), test.to(device), reference.to(device)
    prior = PriorPredictor(n, mother.family, tuple(cfg.prior_hidden))
    targets = train
    if cfg.prior_targets == "mother":
        gen = torch.Generator().manual_seed(seed + 2)
        ctx = train[:, : cfg.observed] if cfg.observed else None
        targets = sample_sequential(mother, batch=len(train), context=ctx,
                                    noise=draw_noise(mother, len(train), gen)).x
    hist["prior"] = fit_prior(prior, targets.cpu(), cfg.prior, start=cfg.observed, progress=progress)
    prior = prior.to(device).eval()
    for p in prior.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed + 1)
    ctx = None
    if cfg.observed:
        idx = torch.randint(0, len(train), (cfg.confidence_states,), generator=gen)
        ctx = train[idx.to(device), : cfg.observed]
    logger.info("nara %s task, seed %d: %d confidence states, then C", cfg.kind, seed, cfg.confidence_states)
    states = confidence_states(mother, prior, cfg.confidence_states, context=ctx, sweeps=cfg.sweeps,
                               delta=cfg.delta, generator=gen)
    confidence = make_confidence(cfg.confidence_kind, n, mother.family, tuple(cfg.confidence_hidden))
    hist["confidence"] = fit_confidence(confidence, states, cfg.confidence, progress=progress)
    hist["confidence_positive_rate"] = states.positive_rate
    confidence = confidence.to(device).eval()
    for p in confidence.parameters():
        p.requires_grad_(False)
    sigma = noise_scale(mother, train, cfg.observed)
    return Task(cfg.kind, mother, prior, confidence, train, test, cfg.observed, hist, reference, sigma)
