"""Experiment ``rainbow-memory``: Rainbow Memory vs the strongest simple memory alternative on
blurry online class-incremental streams.

Data: scikit-learn digits, 5 tasks x 2 classes, online, E = 10 memory epochs, K = 20, 40 and 80
(2, 4 and 8 memory slots per class at the last task), Blurry10 plus Blurry0 (disjoint) and Blurry30
at the headline K. ``quick`` (the demo): 10 seeds, two backbones side by side (the small MLP
64-128-128 that matches the paper's MNIST setting, and a small CNN). ``full``: the MLP with the seeds
the power function asks for (``PLAN``), trained ten seeds per batched model.

The rule (:mod:`reprozoo.rainbow.experiment_rule`, fixed before the numbers): on the headline
backbone at Blurry10 and ``headline_k`` = 40 (4 slots per class), RM (without augmentation) must
beat the strongest simple memory alternative by more than ``MARGIN`` points of A_last (one-sided 95%
lower bound of the paired gain), gated on fine-tuning without memory losing (negative control),
class-balanced random memory beating ER-reservoir (positive control), the kept memory spanning the
uncertainty range with >= 4 slots per class (mechanism) and the strongest alternative landing in
``CALIBRATION``. Every other comparison is a sub-claim. Trials: :mod:`.experiment_trials`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from reprozoo.errors import ConfigError, UnknownNameError
from reprozoo.rainbow.data import check_available
from reprozoo.rainbow.experiment_report import arm_values, blur_name, figures, metrics_and_table
from reprozoo.rainbow.experiment_rule import (
    ALTERNATIVES,
    CALIBRATION,
    CONTROL,
    HEADLINE_K,
    MARGIN,
    METHOD,
    MIN_SEEDS,
    PLAN,
    attribution,
    decide,
    mechanism_gate,
    uncertainty_spread,
)
from reprozoo.rainbow.experiment_trials import LABELS, VARIANTS, Results, build_trials, run_one, settings_for
from reprozoo.rainbow.scenarios import SHARES
from reprozoo.rainbow.strategies import CLSettings
from reprozoo.runtime.config import ExperimentConfig
from reprozoo.runtime.registry import list_models, register_experiment
from reprozoo.runtime.report import ExperimentResult
from reprozoo.runtime.verdict import HELD, INCONCLUSIVE, NOT_HELD, claim, superiority

DATASETS = ("digits", "cifar10", "cifar100", "folder")
KNOWN_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100}
FULL_SEEDS = PLAN.seeds  # 80% power at the SESOI and to 'not held' at no true gain (pilot SD; PLAN.null_power)
CLAIM = ("Rainbow Memory (uncertainty-stride, class-balanced memory) beats the strongest simple memory "
         "alternative (ER-reservoir, class-balanced random memory, GDumb, EWC) in final accuracy on a "
         "blurry online stream at 4 memory slots per class, while fine-tuning without memory loses")
PAPER = "Bang et al., Rainbow Memory: Continual Learning with a Memory of Diverse Samples (CVPR 2021)"


@dataclass
class RainbowConfig(ExperimentConfig):
    dataset: str = "digits"  # digits | cifar10 | cifar100 | folder (ImageFolder at data_root)
    backbones: list[str] = field(default_factory=lambda: ["rm_mlp_digits", "rm_cnn_digits"])
    headline_backbone: str = "rm_mlp_digits"  # the backbone whose result is the headline
    image_size: int = 32  # only for dataset=folder
    n_tasks: int = 5
    blur: float = 0.1  # M of the main setting; 0 = disjoint (Blurry0)
    extra_blurs: list[float] = field(default_factory=lambda: [0.0, 0.3])  # run at the headline K
    share: str = "exact"  # exact (foreign share = M) | legacy (M*(T-1)/T, the paper's shipped files)
    memory_sizes: list[int] = field(default_factory=lambda: [20, 40, 80])  # 2, 4 and 8 slots per class
    headline_k: int = HEADLINE_K  # the K of the headline (one of memory_sizes)
    variants: list[str] = field(default_factory=lambda: ["rm", "er", "balanced", "gdumb", "finetune"])
    context_variants: list[str] = field(default_factory=lambda: ["rm_da", "ewc"])  # headline K, main blur
    joint_epochs: int = 10
    cl: CLSettings = field(default_factory=CLSettings)
    seeds: list[int] = field(default_factory=lambda: list(range(10)))
    seed_batch: int = 10  # seeds per trial, trained as one batched model where the arm allows it
    threads: int = 1  # tiny models: one intra-op thread per trial (more threads only add overhead)

    PRESETS: ClassVar[dict] = {
        "smoke": {"seeds": [0], "backbones": ["rm_mlp_digits"], "memory_sizes": [40],
                  "variants": ["rm", "er", "balanced", "finetune"],
                  "context_variants": ["rm_da"], "extra_blurs": [0.0], "cl": {"epochs": 2},
                  "joint_epochs": 1},
        "quick": {},
        "full": {"backbones": ["rm_mlp_digits"], "seeds": list(range(FULL_SEEDS)),
                 "variants": ["rm", "er", "balanced", "gdumb", "finetune"]},
        "paper": {"dataset": "cifar10", "backbones": ["rm_resnet18_cifar"],
                  "headline_backbone": "rm_resnet18_cifar", "seeds": [1, 2, 3],
                  "memory_sizes": [200, 500, 1000], "headline_k": 500, "share": "legacy", "joint_epochs": 256,
                  "context_variants": ["rm_da", "ewc"], "threads": 0, "seed_batch": 1,
                  "cl": {"epochs": 256, "schedule": "warm_restarts", "crop_pad": 4, "hflip": True,
                         "perturbation": "vr_randaug", "score_batch": 1536}},
    }

    def validate(self) -> None:
        """Every value is checked here, before any output folder or trial exists."""
        for name in ("variants", "context_variants"):
            unknown = [v for v in getattr(self, name) if v not in VARIANTS]
            if unknown:
                raise UnknownNameError(f"unknown variant {unknown} in {name}; choose from: {', '.join(VARIANTS)}")
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise ConfigError(f"{name} lists a variant twice: {getattr(self, name)}")
        both = sorted(set(self.variants) & set(self.context_variants))
        if both:
            raise ConfigError(f"variant {both} is in both variants and context_variants; keep it in one")
        missing = [v for v in (METHOD, "er", CONTROL) if v not in self.variants]
        if missing:
            raise ConfigError(f"variants must include {missing} (the method, ER-reservoir and the negative "
                              f"control 'finetune'), e.g. variants=[rm,er,balanced,gdumb,finetune]")
        if not self.memory_sizes or min(self.memory_sizes) < 1:
            raise ConfigError("memory_sizes needs at least one positive K, e.g. memory_sizes=[20,40,80]")
        if len(set(self.memory_sizes)) != len(self.memory_sizes):
            raise ConfigError(f"memory_sizes lists a K twice: {self.memory_sizes}")
        if self.headline_k not in self.memory_sizes:
            raise ConfigError(f"headline_k={self.headline_k} is not one of memory_sizes {self.memory_sizes}")
        if self.seed_batch < 1:
            raise ConfigError(f"seed_batch must be >= 1 (seeds per trial), got {self.seed_batch}")
        if not self.seeds:
            raise ConfigError("seeds needs at least one integer, e.g. seeds=[0,1,2]")
        if len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ConfigError(f"seeds must be distinct non-negative integers, got {self.seeds}")
        if self.share not in SHARES:
            raise ConfigError(f"share must be exact or legacy, got '{self.share}'")
        for b in [self.blur, *self.extra_blurs]:
            if not 0 <= b < 1:
                raise ConfigError(f"blur values must be in [0, 1), got {b}; use 0.1 for Blurry10, 0 for disjoint")
        blurs = [self.blur, *self.extra_blurs]
        if len(set(blurs)) != len(blurs):
            raise ConfigError(f"extra_blurs must differ from each other and from blur={self.blur}, "
                              f"got {self.extra_blurs}")
        if self.n_tasks < 1:
            raise ConfigError(f"n_tasks must be >= 1, got {self.n_tasks}")
        if self.joint_epochs < 1:
            raise ConfigError(f"joint_epochs must be >= 1 (the joint run gives I_last), got {self.joint_epochs}")
        if self.image_size < 8:
            raise ConfigError(f"image_size must be >= 8 pixels, got {self.image_size}")
        if self.device not in ("auto", "cpu", "mps") and not self.device.startswith("cuda"):
            raise ConfigError(f"device must be auto, cpu, cuda, cuda:<index> or mps, got '{self.device}'")
        if self.threads < 0:
            raise ConfigError(f"threads must be >= 0 (0 = torch's default), got {self.threads}")
        if self.dataset not in DATASETS:
            raise UnknownNameError(f"unknown dataset '{self.dataset}'; choose one of: {', '.join(DATASETS)}")
        models = list_models("rm_*")
        if not self.backbones:
            raise ConfigError(f"backbones needs at least one model, e.g. backbones=[{models[0]}]")
        for m in self.backbones:
            if m not in models:
                raise UnknownNameError(f"unknown model '{m}'; choose one of: {', '.join(models)}")
        if len(set(self.backbones)) != len(self.backbones):
            raise ConfigError(f"backbones lists a model twice: {self.backbones}")
        if self.headline_backbone not in self.backbones:
            raise ConfigError(f"headline_backbone '{self.headline_backbone}' is not one of backbones "
                              f"{self.backbones}; add it there or pick one of them")
        self.executor.validate()
        n_cls = KNOWN_CLASSES.get(self.dataset)
        if n_cls is not None and n_cls % self.n_tasks:
            raise ConfigError(f"{n_cls} classes cannot be split into {self.n_tasks} equal tasks; choose "
                              f"n_tasks that divides {n_cls}")
        self.cl.validate()
        for v in [*self.variants, *self.context_variants]:  # each arm's own settings, every K
            for k in self.memory_sizes:
                settings_for(self, v, k).validate(n_cls)
        check_available(self.dataset, self.data_root)


def _spreads(res: Results, backbone: str, blur: float, k: int) -> np.ndarray:
    return np.asarray([uncertainty_spread(r.get("kept_all", [])) for r in res.get(METHOD, backbone, blur, k)])


# ------------------------------------------------------------------------------------------ the run
@register_experiment("rainbow-memory", paper=PAPER, claim=CLAIM, config=RainbowConfig)
def run(cfg: RainbowConfig, ctx) -> ExperimentResult:
    trials = build_trials(cfg)
    res = Results(cfg, trials, ctx.run_trials(run_one, trials, description="rainbow trials"))
    ks = sorted(cfg.memory_sizes)
    kh, hb, b0 = cfg.headline_k, cfg.headline_backbone, cfg.blur
    sub: list[dict] = []

    # ---- the headline: headline backbone, main blur, headline K, with every gate
    values = arm_values(res, hb, b0, kh)
    n_classes = len(res.get(METHOD, hb, b0, kh)[0]["memory_hist"])
    mech = mechanism_gate(_spreads(res, hb, b0, kh), kh, n_classes)
    head = decide(values, name=f"A_last (%) [{hb}, {blur_name(b0)}, K={kh}]", plan=PLAN, mechanism=mech,
                  positive="balanced" in values)
    verdict, evidence = head
    why = attribution(values)
    if why:
        evidence += f"; where the gain comes from: {why}"
    claim_text = (f"Rainbow Memory beats the strongest simple memory alternative "
                  f"({', '.join(LABELS[a] for a in ALTERNATIVES if a in values)}) in final accuracy A_last "
                  f"on a {blur_name(b0)} online stream at K={kh} ({kh // n_classes} slots per class, {hb}), "
                  "while fine-tuning without memory loses")
    claims = [claim(claim_text, head, evidence, headline=True)]

    # ---- sub-claims per backbone at the main blur
    for b in cfg.backbones:
        vals = arm_values(res, b, b0, kh)
        if b != hb:
            h = decide(vals, name=f"A_last (%) [{b}, {blur_name(b0)}, K={kh}]")
            why_b = attribution(vals)
            sub.append(claim(f"[{b}] RM beats the strongest simple alternative at K={kh}, fine-tune losing",
                             h, h.evidence + (f"; {why_b}" if why_b else "")))
        for k in ks:
            slots = f"K={k} ({k // n_classes} per class)"
            t = superiority(res.vals(METHOD, b, b0, k), res.vals("er", b, b0, k), margin=MARGIN,
                            min_seeds=MIN_SEEDS, name=f"A_last (%) at K={k}", other_name="ER-reservoir")
            sub.append(claim(f"[{b}] RM beats ER-reservoir (the paper's replay baseline) at {slots}", t))
            if res.has("balanced", b, b0, k):
                t = superiority(res.vals(METHOD, b, b0, k), res.vals("balanced", b, b0, k), margin=MARGIN,
                                min_seeds=MIN_SEEDS, name=f"A_last (%) at K={k}",
                                other_name="class-balanced random memory")
                sub.append(claim(f"[{b}] the uncertainty stride beats class-balanced random memory (same flow) "
                                 f"at {slots}", t))
                t = superiority(res.vals("balanced", b, b0, k), res.vals("er", b, b0, k), margin=MARGIN,
                                min_seeds=MIN_SEEDS, name=f"A_last (%) at K={k}", other_name="ER-reservoir")
                sub.append(claim(f"[{b}] class balance alone (class-balanced random memory) beats ER-reservoir "
                                 f"at {slots}", t))
        if len(ks) > 1:
            gap = {k: res.vals(METHOD, b, b0, k) - res.vals("er", b, b0, k) for k in ks}
            t = superiority(gap[ks[0]], gap[ks[-1]], margin=MARGIN, min_seeds=MIN_SEEDS,
                            name=f"RM - ER gap (points), K={ks[0]} vs K={ks[-1]}", other_name=f"gap at K={ks[-1]}")
            sub.append(claim(f"[{b}] the RM - ER gap shrinks as K grows ({ks[0]} -> {ks[-1]})", t))
        if res.has("rm_da", b, b0, kh):
            t = superiority(res.vals("rm_da", b, b0, kh), vals[METHOD], margin=MARGIN, min_seeds=MIN_SEEDS,
                            name=f"A_last (%) at K={kh}", other_name="RM without DA")
            sub.append(claim(f"[{b}] CutMix + AutoAugment improve RM at K={kh}", t))

    # ---- other blur levels (headline K), every backbone
    for blur in cfg.extra_blurs:
        for b in cfg.backbones:
            vals = arm_values(res, b, blur, kh)
            sub.append(claim(f"[{b}, {blur_name(blur)}] RM beats the strongest simple alternative at K={kh}, "
                             "fine-tune losing", decide(vals, name=f"A_last (%) [{b}, {blur_name(blur)}, K={kh}]")))
            t = superiority(vals[METHOD], vals["er"], margin=MARGIN, min_seeds=MIN_SEEDS,
                            name=f"A_last (%) at K={kh}", other_name="ER-reservoir")
            sub.append(claim(f"[{b}, {blur_name(blur)}] RM beats ER-reservoir at K={kh}", t))

    metrics, table = metrics_and_table(cfg, res, ks)
    for b in cfg.backbones:
        for k in ks:
            metrics[f"mechanism/u_spread_{b.removeprefix('rm_').removesuffix('_digits')}_K{k}"] = float(
                np.nanmean(_spreads(res, b, b0, k)))
    figs = figures(cfg, res, ks, ctx)
    planned = PLAN.planned_n
    notes = ("A_last/A_avg/F_last/I_last in %, mean ± std over seeds, from the final epoch of each task "
             "(no test-set model selection); I_last = joint accuracy - A_last. 'method' = RM without "
             "augmentation. Every arm uses the same online flow (one stream pass at 0.1 x lr mixed "
             "half/half with memory, then E epochs on memory, head and optimiser reset per task); only "
             f"the memory policy differs (GDumb retrains from scratch on its memory). Headline: {hb} at "
             f"{blur_name(b0)}, K={kh}; the one-sided 95% lower bound of the paired gain must exceed {MARGIN:g} "
             f"points; fine-tune must lose; class-balanced random must beat ER-reservoir (positive control); the "
             f"kept memory's uncertainty range and slots per class must pass the mechanism gate; the strongest "
             f"alternative's 90% interval must lie in [{CALIBRATION[0]:g}, {CALIBRATION[1]:g}]%. SESOI "
             f"{PLAN.sesoi:g} points, pilot SD {PLAN.pilot_sd:g}: {planned} seeds for 80% power at the SESOI and 80% "
             f"power to 'not held' at no true gain; this run has "
             f"{len(cfg.seeds)}. {cfg.n_tasks} tasks, {cfg.share} blur share, dataset {cfg.dataset}; "
             f"{cfg.seed_batch} seeds per batched trial.")
    return ExperimentResult(verdict, evidence, metrics, claim=claim_text, claims=claims + sub, table=table,
                            figures=figs, notes=notes, headline=head)


__all__ = ["ALTERNATIVES", "CALIBRATION", "CONTROL", "MARGIN", "RainbowConfig", "VARIANTS", "attribution",
           "build_trials", "decide", "run", "run_one", "HELD", "NOT_HELD", "INCONCLUSIVE", "PLAN", "CLSettings"]
