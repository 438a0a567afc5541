"""Settings of a continual-learning run (:class:`CLSettings`: strategy, memory, optimiser, schedule,
augmentation, votes, EWC) and the per-epoch learning-rate schedule of one training call
(:func:`make_scheduler`, :func:`epoch_lrs`). The strategies that use them are in
:mod:`reprozoo.rainbow.strategies`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from reprozoo.errors import ConfigError, UnknownNameError
from reprozoo.rainbow.augment import PERTURBATIONS, TrainAugment
from reprozoo.rainbow.memory import check_capacity, make_policy

METHODS = ("ewc", "er", "finetune", "gdumb", "rm")
DEFAULT_POLICY = {"rm": "rainbow", "er": "reservoir", "ewc": "reservoir", "gdumb": "balanced",
                  "finetune": "random"}
SCHEDULES = ("constant", "cosine", "warm_restarts")


@dataclass
class CLSettings:
    """Everything a strategy needs besides model and data (field names double as config keys)."""

    method: str = "rm"  # rm | er | gdumb | finetune | ewc
    memory_size: int = 20  # K (finetune ignores it: no memory)
    policy: str = "default"  # default (per method) | rainbow | reservoir | balanced | random | herding
    online: bool = True
    epochs: int = 10  # E: memory epochs (online) or epochs over stream+memory (offline)
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    batch_size: int = 16  # half stream + half memory when memory is non-empty
    memory_batch: int = 8  # batch of the memory-only phase (official quirk: batch_size // 2)
    schedule: str = "cosine"  # cosine (offline demo) | warm_restarts (paper: SGDR T_0=1, T_mult=2) | constant
    eta_min_ratio: float = 0.01
    warmup: bool = True  # epoch 0 of every training call at 0.1 x lr
    reset_head: bool = True
    reset_optimizer: bool = True
    cutmix: bool = False
    cutmix_p: float = 0.5
    cutmix_alpha: float = 1.0
    aug_policy: str = "none"  # none | autoaugment | randaugment (torchvision v2)
    crop_pad: int = 0
    hflip: bool = False
    perturbation: str = "vr_randaug"  # RM votes: vr_randaug (official script) | vr | vr_cutout | vr_autoaug | shift_cutout_noise | randaugment | autoaugment
    n_votes: int = 12
    score_batch: int = 384
    ewc_lambda: float = 100.0
    ewc_mode: str = "online"  # online (single latest penalty) | ema (EWC++: Fisher EMA with ewc_alpha)
    ewc_alpha: float = 0.5
    task_acc: str = "last"  # last | best (legacy, optimistic: best test epoch of the final call)
    eval_batch: int = 512

    def validate(self, num_classes: int | None = None) -> None:
        if self.method not in METHODS:
            raise UnknownNameError(f"unknown method '{self.method}'; choose one of: {', '.join(METHODS)}")
        bad = [n for n in ("lr", "momentum", "weight_decay", "cutmix_p", "cutmix_alpha", "eta_min_ratio",
                           "ewc_lambda", "ewc_alpha") if not math.isfinite(getattr(self, n))]
        if bad:
            raise ConfigError(f"cl.{bad[0]} must be a finite number, got {getattr(self, bad[0])}")
        if self.perturbation not in PERTURBATIONS:
            raise UnknownNameError(f"unknown perturbation '{self.perturbation}'; choose one of: "
                                   f"{', '.join(sorted(PERTURBATIONS))}")
        if self.perturbation == "vr" and self.n_votes != 12:
            raise ConfigError(f"perturbation 'vr' is a fixed list of 12 perturbations; set n_votes=12 (got {self.n_votes})")
        if self.policy != "default":
            make_policy(self.policy) if self.policy != "rainbow" else None
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {list(SCHEDULES)}, got '{self.schedule}'")
        if self.ewc_mode not in ("online", "ema"):
            raise ConfigError(f"ewc_mode must be online or ema, got '{self.ewc_mode}'")
        if self.task_acc not in ("last", "best"):
            raise ConfigError(f"task_acc must be last or best, got '{self.task_acc}'")
        if self.memory_size < 0:
            raise ConfigError(f"memory_size must be >= 0, got {self.memory_size}")
        if self.method != "finetune" and self.memory_size == 0:
            raise ConfigError(f"method '{self.method}' needs a memory: set memory_size > 0")
        if self.method != "finetune" and num_classes is not None:
            check_capacity(self.memory_size, num_classes)
        if self.epochs < 1 or self.batch_size < 2 or self.memory_batch < 1:
            raise ConfigError("epochs must be >= 1, batch_size >= 2 and memory_batch >= 1")
        if not 0.0 <= self.cutmix_p <= 1.0:
            raise ConfigError(f"cutmix_p must be in [0, 1], got {self.cutmix_p}")
        if self.lr <= 0 or self.momentum < 0 or self.weight_decay < 0:
            raise ConfigError(f"SGD needs lr > 0, momentum >= 0 and weight_decay >= 0, got lr={self.lr}, "
                              f"momentum={self.momentum}, weight_decay={self.weight_decay}")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("nesterov needs momentum > 0: set momentum=0.9 or nesterov=false")
        if self.eval_batch < 1 or self.score_batch < 1 or self.n_votes < 1:
            raise ConfigError(f"eval_batch, score_batch and n_votes must be >= 1, got {self.eval_batch}, "
                              f"{self.score_batch}, {self.n_votes}")
        if self.cutmix_alpha <= 0:
            raise ConfigError(f"cutmix_alpha must be > 0 (Beta(alpha, alpha)), got {self.cutmix_alpha}")
        if not 0.0 <= self.eta_min_ratio <= 1.0 or not 0.0 <= self.ewc_alpha <= 1.0 or self.ewc_lambda < 0:
            raise ConfigError(f"eta_min_ratio and ewc_alpha must be in [0, 1] and ewc_lambda >= 0, got "
                              f"{self.eta_min_ratio}, {self.ewc_alpha}, {self.ewc_lambda}")
        TrainAugment(self.crop_pad, self.hflip, self.aug_policy)

    @property
    def policy_name(self) -> str:
        return DEFAULT_POLICY[self.method] if self.policy == "default" else self.policy


def make_scheduler(opt: torch.optim.Optimizer, epochs: int, schedule: str, warmup: bool,
                   eta_min_ratio: float) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-epoch learning-rate schedule of one training call of ``epochs`` epochs, stepped once
    after every epoch: optionally a warm-up epoch at 0.1 x lr, then ``cosine`` (one cosine decay
    to ``eta_min_ratio`` x lr over the remaining epochs), ``warm_restarts`` (the paper's SGDR,
    ``CosineAnnealingWarmRestarts(T_0=1, T_mult=2)``: cycles of 1, 2, 4, ... epochs) or ``constant``."""
    from torch.optim import lr_scheduler as sch

    base = opt.param_groups[0]["lr"]
    eta_min = eta_min_ratio * base
    span = max(1, epochs - (1 if warmup else 0))
    main: sch.LRScheduler
    if schedule == "cosine":
        main = sch.CosineAnnealingLR(opt, T_max=span, eta_min=eta_min)
    elif schedule == "warm_restarts":
        main = sch.CosineAnnealingWarmRestarts(opt, T_0=1, T_mult=2, eta_min=eta_min)
    else:
        main = sch.ConstantLR(opt, factor=1.0, total_iters=0)
    if not warmup:
        return main
    warm = sch.ConstantLR(opt, factor=0.1, total_iters=1)
    return sch.SequentialLR(opt, [warm, main], milestones=[1])


def epoch_lrs(epochs: int, base: float, schedule: str, warmup: bool, eta_min_ratio: float) -> list[float]:
    """The learning rate of each epoch of one training call (what :func:`make_scheduler` gives)."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    sched = make_scheduler(opt, epochs, schedule, warmup, eta_min_ratio)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out
