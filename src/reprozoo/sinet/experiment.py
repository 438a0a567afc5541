"""Experiments ``sinet-portrait`` (the paper's accuracy-per-parameter claim) and ``sinet-ablations``
(its decoder, pooling and extra-data ablations), on generated portraits or EG1800.

``sinet-portrait``: SINet (86.9K parameters) against the strongest simple alternative, torchvision's
LR-ASPP MobileNetV3 (3.2M, 37x more), trained identically. The paper's claim is that SINet is close
in accuracy at far fewer parameters (within about 1 point of PortraitNet at 1/24 of its size), so the
headline is a non-inferiority test: the one-sided 95% lower bound of the mean paired difference of
per-image test fg IoU (SINet - alternative) must lie above ``-HEADLINE_MARGIN``. Gates: the
decoder-less SINet (negative control) must lose by more than ``CONTROL_MARGIN``; SINet must beat
itself trained for a quarter of its epochs by more than the margin (positive control: the benchmark
resolves a gap of the margin's size); calibration: the alternative's interval lies in ``CALIBRATED``
and every model's validation IoU has plateaued (a rise of at most ``PLATEAU_IOU`` points over the
last fifth of its epochs), so neither model is compared half-trained.

``sinet-ablations``: the parameter-identical decoder ablations (information blocking vs plain skip vs
no skip) fine-tuned from one shared stage-1 encoder per seed (same initial decoder weights and the
same augmentation stream, so the variants are paired), superiority at ``DECODER_MARGIN``. Gates: the
decoder-less control must lose by more than ``CONTROL_MARGIN``; SINet at a quarter of its epochs must
lose (positive control); the shared encoder must have converged (mechanism: the last tenth of stage 1
made at most ``PLATEAU_LOSS`` of its train loss's whole fall). Pooling and the extra-data trick are
sub-claims (superiority at ``ABLATION_MARGIN``).

The rules live in :mod:`reprozoo.sinet.experiment_rules` and cannot be overridden from the command line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from reprozoo.errors import ConfigError
from reprozoo.runtime.config import ExperimentConfig
from reprozoo.runtime.registry import register_experiment
from reprozoo.runtime.report import ExperimentResult
from reprozoo.runtime.verdict import INCONCLUSIVE
from reprozoo.sinet.arms import (
    EXTRA_DATA,
    baseline_stage,
    datasets,
    encoder_trial,
    lraspp_trial,
    run_one,
    sinet_trial,
)
from reprozoo.sinet.experiment_report import (
    bar_figure,
    copy_checkpoint,
    data_note,
    gate_figure,
    metrics_of,
    prediction_figure,
    rows,
)
from reprozoo.sinet.experiment_rules import (  # noqa: F401  (re-exported: the rules of these experiments)
    ABLATION_MARGIN,
    ABLATIONS_CLAIM,
    ABLATIONS_PLAN,
    CALIBRATED,
    CLAIM,
    CONTROL_MARGIN,
    DECODER_MARGIN,
    HEADLINE_MARGIN,
    MIN_SEEDS,
    PLATEAU_IOU,
    PLATEAU_LOSS,
    PORTRAIT_PLAN,
    QUARTER,
    decide_ablations,
    decide_portrait,
    encoder_converged,
    iou_plateau,
)
from reprozoo.sinet.training import StageConfig

PAPER = ("Park et al., SINet: Extreme Lightweight Portrait Segmentation Networks with Spatial Squeeze "
         "Modules and Information Blocking Decoder (WACV 2020)")
ABLATION_ARMS = ("plain", "none", "unpooled", "no_boundary", "naive", "crop")
_LOCKED = {"margin": "rule constants are fixed in code"}


@dataclass
class Augment:
    """The paper's training augmentation (section on data augmentation, borrowed from PortraitNet);
    the defaults are the paper's values, the quick presets use milder geometry (documented)."""

    rotation: float = 45.0  # degrees, uniform +-
    scale: float = 0.5  # scale ~ U(1 - scale, 1 + scale)
    shift: float = 0.25  # fraction of the image size, uniform +-
    p_color: float = 0.5
    p_blur: float = 0.5
    p_noise: float = 0.5

    def validate(self) -> None:
        if not 0 <= self.rotation <= 180:
            raise ConfigError(f"augment.rotation must be in [0, 180] degrees, got {self.rotation}")
        if not 0 <= self.scale < 1:
            raise ConfigError(f"augment.scale must be in [0, 1) (scale ~ U(1-s, 1+s)), got {self.scale}")
        if not 0 <= self.shift <= 1:
            raise ConfigError(f"augment.shift must be in [0, 1], got {self.shift}")
        for name in ("p_color", "p_blur", "p_noise"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"augment.{name} must be a probability in [0, 1], got {getattr(self, name)}")


@dataclass
class PortraitConfig(ExperimentConfig):
    """Fields shared by the SINet experiments (the paper's values by default)."""

    image_size: int = 224  # must be a multiple of 32
    n_train: int = 1500
    n_val: int = 300
    n_test: int = 300
    hardness: float = 0.5
    data_seed: int = 0
    augment: Augment = field(default_factory=Augment)
    stage1: StageConfig = field(default_factory=lambda: StageConfig(epochs=300, batch_size=36))
    stage2: StageConfig = field(default_factory=lambda: StageConfig(epochs=300, batch_size=24))
    baseline_epochs: int = 0  # 0 = stage1.epochs + stage2.epochs
    baseline_lr: float = 0.0  # LR-ASPP's learning rate; 0 = stage2.lr
    n_extra: int = 0  # full-body scenes for the extra-data arms
    save_checkpoint: bool = True
    requires_data_root: bool = False  # set by the paper preset: it trains on EG1800

    NEEDS_DATA_ROOT: ClassVar[tuple[str, ...]] = ("paper",)
    LOCKED: ClassVar[dict[str, str]] = _LOCKED

    def validate(self) -> None:
        if self.image_size < 32 or self.image_size % 32:
            raise ConfigError(f"image_size must be a multiple of 32 (>= 32), got {self.image_size}")
        if min(self.n_train, self.n_val, self.n_test) < 1:
            raise ConfigError("n_train, n_val and n_test must be >= 1")
        if self.baseline_epochs < 0:
            raise ConfigError(f"baseline_epochs must be >= 0 (0 = stage1 + stage2 epochs), got {self.baseline_epochs}")
        if not (self.baseline_lr >= 0 and math.isfinite(self.baseline_lr)):
            raise ConfigError(f"baseline_lr must be >= 0 (0 = stage2.lr), got {self.baseline_lr}")
        if self.n_extra < 0:
            raise ConfigError(f"n_extra must be >= 0, got {self.n_extra}")
        if not 0.0 <= self.hardness <= 1.0:
            raise ConfigError(f"hardness must be in [0, 1], got {self.hardness}")
        if self.requires_data_root and not self.data_root:
            raise ConfigError("the paper preset trains on EG1800: pass --set data_root=/path/EG1800 "
                              "(or use --preset quick for generated portraits)")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be distinct, got {self.seeds}")
        self.augment.validate()
        self.stage1.validate()
        self.stage2.validate()


_PAPER_PRESET = {"image_size": 224, "n_train": 1500, "n_val": 300, "n_test": 300, "seeds": [0, 1, 2],
                 "requires_data_root": True}
_MILD = {"rotation": 10.0, "scale": 0.15, "shift": 0.075}  # the quick/full presets' milder geometry


@dataclass
class SINetPortraitConfig(PortraitConfig):
    positive_control: bool = True  # SINet at a quarter of its epochs (both stages)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"image_size": 64, "n_train": 16, "n_val": 8, "n_test": 8, "seeds": [0],
                  "stage1": {"epochs": 1, "batch_size": 8}, "stage2": {"epochs": 1, "batch_size": 8}},
        # quick: the demo (underpowered); 96 px, 128 training portraits (docs/experiments/sinet.md lists the calibration)
        "quick": {"image_size": 96, "n_train": 128, "n_val": 48, "n_test": 96, "seeds": [0, 1, 2],
                  "hardness": 0.25, "augment": _MILD,
                  "stage1": {"epochs": 12, "batch_size": 8, "lr": 2e-3},
                  "stage2": {"epochs": 12, "batch_size": 8, "lr": 2e-3}},
        # full: seeds from PORTRAIT_PLAN (plan 2); LR-ASPP does not plateau at this budget (docs/experiments/sinet.md)
        "full": {"image_size": 96, "n_train": 128, "n_val": 48, "n_test": 256, "seeds": list(range(6, 14)),
                 "hardness": 0.25, "augment": _MILD, "save_checkpoint": False,
                 "stage1": {"epochs": 24, "batch_size": 8, "lr": 2e-3},
                 "stage2": {"epochs": 24, "batch_size": 8, "lr": 2e-3}, "baseline_epochs": 48},
        "paper": _PAPER_PRESET,
    }


@dataclass
class SINetAblationsConfig(PortraitConfig):
    arms: list[str] = field(default_factory=lambda: list(ABLATION_ARMS))  # blocking always runs
    n_extra: int = 1500
    positive_control: bool = True  # SINet at a quarter of its epochs (both stages)

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"image_size": 64, "n_train": 16, "n_val": 8, "n_test": 8, "n_extra": 8, "seeds": [0],
                  "stage1": {"epochs": 1, "batch_size": 8}, "stage2": {"epochs": 1, "batch_size": 8}},
        # quick: the demo with every sub-claim (underpowered)
        "quick": {"image_size": 64, "n_train": 96, "n_val": 48, "n_test": 96, "n_extra": 96,
                  "seeds": [0, 1, 2], "hardness": 0.25, "arms": ["plain", "none", "unpooled", "naive", "crop"],
                  "augment": _MILD,
                  "stage1": {"epochs": 5, "batch_size": 16, "lr": 2e-3},
                  "stage2": {"epochs": 5, "batch_size": 16, "lr": 2e-3}},
        # full: the decoder headline only, encoder trained to its train-loss plateau, seeds from ABLATIONS_PLAN
        "full": {"image_size": 64, "n_train": 128, "n_val": 48, "n_test": 512, "n_extra": 0,
                 "seeds": [0, 1, 2, 3, 4], "hardness": 0.25, "arms": ["plain", "none"], "augment": _MILD,
                 "save_checkpoint": False,
                 "stage1": {"epochs": 60, "batch_size": 16, "lr": 2e-3},
                 "stage2": {"epochs": 20, "batch_size": 16, "lr": 2e-3}},
        "paper": {**_PAPER_PRESET, "n_extra": 0, "arms": ["plain", "none", "unpooled", "no_boundary"]},
    }

    def validate(self) -> None:
        super().validate()
        bad = [a for a in self.arms if a not in ABLATION_ARMS]
        if bad:
            raise ConfigError(f"unknown ablation arm '{bad[0]}'; choose from {', '.join(ABLATION_ARMS)}")
        if len(set(self.arms)) != len(self.arms):
            raise ConfigError(f"arms must be distinct, got {self.arms}")
        if {"naive", "crop"} & set(self.arms) and self.n_extra < 1:
            raise ConfigError("the naive/crop arms need n_extra >= 1 full-body scenes (or drop them from arms)")

def _warm_cache(cfg: PortraitConfig, extras=("none",)) -> None:
    """Generate (and cache) the data once, before worker processes read it."""
    for extra in extras:
        datasets(cfg, extra)


def _ious(results: list[dict[str, Any]]) -> list[float]:
    return [float(r["fg_iou"]) for r in results]


def _rules_note(cfg: PortraitConfig, plan, n: int) -> str:
    power = plan.power_at(n)
    return (f"Plan: SESOI {plan.sesoi:g} IoU points ({plan.sesoi_source}); pilot SD {plan.pilot_sd:g} "
            f"({plan.pilot_source}); {plan.planned_n} seeds for 80% power; this run has {n} "
            f"(power {power:.0%} at the SESOI).")


@register_experiment("sinet-portrait", paper=PAPER, claim=CLAIM, config=SINetPortraitConfig)
def run(cfg: SINetPortraitConfig, ctx) -> ExperimentResult:
    _warm_cache(cfg)
    n = len(cfg.seeds)
    quarter = cfg.positive_control
    # stage 1 first (the stage-2 trials read its encoders); LR-ASPP, the longest trial, then runs
    # beside the stage-2 trials
    enc = [encoder_trial(s) for s in cfg.seeds] + ([encoder_trial(s, fraction=QUARTER) for s in cfg.seeds]
                                                   if quarter else [])
    first = ctx.run_trials(run_one, enc, description="sinet-portrait: stage 1")
    control = first[:n]
    s2 = [lraspp_trial(s) for s in cfg.seeds] + [sinet_trial(s) for s in cfg.seeds]
    s2 += [sinet_trial(s, fraction=QUARTER) for s in cfg.seeds] if quarter else []
    second = ctx.run_trials(run_one, s2, description="sinet-portrait: LR-ASPP + stage 2")
    lraspp, sinet, short = second[:n], second[n:2 * n], second[2 * n:]
    copy_checkpoint(ctx, sinet[0])
    plateaus = [iou_plateau([r["val_curve"] for r in lraspp], "LR-ASPP MobileNetV3"),
                iou_plateau([r["val_curve"] for r in sinet], "SINet (stage 2)")]
    head, claims = decide_portrait(_ious(sinet), {"LR-ASPP MobileNetV3": _ious(lraspp)}, _ious(control),
                                   quarter=_ious(short) if quarter else None, plateaus=plateaus)
    groups = {"SINet": sinet, "LR-ASPP MobileNetV3": lraspp, "decoder-less SINet (control)": control}
    prefix = {"SINet": "method", "LR-ASPP MobileNetV3": "baseline", "decoder-less SINet (control)": "control"}
    if quarter:
        groups["SINet, 1/4 epochs (positive control)"] = short
        prefix["SINet, 1/4 epochs (positive control)"] = "positive"
    metrics = metrics_of(groups, prefix)
    metrics["baseline/params_ratio"] = metrics["baseline/params"] / metrics["method/params"]
    for t in plateaus:  # a curve too short to measure gives no metric (its gate is not held)
        if math.isfinite(t.estimate):
            metrics[f"plateau/{'baseline' if 'LR-ASPP' in t.name else 'method'}_iou_rise"] = t.estimate
    figures = [prediction_figure(ctx, {"SINet": sinet[0]["figure"], "LR-ASPP": lraspp[0]["figure"],
                                       "decoder-less": control[0]["figure"]}, "predictions"),
               gate_figure(ctx, sinet[0]["figure"]), bar_figure(ctx, groups, "iou_by_arm")]
    base = baseline_stage(cfg)
    notes = [data_note(cfg),
             f"LR-ASPP trains {base.epochs} epochs at full resolution (lr {base.lr:g}, {base.schedule} schedule). Rules (one-sided 95% paired t-intervals): SINet no worse than the strongest alternative "
             f"by more than {HEADLINE_MARGIN:g} IoU points; the decoder-less control must lose by more than "
             f"{CONTROL_MARGIN:g}; SINet must beat itself at a quarter of its epochs by more than {HEADLINE_MARGIN:g} "
             f"(positive control); calibration: the alternative's 90% interval in [{CALIBRATED[0]:g}, "
             f"{CALIBRATED[1]:g}] IoU and every model's val fg IoU rising by at most {PLATEAU_IOU:g} points over the "
             f"last fifth of its epochs. At least {MIN_SEEDS} seeds.",
             _rules_note(cfg, PORTRAIT_PLAN, n)]
    return ExperimentResult.from_headline(head, metrics, claims=claims, table=rows(groups), figures=figures,
                                          notes="\n\n".join(notes))


_ARM_SPECS = {  # arm -> (encoder trial kwargs, stage-2 trial kwargs, display name)
    "blocking": ({}, {}, "blocking decoder"),
    "plain": ({}, {"decoder": "plain"}, "plain skip"),
    "none": ({}, {"decoder": "none"}, "no skip"),
    "unpooled": ({"pooling": False}, {"pooling": False}, "unpooled S2"),
    "no_boundary": ({}, {"boundary": False}, "no boundary term"),
    "naive": ({"extra": "naive"}, {"extra": "naive"}, "+ full-body, resized"),
    "crop": ({"extra": "crop"}, {"extra": "crop"}, "+ full-body, portrait crops"),
    "quarter": ({"fraction": QUARTER}, {"fraction": QUARTER}, "SINet, 1/4 epochs (positive control)"),
}


@register_experiment("sinet-ablations", paper=PAPER, claim=ABLATIONS_CLAIM, config=SINetAblationsConfig)
def run_ablations(cfg: SINetAblationsConfig, ctx) -> ExperimentResult:
    arms = ["blocking", *cfg.arms] + (["quarter"] if cfg.positive_control else [])
    _warm_cache(cfg, ["none"] + [a for a in arms if a in EXTRA_DATA])
    enc_specs = []
    for arm in arms:
        kw = _ARM_SPECS[arm][0]
        if kw not in enc_specs:
            enc_specs.append(kw)
    enc_trials = [encoder_trial(s, **kw) for kw in enc_specs for s in cfg.seeds]
    encoders = ctx.run_trials(run_one, enc_trials, description="sinet-ablations: stage 1")
    n = len(cfg.seeds)
    control = encoders[:n]  # the pooled, base-data, full-budget encoder: the decoder-less control
    s2_trials = [sinet_trial(s, **_ARM_SPECS[arm][1]) for arm in arms for s in cfg.seeds]
    s2 = ctx.run_trials(run_one, s2_trials, description="sinet-ablations: stage 2")
    by_arm = {arm: s2[i * n:(i + 1) * n] for i, arm in enumerate(arms)}
    mechanism = encoder_converged([r["train_loss"] for r in control])
    head, claims = decide_ablations(_ious(by_arm["blocking"]), {a: _ious(by_arm[a]) for a in cfg.arms},
                                    _ious(control), quarter=_ious(by_arm["quarter"]) if "quarter" in by_arm else None,
                                    mechanism=mechanism)
    groups = {_ARM_SPECS[a][2]: by_arm[a] for a in arms}
    groups["decoder-less (control)"] = control
    prefix = {_ARM_SPECS[a][2]: ("method" if a == "blocking" else "positive" if a == "quarter" else f"ablation_{a}")
              for a in arms}
    prefix["decoder-less (control)"] = "control"
    metrics = metrics_of(groups, prefix)
    if math.isfinite(mechanism.estimate):
        metrics["mechanism/encoder_loss_drop"] = mechanism.estimate
    columns = {_ARM_SPECS[a][2]: by_arm[a][0]["figure"] for a in arms if a in ("blocking", "plain", "none")}
    figures = [bar_figure(ctx, groups, "iou_by_arm"), prediction_figure(ctx, columns, "predictions")]
    notes = [data_note(cfg),
             "Decoder variants are fine-tuned from each seed's shared stage-1 encoder (same initial decoder weights "
             "and augmentation stream, so they are paired); the positive control trains its own encoder and stage 2 "
             f"for a quarter of the epochs; the extra-data arms add {cfg.n_extra} generated full-body scenes and "
             f"train their own encoder. Headline: blocking beats the strongest of plain / no skip (one-sided 95% "
             f"lower bound of the mean paired gain above {DECODER_MARGIN:g}), gated on the decoder-less control "
             f"(must lose by > {CONTROL_MARGIN:g}), the positive control (held at the same rule) and the encoder's "
             f"convergence (the last tenth of stage 1 made at most {PLATEAU_LOSS:.0%} of its train loss's fall). "
             f"Sub-claims need a gain above {ABLATION_MARGIN:g}. At least {MIN_SEEDS} seeds.",
             _rules_note(cfg, ABLATIONS_PLAN, n)]
    if head is None:
        return ExperimentResult(INCONCLUSIVE, "no decoder alternative ran (arms lacks plain and none)", metrics,
                                claims=claims, table=rows(groups), figures=figures, notes="\n\n".join(notes))
    return ExperimentResult.from_headline(head, metrics, claims=claims, table=rows(groups), figures=figures,
                                          notes="\n\n".join(notes))
