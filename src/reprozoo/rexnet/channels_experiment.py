"""Experiment ``rexnet-channels``: the paper's architecture claim at CPU scale.

The paper's channel-configuration search (Sec. 4, CIFAR) finds that a channel width growing
*linearly* with the block index beats the stage-wise (piecewise-constant, MobileNetV2-style)
configuration at equal FLOPs, and ReXNet adds SiLU after every expansion layer. Here four networks
from one builder (:func:`reprozoo.rexnet.study.build_study_model`: ReXNet's 16-block skeleton,
total stride 8 for 32x32 inputs) at equal MACs (within 5%, checked before training) are trained
identically on noisy shifted digits (:mod:`reprozoo.data.noisy_digits`) over >= 3 seeds:

- ``rexnet``: linear schedule, SiLU after stem / expansions / penultimate conv (the method);
- ``mbv2``: stage-wise schedule, ReLU6 everywhere (the MobileNetV2 configuration);
- ``linear_relu6`` and ``stagewise_silu``: the two crossed ablations;
- ``control`` (negative control): linear schedule with *no* activation after the stem, the
  expansion 1x1 convs and the penultimate conv (the paper's rank argument says this is worse).

Headline (:func:`reprozoo.runtime.verdict.headline`, rule and ``ACC_MARGIN`` fixed before the first
quick run): ``rexnet`` beats the strongest of the three alternatives (by mean) by more than
``ACC_MARGIN``: the one-sided 95% lower bound of the mean paired gain over seeds must exceed
``ACC_MARGIN`` ("not held" when the upper bound is below it, "inconclusive" otherwise). The control
must lose to ``rexnet`` by the same test, else the headline is "inconclusive". The design (SESOI,
pilot SD, seeds for 80% power) is :data:`PLAN`. The schedule and activation effects are sub-claims
read from the 2x2 design, each by the same superiority test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
import torch

from reprozoo.errors import ConfigError, DataError
from reprozoo.rexnet.study import MAC_TOLERANCE, Arm, build_study_model, equal_mac_arms
from reprozoo.runtime.config import ExperimentConfig
from reprozoo.runtime.evaluation import accuracy
from reprozoo.runtime.figures import pyplot, save_figure
from reprozoo.runtime.profile import count_params
from reprozoo.runtime.registry import register_experiment
from reprozoo.runtime.report import ExperimentResult
from reprozoo.runtime.trainer import TrainConfig, Trainer
from reprozoo.runtime.trials import Trial
from reprozoo.runtime.verdict import Headline, Plan, claim, headline, superiority

PAPER = "Han et al., Rethinking Channel Dimensions for Efficient Model Design (ReXNet), CVPR 2021"
CLAIM = ("At equal MACs, ReXNet's configuration (channel width growing linearly with the block index, SiLU after "
         "each expansion layer) is more accurate than the stage-wise MobileNetV2 configuration with ReLU6 and than "
         "either change alone.")

ACC_MARGIN = 0.01  # absolute test accuracy; fixed before the first quick run
MIN_SEEDS = 3
PLAN = Plan(
    sesoi=0.023,
    sesoi_source=("the paper's ImageNet table: ReXNet-1.0x 77.9% vs MobileNetV2 73.1% top-1 (error 26.9% -> 22.1%, "
                  "-18% relative) for both changes together, applied as a relative error reduction to the "
                  "strongest single-change arm's error in the pilot run (1 - 0.744 = 0.256 -> 0.046) and halved, "
                  "since the headline arm differs from it by one of the two changes and the paper does not "
                  "split the gain"),
    margin=ACC_MARGIN,
    pilot_sd=0.0275,
    pilot_source=("quick run of record in docs/rexnet.md (seeds 0/1/2): SD of the paired differences rexnet - "
                  "linear_relu6 = +0.089 / +0.103 / +0.050"),
)
METHOD, CONTROL = "rexnet", "control"
ALTERNATIVES = ("mbv2", "linear_relu6", "stagewise_silu")
ARM_SETTINGS = {  # arm -> (schedule, activation after stem / expansions / penultimate conv)
    "rexnet": ("linear", "silu"),
    "mbv2": ("stagewise", "relu6"),
    "linear_relu6": ("linear", "relu6"),
    "stagewise_silu": ("stagewise", "silu"),
    "control": ("linear", "identity"),
}
LABELS = {"rexnet": "linear + SiLU (ReXNet)", "mbv2": "stage-wise + ReLU6 (MobileNetV2)",
          "linear_relu6": "linear + ReLU6", "stagewise_silu": "stage-wise + SiLU",
          "control": "linear, no act. after expansion (control)"}


@dataclass
class ChannelsConfig(ExperimentConfig):
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    width_mult: float = 0.25  # every arm; stage-wise widths are matched to the linear MACs
    # data: noisy shifted digits (calibrated so the stage-wise network lands well below 100%)
    train_copies: int = 2  # distorted draws of each of the 1,438 train digits
    test_copies: int = 3  # ... of each of the 359 test digits
    max_train: int = 0  # 0 = all; > 0 truncates (smoke)
    max_test: int = 0
    digit_size: int = 20
    shift: int = 6
    noise: float = 0.0  # calibrated: at 0.1 the stage-wise arm reached 0.36, at 0.0 0.79 (6 epochs)
    contrast_min: float = 0.4
    contrast_max: float = 1.0
    data_seed: int = 0
    # training (the same for every arm): AdamW, warm-up then per-step cosine
    epochs: int = 6
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_epochs: float = 0.5
    dropout: float = 0.0

    PRESETS: ClassVar[dict] = {
        "smoke": {"seeds": [0], "max_train": 64, "max_test": 64, "train_copies": 1, "test_copies": 1, "epochs": 1,
                  "batch_size": 32, "warmup_epochs": 0.0, "executor": {"kind": "serial"}, "device": "cpu"},
        # quick: one copy x 3 epochs at batch 64, lr 5e-3 (<= 400 CPU-s for 15 trials); calibrated on the
        # mbv2 arm alone (seed 0): 0.36 test accuracy at lr 2e-3, 0.46 at lr 5e-3 (chance 0.10)
        "quick": {"device": "cpu", "train_copies": 1, "epochs": 3, "batch_size": 64, "lr": 5e-3},
        "paper": {"seeds": [0, 1, 2, 3, 4], "train_copies": 6, "epochs": 30, "width_mult": 0.5},
    }

    def validate(self) -> None:
        if len(self.seeds) < 1 or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be distinct and non-empty, got {self.seeds}")
        if not 0 < self.width_mult <= 2:
            raise ConfigError(f"width_mult must be in (0, 2] for 32x32 inputs, got {self.width_mult}")
        if self.train_copies < 1 or self.test_copies < 1 or self.max_train < 0 or self.max_test < 0:
            raise ConfigError("train_copies and test_copies must be >= 1, max_train and max_test >= 0 (0 = all)")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if not (self.lr > 0 and self.weight_decay >= 0 and self.warmup_epochs >= 0):
            raise ConfigError("lr > 0, weight_decay >= 0 and warmup_epochs >= 0 are required")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        from reprozoo.data.noisy_digits import _check

        try:
            _check(32, self.digit_size, self.shift, self.noise, (self.contrast_min, self.contrast_max), 1)
        except DataError as err:
            raise ConfigError(f"noisy-digit settings: {err}") from None


def arms(cfg: ChannelsConfig) -> dict[str, Arm]:
    return {name: Arm(s, a, cfg.width_mult) for name, (s, a) in ARM_SETTINGS.items()}


def data(cfg: ChannelsConfig):
    """``((x_train, y_train), (x_test, y_test))``, generated once per process for given settings."""
    return _data(cfg.train_copies, cfg.test_copies, cfg.max_train, cfg.max_test, cfg.data_seed, cfg.digit_size,
                 cfg.shift, cfg.noise, cfg.contrast_min, cfg.contrast_max)


@lru_cache(maxsize=2)
def _data(train_copies, test_copies, max_train, max_test, seed, digit_size, shift, noise, c_min, c_max):
    from reprozoo.data.noisy_digits import digit_split, noisy_digits

    kw = dict(digit_size=digit_size, shift=shift, noise=noise, contrast=(c_min, c_max))
    tr, te = digit_split()
    if max_train:
        tr = tr[:max_train]
    if max_test:
        te = te[:max_test]
    (xtr, ytr), (xte, yte) = (noisy_digits(tr, copies=train_copies, seed=seed, **kw),
                              noisy_digits(te, copies=test_copies, seed=seed + 1_000_003, **kw))
    if max_train:
        xtr, ytr = xtr[:max_train], ytr[:max_train]
    if max_test:
        xte, yte = xte[:max_test], yte[:max_test]
    return (xtr, ytr), (xte, yte)


def run_one(trial: Trial, tctx) -> dict[str, Any]:
    """Train the network of ``trial.arm`` on the noisy digits and test it."""
    from reprozoo.data.splits import TensorDataset
    from reprozoo.rexnet.training import warmup_cosine

    cfg: ChannelsConfig = tctx.config
    (xtr, ytr), (xte, yte) = data(cfg)
    with torch.random.fork_rng(devices=[]):  # every arm of a seed starts from the same init stream,
        torch.manual_seed(trial.seed)          # without touching the caller's global RNG state
        model = build_study_model(arms(cfg)[trial.arm], drop_rate=cfg.dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = math.ceil(len(xtr) / cfg.batch_size)
    sched = warmup_cosine(opt, steps * cfg.epochs, int(round(cfg.warmup_epochs * steps)))
    tc = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, seed=trial.seed, device=cfg.device,
                     scheduler_interval="step", checkpoint_every=0)
    trainer = Trainer(model, opt, TensorDataset(xtr, ytr), tc, scheduler=sched, progress=False)
    history = trainer.fit()
    return {"arm": trial.arm, "seed": trial.seed, "test_acc": accuracy(trainer.unwrapped_model(), xte, yte),
            "train_loss": history[-1]["train_loss"], "first_loss": history[0]["train_loss"],
            "train_acc": history[-1].get("train_acc", float("nan"))}


# ---------------------------------------------------------------- the rule
def decide(accs: dict[str, list[float]], margin: float = ACC_MARGIN) -> Headline:
    """The headline: ``rexnet`` beats the strongest of :data:`ALTERNATIVES` by more than ``margin``
    (one-sided 95% paired t-interval), gated on the control losing to ``rexnet`` by the same test."""
    return headline(accs[METHOD], {a: accs[a] for a in ALTERNATIVES}, accs[CONTROL], margin=margin,
                    min_seeds=MIN_SEEDS, plan=PLAN, name="test accuracy", control_name=LABELS[CONTROL])


def factor_claims(accs: dict[str, list[float]], margin: float = ACC_MARGIN) -> list[dict]:
    """Sub-claims of the 2x2 design (schedule x activation) and the paper's direct comparison, each
    a superiority test on the paired seeds with the headline's margin."""
    def bt(a: str, b: str, name: str):
        return superiority(accs[a], accs[b], margin=margin, min_seeds=MIN_SEEDS, name=name, other_name=b)

    return [
        claim("ReXNet (linear + SiLU) beats the MobileNetV2 configuration (stage-wise + ReLU6)",
              bt("rexnet", "mbv2", "rexnet vs mbv2 accuracy")),
        claim("The linear schedule beats the stage-wise one with ReLU6", bt("linear_relu6", "mbv2",
                                                                            "linear vs stage-wise (ReLU6)")),
        claim("The linear schedule beats the stage-wise one with SiLU", bt("rexnet", "stagewise_silu",
                                                                           "linear vs stage-wise (SiLU)")),
        claim("SiLU beats ReLU6 after the expansion layers (linear schedule)",
              bt("rexnet", "linear_relu6", "SiLU vs ReLU6 (linear)")),
        claim("SiLU beats ReLU6 after the expansion layers (stage-wise schedule)",
              bt("stagewise_silu", "mbv2", "SiLU vs ReLU6 (stage-wise)")),
    ]


def _figure(ctx, stats: dict[str, tuple[float, float]], accs: dict[str, list[float]]) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    names = list(stats)
    ax.bar(range(len(names)), [stats[n][0] for n in names], yerr=[stats[n][1] for n in names], capsize=4,
           color=["tab:blue" if n == METHOD else "tab:grey" if n == CONTROL else "tab:orange" for n in names])
    for i, n in enumerate(names):
        ax.plot([i] * len(accs[n]), accs[n], "k.", ms=4)
    ax.set_xticks(range(len(names)), [LABELS[n].replace(" (", "\n(") for n in names], fontsize=7)
    ax.set_ylabel("test accuracy (mean ± std, dots = seeds)")
    lo = min(min(v) for v in accs.values())
    ax.set_ylim(max(0.0, lo - 0.05), 1.0)
    fig.tight_layout()
    return save_figure(fig, ctx.out_dir, "accuracy_by_arm")


@register_experiment("rexnet-channels", paper=PAPER, claim=CLAIM, config=ChannelsConfig)
def run_channels(cfg: ChannelsConfig, ctx) -> ExperimentResult:
    study = arms(cfg)
    macs = equal_mac_arms(study, METHOD)  # raises before any training if the arms drift apart
    params = {name: count_params(build_study_model(arm)) for name, arm in study.items()}
    trials = [Trial(arm, s) for arm in study for s in cfg.seeds]
    results = ctx.run_trials(run_one, trials, description="rexnet-channels arms x seeds")
    accs: dict[str, list[float]] = {a: [] for a in study}
    for t, r in zip(trials, results):
        accs[t.arm].append(float(r["test_acc"]))
    head = decide(accs)  # fewer than MIN_SEEDS seeds: inconclusive
    claims = [claim(CLAIM, head, headline=True)] + factor_claims(accs)
    stats = {a: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0) for a, v in accs.items()}
    metrics: dict[str, float] = {}
    rows = []
    widths = {name: build_study_model(arm).schedule.out_channels for name, arm in study.items()}
    for a in study:
        group = "method" if a == METHOD else "control" if a == CONTROL else "baseline"
        metrics[f"{group}/{a}_acc"] = stats[a][0]
        metrics[f"{group}/{a}_acc_std"] = stats[a][1]
        metrics[f"{group}/{a}_macs"] = float(macs[a])
        metrics[f"{group}/{a}_params"] = float(params[a])
        rows.append({"arm": a, "schedule": study[a].schedule, "act": study[a].act,
                     "acc_mean": round(stats[a][0], 4), "acc_std": round(stats[a][1], 4),
                     "accs": ", ".join(f"{v:.4f}" for v in accs[a]), "params": params[a], "macs": macs[a],
                     "widths": " ".join(map(str, widths[a]))})
    loss_drop = [r["first_loss"] - r["train_loss"] for r in results]
    metrics["train/min_loss_drop"] = float(min(loss_drop))
    figures = [_figure(ctx, stats, accs)]
    n_train = len(data(cfg)[0][0])
    notes = (f"noisy digits: {n_train} train images, noise {cfg.noise}, shift ±{cfg.shift}px, digit {cfg.digit_size}px "
             f"on 32x32; width_mult {cfg.width_mult}, total stride 8; AdamW lr {cfg.lr}, weight decay "
             f"{cfg.weight_decay}, {cfg.epochs} epochs, batch {cfg.batch_size}, warm-up + cosine; "
             f"MACs equal within {MAC_TOLERANCE:.0%} (checked); margin {ACC_MARGIN} accuracy (one-sided 95% "
             f"paired t-interval, at least {MIN_SEEDS} seeds; {PLAN.planned_n} seeds planned for 80% power at "
             f"a gain of {PLAN.sesoi}).")
    return ExperimentResult.from_headline(head, metrics, claims=claims, table=rows, figures=figures, notes=notes)
