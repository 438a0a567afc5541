"""One-shot supernet training with uniform single-path sampling (SPOS, Guo et al. 2020) on the
runtime trainer, and BatchNorm recalibration of a sampled path.

Per training step one genotype is drawn uniformly (every edge op independently) and the batch
runs forward/backward through that path only. The weights before the first step (theta_init)
are kept: the angle proxy compares them with the trained ones.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import ConfigError, DataError
from reprozoo.genas.spaces import NB201_EDGES, NB201_OPS, NB201Genotype
from reprozoo.runtime.fit_folder import atomic_save, describe_model, prepare_out_dir
from reprozoo.runtime.trainer import TrainConfig, Trainer


@dataclass
class SupernetConfig:
    epochs: int = 60
    lr: float = 0.05
    lr_min: float = 0.0  # cosine floor (NAS-Bench-201 / GeNAS: 0.001 with lr 0.025)
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    batch_size: int = 64
    grad_clip: float = 5.0
    # train on uniformly random labels (RLNAS's option in the GeNAS code, `--random_label`): the GeNAS
    # README trains with `--random_label 0` (ground truth), the argument's default is 1
    random_labels: bool = False
    label_seed: int | None = None  # None: the training seed (the official code uses its --seed)

    def validate(self) -> None:
        if self.epochs < 0 or self.batch_size < 1:
            raise ConfigError(f"supernet epochs must be >= 0 and batch_size >= 1, got {self.epochs}, {self.batch_size}")
        for name in ("lr", "lr_min", "momentum", "weight_decay", "grad_clip"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise ConfigError(f"supernet {name} must be a finite number >= 0, got {v}")
        if self.lr_min > self.lr:
            raise ConfigError(f"supernet lr_min ({self.lr_min}) must not exceed lr ({self.lr})")


class UniformPathSampler:
    """Draws NAS-Bench-201 genotypes uniformly with its own ``torch.Generator``."""

    def __init__(self, seed: int = 0):
        self.generator = torch.Generator().manual_seed(int(seed))

    def __call__(self) -> NB201Genotype:
        codes = torch.randint(len(NB201_OPS), (len(NB201_EDGES),), generator=self.generator).tolist()
        return NB201Genotype.from_codes(codes)

    def skip(self, draws: int) -> None:
        """Advance the generator past ``draws`` draws (a resumed training continues the path sequence)."""
        for _ in range(draws):
            torch.randint(len(NB201_OPS), (len(NB201_EDGES),), generator=self.generator)


class SPOSStep:
    """``step_fn`` for the trainer: sample a path, set it, cross-entropy on the batch."""

    def __init__(self, sampler: Callable[[], Any]):
        self.sampler = sampler
        self.history: list[int] = []

    def __call__(self, model: nn.Module, batch: Any) -> dict[str, Any]:
        g = self.sampler()
        getattr(model, "module", model).set_genotype(g)
        x, y = batch[0], batch[1]
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        return {"loss": loss, "acc": (logits.argmax(1) == y).float().mean().item()}


def random_labels(n: int, num_classes: int, seed: int) -> torch.Tensor:
    """``n`` labels uniform in ``0..num_classes-1``, as the official random-label datasets draw
    them: numpy's legacy generator seeded with ``seed``, then ``randint(0, num_classes, n)``."""
    if n < 0 or num_classes < 1:
        raise ConfigError(f"random labels need n >= 0 and num_classes >= 1, got {n} and {num_classes}")
    return torch.as_tensor(np.random.RandomState(int(seed)).randint(0, num_classes, n), dtype=torch.long)


class RandomLabelDataset:
    """``dataset`` with its labels replaced by :func:`random_labels` (fixed for the whole training)."""

    def __init__(self, dataset, num_classes: int, seed: int):
        self.dataset, self.labels = dataset, random_labels(len(dataset), num_classes, seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        item = self.dataset[i]
        return (item[0], self.labels[i], *item[2:])


def sgd_cosine(model: nn.Module, cfg: SupernetConfig, epochs: int):
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                          weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1), eta_min=cfg.lr_min)
    return opt, sched


def train_supernet(model: nn.Module, train_data, cfg: SupernetConfig, *, seed: int = 0,
                   out_dir: str | Path | None = None, resume: bool = False,
                   sampler: Callable[[], Any] | None = None, progress: bool | None = False,
                   device: str = "auto") -> dict[str, torch.Tensor]:
    """Train ``model`` in place with SPOS; returns theta_init (a state-dict copy from before the first step).

    ``cfg.random_labels`` trains on random labels (seeded by ``cfg.label_seed``, else ``seed``). With
    ``out_dir`` every epoch writes ``checkpoints/last.pt`` (and theta_init goes to ``theta_init.pt``);
    an ``out_dir`` that holds a run is refused without ``resume=True``, and a resume must use the run's
    settings (only ``device`` may change), :mod:`reprozoo.runtime.fit_folder`. A resume returns the
    run's theta_init and continues the default sampler's path sequence (a ``sampler`` of your own
    continues from the state it has)."""
    cfg.validate()
    settings = {"call": "train_supernet", **asdict(cfg), "seed": seed, "model": describe_model(model),
                "train_data": len(train_data), "sampler": "uniform" if sampler is None else type(sampler).__name__}
    # the rule is applied here, before theta_init is saved, and again (the same check) by the trainer
    again = prepare_out_dir(out_dir, settings, resume=resume, free=("device",), write=False)
    if cfg.random_labels:
        num_classes = getattr(model, "num_classes", None)
        if not num_classes:
            raise ConfigError("random-label training needs a model with a num_classes attribute")
        train_data = RandomLabelDataset(train_data, num_classes, seed if cfg.label_seed is None else cfg.label_seed)
    theta_path = Path(out_dir) / "theta_init.pt" if out_dir is not None else None
    if again and theta_path.is_file():
        theta_init = torch.load(theta_path, map_location="cpu", weights_only=True)
    else:
        theta_init = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if theta_path is not None:
            atomic_save(theta_init, theta_path)
    opt, sched = sgd_cosine(model, cfg, cfg.epochs)
    tc = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, grad_clip=cfg.grad_clip, seed=seed,
                     device=device, checkpoint_every=1 if out_dir is not None else 0)
    paths = sampler or UniformPathSampler(seed)
    trainer = Trainer(model, opt, train_data, tc, step_fn=SPOSStep(paths), scheduler=sched, out_dir=out_dir,
                      progress=progress, settings=settings, free_on_resume=("device",))
    if again and isinstance(paths, UniformPathSampler):
        done = int(torch.load(trainer.checkpoint_path, map_location="cpu", weights_only=True)["epoch"]) + 1
        paths.skip(done * len(trainer.train_loader))
    trainer.fit(resume=resume)
    return theta_init


def train_standalone(model: nn.Module, train_data, cfg: SupernetConfig, *, seed: int = 0,
                     device: str = "cpu") -> nn.Module:
    """Train a stand-alone network from scratch with the same SGD + cosine recipe."""
    cfg.validate()
    opt, sched = sgd_cosine(model, cfg, cfg.epochs)
    tc = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, grad_clip=cfg.grad_clip, seed=seed,
                     device=device, checkpoint_every=0)
    trainer = Trainer(model, opt, train_data, tc, scheduler=sched, progress=False)
    trainer.fit()
    return trainer.unwrapped_model()


# ------------------------------------------------------------------------------ BN recalibration
RECAL_MODES = ("momentum", "cumulative")


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Sequence[Any], mode: str = "momentum", momentum: float = 0.1) -> None:
    """SPOS BatchNorm recalibration of the active path: reset every BN's running mean to 0 and
    var to 1, run train-mode forwards on ``batches`` (training data), then switch to eval mode.

    ``mode="momentum"`` keeps the exponential moving average with ``momentum`` (0.1, as the
    official code: after n batches 0.9**n of the reset values remain); ``"cumulative"`` uses
    the exact average over the batches."""
    if mode not in RECAL_MODES:
        raise ConfigError(f"BN recalibration mode must be one of {', '.join(RECAL_MODES)}, got '{mode}'")
    if len(batches) == 0:
        raise DataError("BN recalibration needs at least one training batch")
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None if mode == "cumulative" else momentum
    model.train()
    try:
        for batch in batches:
            model(batch[0])
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
        model.eval()


def state_snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Clones of every parameter and buffer (restore with :func:`restore_snapshot`)."""
    return {k: v.detach().clone() for k, v in model.state_dict(keep_vars=False).items()}


@torch.no_grad()
def restore_snapshot(model: nn.Module, snap: dict[str, torch.Tensor]) -> None:
    for k, v in model.state_dict().items():
        v.copy_(snap[k])


def copy_model(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model)


def batches_of(dataset, batch_size: int, limit: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A dataset as a list of ``(x, y)`` batches in order (``limit`` images at most; 0 = all)."""
    n = len(dataset)
    if limit:
        n = min(n, limit)
    if n == 0:
        raise DataError("the dataset is empty")
    xs, ys = zip(*(dataset[i] for i in range(n)))
    x, y = torch.stack(list(xs)), torch.as_tensor(np.asarray([int(t) for t in ys]))
    return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, n, batch_size)]


def fit_in_memory(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: SupernetConfig, *,
                  seed: int = 0, step_fn: Callable[[nn.Module, Any], Any] | None = None) -> nn.Module:
    """The same SGD + cosine recipe as :func:`train_standalone` for data that fits in one tensor:
    a plain loop over seeded permutations (about 1.5x faster than the general trainer on tiny
    nets, which matters when hundreds of ground-truth networks are trained on a CPU)."""
    cfg.validate()
    if len(x) == 0:
        raise DataError("the training set is empty")
    opt, sched = sgd_cosine(model, cfg, cfg.epochs)
    gen = torch.Generator().manual_seed(int(seed))
    model.train()
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            if step_fn is None:
                loss = F.cross_entropy(model(x[idx]), y[idx])
            else:
                out = step_fn(model, (x[idx], y[idx]))
                loss = out["loss"] if isinstance(out, dict) else out
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
        sched.step()
    model.eval()
    return model
