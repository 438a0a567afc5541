"""Experiment ``pflayer-ops``: the paper's layer-level study of the spatial op (Sec. 3).

Small bottleneck networks (:func:`reprozoo.pflayer.study_net`: 3x3 stem, three stages of two
bottlenecks, expansion 4, downsampling by the block's own spatial op) that differ *only* in the
spatial op are trained identically on the procedural dot-pattern set
(:mod:`reprozoo.data.dot_patterns`, 10 classes defined by the arrangement of four identical dots,
so a network without a spatial op is handicapped) over >= 3 seeds, plus a width sweep. Parameters
and MACs are counted; CPU latency (batch 1 and 64) is measured in the same run, interleaved
across the ops.

Headline (rule fixed before the first run): the max-pool network's test accuracy is no worse than
the strongest cheap alternative (3x3 depthwise conv or 3x3 avg-pool, whichever has the higher mean)
by more than ``ACC_MARGIN`` (paired non-inferiority: the one-sided 95% lower bound of the mean paired
difference over >= 3 seeds must exceed ``-ACC_MARGIN``; not held when the upper bound is below it),
*and* it has fewer parameters and a lower measured latency than the depthwise network at every
measured batch size (a claim with several parts: held when every part is held, not held when any
part is not held). Negative control: the ``identity`` network must lose to max-pool by more than
``ACC_MARGIN`` (superiority test); positive control: the depthwise network must beat the identity
network by more than ``ACC_MARGIN`` (a known effect on the same data); convergence: max-pool and the
strongest cheap alternative reach ``CONVERGED_TRAIN_ACC`` train accuracy. A failed gate makes the
headline "inconclusive". The design (SESOI, pilot SD, seeds for 80% power) is :data:`PLAN`; trials
train one network each (:mod:`reprozoo.pflayer.members`, channels-last).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from reprozoo.errors import ConfigError, DataError
from reprozoo.pflayer import training
from reprozoo.pflayer.members import train_members
from reprozoo.pflayer.ops import spatial_ops
from reprozoo.pflayer.resnet import study_net
from reprozoo.runtime.config import ExperimentConfig
from reprozoo.runtime.figures import pyplot, save_figure
from reprozoo.runtime.profile import count_macs, count_params, measure_latency
from reprozoo.runtime.registry import register_experiment
from reprozoo.runtime.report import ExperimentResult
from reprozoo.runtime.trials import Trial
from reprozoo.runtime.verdict import (
    HELD,
    NOT_HELD,
    Headline,
    Plan,
    Test,
    claim,
    combine,
    equivalence,
    every_part,
    noninferiority,
    strongest,
    superiority,
    threshold,
)

PAPER = "Han et al., Learning Features with Parameter-Free Layers (PfLayer), ICLR 2022"
CLAIM = ("A parameter-free 3x3 max-pool can replace the trainable spatial op of a bottleneck: the max-pool network "
         "is as accurate as the depthwise-conv network (the strongest cheap alternative) with fewer parameters "
         "and lower measured latency.")
ACC_MARGIN = 0.02  # absolute test accuracy; fixed before the first quick run
MIN_SEEDS = 3
PLAN = Plan(
    sesoi=0.0,
    sesoi_source=("the paper's layer-level study (Sec. 3, accuracy-vs-parameters figure) puts max-pool bottlenecks "
                  "on par with depthwise-conv ones, with no accuracy gap to scale: a true difference of 0, against "
                  "which non-inferiority within the margin should be declared"),
    margin=ACC_MARGIN,
    pilot_sd=0.0125,
    pilot_source=("pilot at the converged budget (2,000 images x 12 epochs, noise 0.1; seeds 100/101/102, "
                  "docs/experiments/pflayer.md): paired differences max-pool - depthwise = -0.066 / -0.041 / -0.054"),
    kind="noninferiority",
)
# the pilot SD comes from 3 seeds: the full preset runs 8 (power 0.99 at the pilot SD, still 0.8 at 1.6x it)
FULL_SEEDS = max(PLAN.planned_n or 0, 8)
CONVERGED_TRAIN_ACC = 0.95  # the paper compares fully trained networks: both headline arms must fit the train set
REQUIRED_OPS = ("maxpool", "depthwise", "identity")
CHEAP_ALTERNATIVES = ("depthwise", "avgpool")
LABELS = {"conv3x3": "3x3 conv", "hybrid": "hybrid", "depthwise": "depthwise", "maxpool": "max-pool",
          "avgpool": "avg-pool", "identity": "identity"}


@dataclass
class OpsConfig(ExperimentConfig):
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    ops: list[str] = field(default_factory=lambda: ["conv3x3", "hybrid", "depthwise", "maxpool", "avgpool",
                                                    "identity"])
    width_mult: float = 1.0
    planes: list[int] = field(default_factory=lambda: [8, 16, 32])
    stem_chs: int = 16
    sweep_widths: list[float] = field(default_factory=lambda: [0.5, 2.0])  # besides width_mult
    sweep_ops: list[str] = field(default_factory=lambda: ["depthwise", "maxpool"])
    sweep_seeds: list[int] = field(default_factory=list)  # seeds of the sweep widths; empty = ``seeds``
    n_train: int = 3000
    n_test: int = 2000
    data_seed: int = 0
    noise: float = 0.2  # calibrated: the 3x3-conv network reached 90.5% (3000 images x 6 epochs), not 100%
    spacing_min: int = 5
    spacing_max: int = 7
    jitter: int = 1
    contrast_min: float = 0.5
    contrast_max: float = 1.0
    epochs: int = 6
    batch_size: int = 128
    lr: float = 0.1  # peak lr of SGD (Nesterov) under a one-cycle schedule (warm-up, cosine; momentum 0.85-0.95)
    momentum: float = 0.95  # one-cycle's maximum momentum (its minimum is 0.85), as calibrated
    weight_decay: float = 5e-4
    warmup_fraction: float = 0.15
    latency_threads: int = 2
    latency_batches: list[int] = field(default_factory=lambda: [1, 64])
    latency_rounds: int = 5
    latency_repeats: int = 20

    PRESETS: ClassVar[dict] = {
        "smoke": {"seeds": [0], "n_train": 64, "n_test": 50, "epochs": 1, "sweep_widths": [0.5],
                  "sweep_ops": ["depthwise", "maxpool"], "latency_rounds": 1, "latency_repeats": 2,
                  "latency_batches": [1, 4], "latency_threads": 1, "executor": {"kind": "serial"}, "device": "cpu"},
        # 2000 x 12 epochs at noise 0.1: every headline arm fits the train set (at 4 epochs max-pool reached
        # 0.3-0.6 train accuracy); the sweep widths run 2 seeds. Earlier settings: docs/history/pflayer.md, "Preset history".
        "quick": {"n_train": 2000, "epochs": 12, "noise": 0.1, "sweep_seeds": [0, 1], "device": "cpu"},
        # the planned power: the headline arms and the controls only, FULL_SEEDS seeds, no width sweep
        "full": {"n_train": 2000, "epochs": 12, "noise": 0.1, "seeds": list(range(FULL_SEEDS)),
                 "ops": ["depthwise", "maxpool", "avgpool", "identity"], "sweep_widths": [], "device": "cpu"},
        "paper": {"n_train": 20000, "width_mult": 1.0, "n_test": 5000, "epochs": 30, "sweep_widths": [0.5, 2.0, 4.0],
                  "sweep_ops": ["conv3x3", "hybrid", "depthwise", "maxpool", "avgpool", "identity"],
                  "seeds": [0, 1, 2, 3, 4]},
    }

    def validate(self) -> None:
        known = spatial_ops()
        for name in ("ops", "sweep_ops"):
            bad = [op for op in getattr(self, name) if op not in known]
            if bad:
                raise ConfigError(f"{name} has unknown spatial op(s) {bad}; choose from: {', '.join(known)}")
        missing = [op for op in REQUIRED_OPS if op not in self.ops]
        if missing:
            raise ConfigError(f"ops must include {', '.join(REQUIRED_OPS)} (the headline and its control), "
                              f"missing {missing}")
        if len(set(self.ops)) != len(self.ops) or len(set(self.sweep_ops)) != len(self.sweep_ops):
            raise ConfigError("ops and sweep_ops must not repeat an op")
        if len(self.seeds) < 1 or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be distinct and non-empty, got {self.seeds}")
        if len(set(self.sweep_seeds)) != len(self.sweep_seeds):
            raise ConfigError(f"sweep_seeds must be distinct (empty = the same as seeds), got {self.sweep_seeds}")
        if not 0 < self.width_mult <= 16 or any(not 0 < w <= 16 for w in self.sweep_widths):
            raise ConfigError(f"width_mult and sweep_widths must be in (0, 16], got {self.width_mult}, "
                              f"{self.sweep_widths}")
        if self.width_mult in self.sweep_widths:
            raise ConfigError(f"sweep_widths must not repeat width_mult {self.width_mult} (it is always trained)")
        if len(self.planes) != 3 or min(self.planes) < 1 or self.stem_chs < 1:
            raise ConfigError(f"planes needs 3 positive widths and stem_chs >= 1, got {self.planes}, {self.stem_chs}")
        if self.n_train < 10 or self.n_test < 10:
            raise ConfigError(f"n_train and n_test must be >= 10, got {self.n_train}, {self.n_test}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"epochs and batch_size must be >= 1, got {self.epochs}, {self.batch_size}")
        if not (self.lr > 0 and 0 <= self.momentum < 1 and self.weight_decay >= 0 and 0 <= self.warmup_fraction < 1):
            raise ConfigError("lr > 0, 0 <= momentum < 1, weight_decay >= 0 and 0 <= warmup_fraction < 1 are required")
        if not 0 <= self.noise <= 2 or self.jitter < 0 or not 0 < self.contrast_min <= self.contrast_max:
            raise ConfigError("noise in [0, 2], jitter >= 0 and 0 < contrast_min <= contrast_max are required")
        if self.latency_threads < 1 or self.latency_rounds < 1 or self.latency_repeats < 1 \
                or not self.latency_batches or min(self.latency_batches) < 1:
            raise ConfigError("latency_threads, latency_rounds, latency_repeats and latency_batches must be >= 1")
        from reprozoo.data.dot_patterns import _check

        try:
            _check(self.n_train, 32, (self.spacing_min, self.spacing_max), 2, self.jitter,
                   (self.contrast_min, self.contrast_max), self.noise)
        except DataError as err:
            raise ConfigError(f"dot-pattern settings: {err}") from None


# ---------------------------------------------------------------- one trial
def data(cfg: OpsConfig):
    from reprozoo.data.dot_patterns import dot_pattern_splits

    return dot_pattern_splits(cfg.n_train, cfg.n_test, seed=cfg.data_seed, spacing=(cfg.spacing_min, cfg.spacing_max),
                              jitter=cfg.jitter, contrast=(cfg.contrast_min, cfg.contrast_max), noise=cfg.noise)


def build(cfg: OpsConfig, op: str, width: float) -> nn.Module:
    return study_net(op, width_mult=width, planes=tuple(cfg.planes), stem_chs=cfg.stem_chs)


def run_one(trial: Trial, tctx) -> dict[str, Any]:
    """Train one study network (``trial.arm`` = spatial op, ``trial["width"]``) and test it
    (:func:`reprozoo.pflayer.members.train_members`: the seed's own init and batch order, channels-last)."""
    cfg: OpsConfig = tctx.config
    (r,) = train_members(lambda: build(cfg, trial.arm, trial["width"]), [trial.seed], data(cfg), epochs=cfg.epochs,
                         batch_size=cfg.batch_size, lr=cfg.lr, momentum=cfg.momentum,
                         weight_decay=cfg.weight_decay, warmup=cfg.warmup_fraction)
    return {"op": trial.arm, "width": trial["width"], **r}


# ---------------------------------------------------------------- latency, in the parent process
@torch.inference_mode()
def measure_latencies(cfg: OpsConfig, ops: list[str]) -> dict[str, dict[int, float]]:
    """Median latency (ms) per op and batch size, the ops interleaved within every round."""
    before = torch.get_num_threads()
    torch.set_num_threads(cfg.latency_threads)
    try:
        nets = {op: build(cfg, op, cfg.width_mult).eval() for op in ops}
        out: dict[str, dict[int, float]] = {op: {} for op in ops}
        for batch in cfg.latency_batches:
            x = torch.randn(batch, 1, 32, 32)
            runs: dict[str, list[float]] = {op: [] for op in ops}
            for _ in range(cfg.latency_rounds):
                for op in ops:
                    res = measure_latency(lambda m=nets[op], x=x: m(x), warmup=2, repeats=cfg.latency_repeats)
                    runs[op].append(res["median_ms"])
            for op in ops:
                out[op][batch] = statistics.median(runs[op])
        return out
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------- the rule
def decide(accs: dict[str, list[float]], params: dict[str, int], latency: dict[str, dict[int, float]],
           margin: float = ACC_MARGIN, train_accs: dict[str, list[float]] | None = None) -> Headline:
    """The headline: max-pool no worse than the strongest cheap alternative (accuracy, non-inferiority
    within ``margin`` on the one-sided 95% paired t-interval), fewer params and lower latency than
    depthwise at every batch size (every part must be held); gated on the identity control losing to
    max-pool by more than ``margin``, on the positive control (:func:`positive_control`) and, given
    ``train_accs``, on convergence (:func:`converged`)."""
    cheap = {op: accs[op] for op in CHEAP_ALTERNATIVES if op in accs}
    best = strongest(cheap)
    acc = noninferiority(accs["maxpool"], accs[best], margin=margin, min_seeds=MIN_SEEDS, name="test accuracy",
                         other_name=f"strongest cheap alternative '{best}'")
    fewer = params["maxpool"] < params["depthwise"]
    faster = all(latency["maxpool"][b] < latency["depthwise"][b] for b in latency["maxpool"])
    lat = ", ".join(f"batch {b}: {latency['maxpool'][b]:.3g} vs {latency['depthwise'][b]:.3g} ms"
                    for b in latency["maxpool"])
    fewer_t = Test("threshold", HELD if fewer else NOT_HELD, f"params {params['maxpool']:,} vs depthwise "
                   f"{params['depthwise']:,} ({'fewer' if fewer else 'NOT fewer'})", "parameters")
    faster_t = Test("threshold", HELD if faster else NOT_HELD, f"latency max-pool vs depthwise {lat} "
                    f"({'faster' if faster else 'NOT faster'})", "latency")
    control = superiority(accs["maxpool"], accs["identity"], margin=margin, min_seeds=MIN_SEEDS,
                          name="test accuracy", other_name="'identity'")
    conv = converged(train_accs, ("maxpool", best)) if train_accs is not None else None
    return every_part([acc, fewer_t, faster_t], negative_control=control, positive_control=positive_control(accs),
                      calibration=conv, plan=PLAN)


def converged(train_accs: dict[str, list[float]], ops: tuple[str, ...]) -> list[Test]:
    """The compared networks are trained to convergence: each op's mean final-epoch train accuracy is at
    least :data:`CONVERGED_TRAIN_ACC`."""
    return [threshold(float(np.mean(train_accs[op])), at_least=CONVERGED_TRAIN_ACC, name=f"{op} train accuracy")
            for op in ops]


def positive_control(accs: dict[str, list[float]], margin: float = ACC_MARGIN) -> Test:
    """A known-true effect on the same benchmark, with the same rule: a depthwise network beats the
    identity network of equal width by more than ``margin`` (the classes are arrangements of identical
    dots, so a network without a spatial op cannot tell them apart; a true gap far above the SESOI)."""
    return superiority(accs["depthwise"], accs["identity"], margin=margin, min_seeds=MIN_SEEDS,
                       name="positive control (depthwise vs identity) test accuracy", other_name="'identity'")


def ordering_claims(accs: dict[str, list[float]], margin: float = ACC_MARGIN) -> list[dict]:
    """The paper's ordering conv >= hybrid >= depthwise ~ max-pool > avg-pool > identity, link by link
    (">=": non-inferiority, ">": superiority, "~": equivalence, all within ``margin``)."""
    out = []

    def have(*ops: str) -> bool:
        return all(op in accs for op in ops)

    def nw(a: str, b: str):
        return noninferiority(accs[a], accs[b], margin=margin, min_seeds=MIN_SEEDS, name=f"{a} vs {b} accuracy",
                              other_name=b)

    def bt(a: str, b: str):
        return superiority(accs[a], accs[b], margin=margin, min_seeds=MIN_SEEDS, name=f"{a} vs {b} accuracy",
                           other_name=b)

    if have("conv3x3", "hybrid"):
        out.append(claim("3x3 conv >= hybrid (within the margin)", nw("conv3x3", "hybrid")))
    if have("hybrid", "depthwise"):
        out.append(claim("hybrid >= depthwise (within the margin)", nw("hybrid", "depthwise")))
    out.append(claim("depthwise ~ max-pool (each within the margin of the other)",
                     equivalence(accs["maxpool"], accs["depthwise"], margin=margin, min_seeds=MIN_SEEDS,
                                 name="maxpool vs depthwise accuracy", other_name="depthwise")))
    if have("avgpool"):
        out.append(claim("max-pool > avg-pool (by more than the margin)", bt("maxpool", "avgpool")))
        out.append(claim("avg-pool > identity (by more than the margin)", bt("avgpool", "identity")))
    if have("conv3x3"):
        out.append(claim("max-pool within the margin of the regular 3x3 conv", nw("maxpool", "conv3x3")))
    return out


def sweep_claim(acc_by_width: dict[float, dict[str, list[float]]], margin: float = ACC_MARGIN) -> dict | None:
    """Max-pool non-inferior to depthwise at every width (each width its own test; all must be held)."""
    rows = [(w, noninferiority(a["maxpool"], a["depthwise"], margin=margin, min_seeds=MIN_SEEDS, name=f"width {w:g}",
                               other_name="depthwise"))
            for w, a in sorted(acc_by_width.items()) if "maxpool" in a and "depthwise" in a]
    if len(rows) < 2:
        return None
    return claim("max-pool within the margin of depthwise at every width of the sweep",
                 combine([t for _, t in rows]), "; ".join(f"{t.evidence} -> {t.verdict}" for _, t in rows))


# ---------------------------------------------------------------- figures
def _figures(ctx, ops, stats, params, latency, sweep) -> list[str]:
    plt = pyplot()
    names = []
    big = max(next(iter(latency.values())))
    for key, xlabel, xs in (("acc_vs_latency", f"latency at batch {big} (ms, CPU)",
                             {op: latency[op][big] for op in ops}),
                            ("acc_vs_params", "parameters", {op: params[op] for op in ops})):
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for op in ops:
            ax.errorbar(xs[op], stats[op][0], yerr=stats[op][1], fmt="o", capsize=3, label=LABELS.get(op, op))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=7)
        names.append(save_figure(fig, ctx.out_dir, key))
    if sweep:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for op, pts in sweep.items():
            pts = sorted(pts)
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3,
                        label=LABELS.get(op, op))
        ax.set_xscale("log")
        ax.set_xlabel("parameters (width sweep)")
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=7)
        names.append(save_figure(fig, ctx.out_dir, "width_sweep"))
    return names


@register_experiment("pflayer-ops", paper=PAPER, claim=CLAIM, config=OpsConfig)
def run_ops(cfg: OpsConfig, ctx) -> ExperimentResult:
    main = [Trial(op, s, width=cfg.width_mult) for op in cfg.ops for s in cfg.seeds]
    extra = [Trial(op, s, width=w) for w in cfg.sweep_widths for op in cfg.sweep_ops
             for s in (cfg.sweep_seeds or cfg.seeds)]
    trials = main + extra
    results = ctx.run_trials(run_one, trials, description="pflayer-ops trials")
    acc_by_width: dict[float, dict[str, list[float]]] = {}
    for t, r in zip(trials, results):
        acc_by_width.setdefault(t["width"], {}).setdefault(t.arm, []).append(float(r["test_acc"]))
    accs = acc_by_width[cfg.width_mult]
    train_accs: dict[str, list[float]] = {}
    for t, r in zip(trials, results):
        if t["width"] == cfg.width_mult:
            train_accs.setdefault(t.arm, []).append(float(r["train_acc"]))
    x1 = torch.empty(1, 1, 32, 32)
    params = {op: count_params(build(cfg, op, cfg.width_mult)) for op in cfg.ops}
    macs = {op: count_macs(build(cfg, op, cfg.width_mult), x1) for op in cfg.ops}
    latency = measure_latencies(cfg, list(cfg.ops))
    head = decide(accs, params, latency, train_accs=train_accs)  # fewer than MIN_SEEDS seeds: inconclusive
    claims = [claim(CLAIM, head, headline=True)] + ordering_claims(accs)
    sc = sweep_claim(acc_by_width)
    if sc is not None:
        claims.append(sc)
    stats = {op: (float(np.mean(accs[op])), float(np.std(accs[op], ddof=1)) if len(accs[op]) > 1 else 0.0)
             for op in cfg.ops}
    sweep_pts: dict[str, list[tuple[float, float, float]]] = {}
    for w, per_op in acc_by_width.items():
        for op, a in per_op.items():
            if op in cfg.sweep_ops:
                sweep_pts.setdefault(op, []).append((count_params(build(cfg, op, w)), float(np.mean(a)),
                                                     float(np.std(a, ddof=1)) if len(a) > 1 else 0.0))
    figures = _figures(ctx, cfg.ops, stats, params, latency, sweep_pts)
    metrics: dict[str, float] = {}
    rows = []
    for op in cfg.ops:
        group = "method" if op == "maxpool" else "baseline"
        metrics[f"{group}/{op}_acc"] = stats[op][0]
        metrics[f"{group}/{op}_acc_std"] = stats[op][1]
        metrics[f"{group}/{op}_train_acc"] = float(np.mean(train_accs[op]))
        metrics[f"{group}/{op}_params"] = float(params[op])
        metrics[f"{group}/{op}_macs"] = float(macs[op])
        row = {"op": op, "acc_mean": round(stats[op][0], 4), "acc_std": round(stats[op][1], 4),
               "params": params[op], "macs": macs[op]}
        for b, ms in latency[op].items():
            metrics[f"{group}/{op}_latency_b{b}_ms"] = ms
            row[f"latency_b{b}_ms"] = round(ms, 3)
        rows.append(row)
    for w, per_op in sorted(acc_by_width.items()):
        if w != cfg.width_mult:
            for op, a in per_op.items():
                metrics[f"sweep/{op}_w{w:g}_acc"] = float(np.mean(a))
    return ExperimentResult.from_headline(
        head, metrics, claims=claims, table=rows, figures=figures,
        notes=(f"dot patterns: {cfg.n_train} train / {cfg.n_test} test, noise {cfg.noise}; "
               f"{cfg.epochs} epochs, batch {cfg.batch_size}, SGD lr {cfg.lr}; latency at "
               f"{cfg.latency_threads} threads, median of {cfg.latency_rounds} interleaved rounds; "
               f"margin {ACC_MARGIN} accuracy (one-sided 95% paired t-intervals, at least {MIN_SEEDS} seeds; "
               f"{PLAN.planned_n} seeds planned for 80% power of the non-inferiority test at no true gap)."))


@register_experiment("pflayer-imagenet", paper=training.PAPER, claim=training.CLAIM, config=training.ImageNetConfig)
def run_imagenet(cfg: training.ImageNetConfig, ctx) -> ExperimentResult:
    """Experiment ``pflayer-imagenet``: the paper's ResNet recipe on an ImageNet folder (its data, trials and
    rule are in :mod:`reprozoo.pflayer.training`)."""
    return training.run_imagenet(cfg, ctx)
