"""Experiment ``active-asr``: active learning + augmented consistency regularisation at equal budget.

Data: spoken commands synthesised offline with espeak-ng (:mod:`reprozoo.data.spoken_commands`);
the test split uses accents, voice variants and sentences the pool never contains. Every arm of a
seed starts from the same random seed set, the same initial weights and the same number of
training steps per round (warm start across rounds); arms differ only in how the next utterances
are chosen and in whether the unlabelled rest of the pool is used:

- ``random_sup``: random selection, supervised only (the paper's named baseline);
- ``al_sup``: least-confidence active learning, supervised only;
- ``random_cr``: random selection + consistency regularisation;
- ``al_cr``: active learning + consistency regularisation (the method);
- ``al_pl``: active learning + plain pseudo-labelling without augmentation (ablation: does the
  *augmented* consistency matter?);
- ``upper``: every pool utterance labelled (upper bound; the positive control against ``control``);
- ``control``: the initial seed set only, never more labels (the negative control).

Rule and gates (negative control, positive control ``upper`` vs ``control``, calibration, the
pseudo-labelled share as the mechanism gate) and the design ``PLAN``: :mod:`reprozoo.activeasr.rule`.
Presets ``quick`` (the demo) and ``full`` (the planned power) use the pilot-chosen confidence
threshold ``CR_TAU`` and start the unsupervised loss after round 0, so round 0 is the same for
every arm of a seed that starts from the initial set.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from reprozoo.activeasr.features import FeatureConfig, Featurizer
from reprozoo.activeasr.inference import save_transcriber
from reprozoo.activeasr.loop import ALConfig, run_active_learning
from reprozoo.activeasr.rule import (  # noqa: F401  (re-exported: the rule's names)
    ALTERNATIVES,
    BASELINE,
    CALIBRATION_CER,
    CLAIM,
    CONTROL,
    CR_TAU,
    MARGIN_CER,
    METHOD,
    MIN_PSEUDO_SHARE,
    MIN_SEEDS,
    PLAN,
    POSITIVE,
    UNSUP_ARMS,
    decide,
    pseudo_share,
)
from reprozoo.activeasr.training import CTCTrainer, SpeechSet, TrainSettings
from reprozoo.data.spoken_commands import CommandCorpusConfig, build_command_corpus, load_command_corpus
from reprozoo.errors import ConfigError, UnknownNameError
from reprozoo.runtime.config import ExperimentConfig
from reprozoo.runtime.figures import pyplot, save_figure
from reprozoo.runtime.registry import create_model, list_models, register_experiment
from reprozoo.runtime.report import ExperimentResult
from reprozoo.runtime.trials import Trial

ARMS: dict[str, tuple[str, str]] = {  # name -> (selection, unsupervised branch)
    "random_sup": ("random", "none"),
    "al_sup": ("al", "none"),
    "random_cr": ("random", "cr"),
    "al_cr": ("al", "cr"),
    "al_pl": ("al", "pl"),
    "upper": ("all", "none"),
    "control": ("none", "none"),
}
PAPER = ("Bang, Kim, Yoo, Ha, Efficient Active Learning for Automatic Speech Recognition via Augmented "
         "Consistency Regularization (arXiv 2006.11021, 2020)")

QUICK_CORPUS = {"n_pool": 300, "n_dev": 10, "n_test": 80, "pad_ms": [0, 150], "rate_wpm": [150, 200]}
QUICK_AL = {"initial": 30, "per_round": 30, "rounds": 2, "steps_per_round": 100}
# tau: the pilot's threshold (rule.CR_TAU); start_step: no unsupervised loss in round 0 (an untrained
# teacher's transcripts are noise, and round 0 stays identical across the arms of a seed)
QUICK_TRAIN = {"lr": 3e-3, "batch_size": 12, "mu": 1, "tau": CR_TAU, "start_step": QUICK_AL["steps_per_round"]}
# the plan's seeds (at least 8); they start at FULL_FIRST_SEED, after the seeds of the runs whose SD set the plan
# (design 4: 0-62; 63-79 were given to design 3's repeat, stopped when design 4 was made), so the run of record
# does not reuse its pilot
FULL_SEEDS = max(PLAN.planned_n or 0, 8)
FULL_FIRST_SEED = 80
FULL_ARMS = (BASELINE, *[a for a in ALTERNATIVES if a != BASELINE], METHOD, POSITIVE, CONTROL)


@dataclass
class ActiveASRConfig(ExperimentConfig):
    corpus: CommandCorpusConfig = field(default_factory=CommandCorpusConfig)
    # real data instead of the synthetic corpus: JSON-lines manifests or LibriSpeech-style folders
    pool_data: str = ""
    test_data: str = ""
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: str = "ctc_crnn_small"
    al: ALConfig = field(default_factory=ALConfig)  # al.acquisition: the AL arms' criterion; al.unsup is set per arm
    train: TrainSettings = field(default_factory=TrainSettings)
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    n_examples: int = 4  # test transcripts kept per arm for the report
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    threads: int = 1

    PRESETS: ClassVar[dict] = {
        "smoke": {"seeds": [0], "model": "ctc_tcn_tiny", "executor": {"kind": "serial"},
                  "corpus": {"n_pool": 32, "n_dev": 2, "n_test": 8},
                  "al": {"initial": 8, "per_round": 8, "rounds": 1, "steps_per_round": 4},
                  "train": {"batch_size": 4}},
        # the demo: 3 seeds (underpowered when the MDE exceeds the SESOI); CR from round 1 at the pilot's tau
        "quick": {"model": "ctc_tcn_tiny", "corpus": QUICK_CORPUS, "al": QUICK_AL, "train": QUICK_TRAIN},
        # the planned power (PLAN): the quick trials of the headline arms and both controls on FULL_SEEDS
        # seeds (random_cr / al_pl only serve sub-claims: left out to halve the CPU time)
        "full": {"model": "ctc_tcn_tiny", "corpus": QUICK_CORPUS, "al": QUICK_AL, "train": QUICK_TRAIN,
                 "seeds": list(range(FULL_FIRST_SEED, FULL_FIRST_SEED + FULL_SEEDS)), "arms": list(FULL_ARMS)},
        "paper": {},
    }

    def validate(self) -> None:
        self.corpus.validate()
        self.features.validate()
        self.train.validate()
        if self.features.sample_rate != self.corpus.sample_rate:
            raise ConfigError(f"features.sample_rate ({self.features.sample_rate}) must equal corpus.sample_rate "
                              f"({self.corpus.sample_rate})")
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise UnknownNameError(f"unknown arm {unknown}; choose from: {', '.join(ARMS)}")
        need = {METHOD, CONTROL, POSITIVE, *ALTERNATIVES}
        if not need <= set(self.arms):
            raise ConfigError(f"arms must include {sorted(need)} (the headline compares them)")
        if self.al.acquisition == "random":
            raise ConfigError("al.acquisition is the active arms' criterion; pick least_confidence, "
                              "frame_entropy or mc_dropout (random arms are separate)")
        if bool(self.pool_data) != bool(self.test_data):
            raise ConfigError("set both pool_data and test_data (manifest .jsonl files or LibriSpeech-style folders)")
        for path in (self.pool_data, self.test_data):
            if path and not Path(path).exists():
                raise ConfigError(f"{path}: no such manifest or folder")
        self.al.validate(None if self.pool_data else self.corpus.n_pool)
        if self.model not in list_models("ctc_*"):
            raise UnknownNameError(f"unknown model '{self.model}'; choose one of: {', '.join(list_models('ctc_*'))}")
        if self.n_examples < 0:
            raise ConfigError(f"n_examples must be >= 0, got {self.n_examples}")
        if not self.seeds:
            raise ConfigError("seeds needs at least one integer")


_DATA: dict[str, tuple[SpeechSet, SpeechSet]] = {}


def _read_items(path: str) -> list[dict]:
    from reprozoo.data.speech import read_librispeech, read_manifest

    return read_librispeech(path) if Path(path).is_dir() else read_manifest(path)[0]


def load_sets(cfg: ActiveASRConfig) -> tuple[SpeechSet, SpeechSet]:
    """(pool, test) of the configured corpus (or of ``pool_data`` / ``test_data``), cached per process."""
    key = repr((asdict(cfg.corpus), cfg.pool_data, cfg.test_data))
    if key not in _DATA:
        sr = cfg.features.sample_rate
        if cfg.pool_data:
            pool_items, test_items = _read_items(cfg.pool_data), _read_items(cfg.test_data)
        else:
            corpus = load_command_corpus(cfg.corpus, progress=False)
            pool_items, test_items = corpus["pool"], corpus["test"]
        _DATA.clear()
        _DATA[key] = (SpeechSet.from_items(pool_items, sr), SpeechSet.from_items(test_items, sr))
    return _DATA[key]


def arm_config(cfg: ActiveASRConfig, arm: str, n_pool: int) -> ALConfig:
    selection, unsup = ARMS[arm]
    al = ALConfig(**{**asdict(cfg.al), "unsup": unsup})
    if selection == "random":
        al.acquisition = "random"
    elif selection in ("all", "none"):  # fixed labelled sets: same rounds and steps, no acquisitions
        al.acquisition, al.per_round = "random", 0
        if selection == "all":
            al.initial = n_pool
    return al


def run_one(trial: Trial, tctx) -> dict[str, Any]:
    """One arm x seed: the whole active-learning run; returns its budget points."""
    cfg: ActiveASRConfig = tctx.config
    cpu0 = time.process_time()
    pool, test = load_sets(cfg)
    al = arm_config(cfg, trial.arm, len(pool))
    seed = trial.seed
    initial = np.random.default_rng([seed, 1]).permutation(len(pool))[: al.initial].tolist()
    with torch.random.fork_rng():  # identical initial weights for every arm of a seed
        torch.manual_seed(seed)
        model = create_model(cfg.model, n_mels=cfg.features.n_mels)
    total = al.steps_per_round * (al.rounds + 1)
    trainer = CTCTrainer(model, cfg.train, total_steps=total, generator=torch.Generator().manual_seed(seed),
                         featurizer=Featurizer(cfg.features))
    out = run_active_learning(trainer, pool, test, al, rng=np.random.default_rng([seed, 2]), initial=initial,
                              keep_examples=cfg.n_examples)
    if trial.arm == METHOD:  # the method's model, usable with `reprozoo transcribe --checkpoint`
        save_transcriber(model, tctx.workdir / "model.safetensors", cfg.features)
    return {"arm": trial.arm, "seed": seed, "points": out["points"], "oracle_seconds": out["oracle_seconds"],
            "n_labelled": len(out["labelled"]), "cpu_s": time.process_time() - cpu0}


def _cer(results: dict[str, list[dict]], arm: str, r: int) -> np.ndarray:
    return np.asarray([res["points"][r]["cer"] for res in results[arm]])


@register_experiment("active-asr", paper=PAPER, claim=CLAIM, config=ActiveASRConfig)
def run(cfg: ActiveASRConfig, ctx) -> ExperimentResult:
    if not cfg.pool_data:
        build_command_corpus(cfg.corpus, progress=ctx.progress)  # once, before the trials (they read the cache)
    else:
        cfg.al.validate(len(load_sets(cfg)[0]))  # budget vs the real pool, before any trial
    trials = [Trial(arm, s) for arm in cfg.arms for s in cfg.seeds]
    flat = ctx.run_trials(run_one, trials, description="active-asr arms x seeds")
    results: dict[str, list[dict]] = {a: [] for a in cfg.arms}
    for t, res in zip(trials, flat):
        results[t.arm].append(res)
    head, claims = decide(results)
    metrics: dict[str, float] = {"trials/cpu_s": float(sum(r["cpu_s"] for rs in results.values() for r in rs))}
    table = []
    for arm in cfg.arms:
        group = {METHOD: "method", BASELINE: "baseline"}.get(arm, arm)
        for r, p in enumerate(results[arm][0]["points"]):
            c = _cer(results, arm, r)
            w = np.asarray([res["points"][r]["wer"] for res in results[arm]])
            metrics[f"{group}/cer_round{r}"] = float(c.mean())
            metrics[f"{group}/wer_round{r}"] = float(w.mean())
            metrics[f"{group}/labelled_round{r}"] = float(p["labelled"])
            share = pseudo_share(results, arm, [r]) if ARMS[arm][1] != "none" else None
            if share is not None:  # the arms that use the unlabelled pool: pseudo-labelled share per round
                metrics[f"{group}/pseudo_share_round{r}"] = share
            table.append({"arm": arm, "labelled": p["labelled"],
                          "hours": round(float(np.mean([res["points"][r]["hours"] for res in results[arm]])), 4),
                          "CER %": f"{c.mean():.2f} ± {c.std(ddof=1) if c.size > 1 else 0:.2f}",
                          "WER %": f"{w.mean():.2f}", "steps": p["step"]})
    figures = _figures(cfg, results, ctx)
    notes = (f"CER/WER are corpus-level (sum of edit distances / sum of reference lengths), in %, mean ± std over "
             f"seeds {cfg.seeds}, greedy CTC decoding, on {cfg.corpus.n_test} test utterances with held-out accents "
             f"{cfg.corpus.test_accents}, variants {cfg.corpus.test_variants} and sentences. Model {cfg.model}; "
             f"{cfg.al.steps_per_round} steps per round, warm start; AL criterion {cfg.al.acquisition}; budget "
             f"{cfg.al.initial} + {cfg.al.rounds} x {cfg.al.per_round:g} {cfg.al.budget_unit} of {cfg.corpus.n_pool}. "
             f"Confidence threshold tau {cfg.train.tau:g}, unsupervised loss from step {cfg.train.start_step}. "
             f"Margin {MARGIN_CER} CER points (one-sided 95% t-interval of the paired CER reduction); mechanism gate: "
             f"pseudo-labelled share >= {MIN_PSEUDO_SHARE:g}. CPU time of all trials: "
             f"{sum(r['cpu_s'] for rs in results.values() for r in rs):.0f} s.")
    return ExperimentResult.from_headline(head, metrics, claims=claims, table=table, figures=figures, notes=notes)


def _figures(cfg: ActiveASRConfig, results: dict[str, list[dict]], ctx) -> list[str]:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for arm in cfg.arms:
        pts = results[arm][0]["points"]
        hours = [np.mean([res["points"][r]["hours"] for res in results[arm]]) for r in range(len(pts))]
        c = np.asarray([[res["points"][r]["cer"] for r in range(len(pts))] for res in results[arm]])
        err = c.std(0, ddof=1) if c.shape[0] > 1 else np.zeros(c.shape[1])
        ax.errorbar(hours, c.mean(0), yerr=err, marker="o", capsize=3, label=arm, lw=2.2 if arm == METHOD else 1.2)
    ax.set(xlabel="labelled audio (hours)", ylabel="test CER (%)", title="CER vs labelled audio (mean ± std over seeds)")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    paths = [save_figure(fig, ctx.out_dir, "cer_vs_hours")]
    if cfg.n_examples:
        pool, test = load_sets(cfg)
        lines = []
        for i in range(min(cfg.n_examples, len(test))):
            lines.append(f"REF        {test.texts[i]}")
            for arm in cfg.arms:
                lines.append(f"{arm:<10} {results[arm][0]['points'][-1]['examples'][i]}")
            lines.append("")
        fig, ax = plt.subplots(figsize=(8, 0.18 * len(lines) + 0.6))
        ax.axis("off")
        ax.text(0, 1, "\n".join(lines), family="monospace", fontsize=7, va="top")
        ax.set_title(f"test transcripts at the final budget (seed {cfg.seeds[0]})", fontsize=8)
        paths.append(save_figure(fig, ctx.out_dir, "test_transcripts"))
    return paths
