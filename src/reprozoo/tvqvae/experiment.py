"""Experiment ``tvq-vae``: TVQ-VAE vs ProdLDA, gensim LDA and embedding clustering on the Debian
fortunes corpus (11 topical categories), K in {10, 20}, one shared vocabulary; a random-word
negative control and a planted positive control.

The rule (:mod:`reprozoo.tvqvae.experiment_rule`), fixed in code before the runs that decide it:
per seed, average the paper's topic quality (TQ = NPMI x diversity over the best 50% of topics)
over the K values; over >= ``MIN_SEEDS`` paired seeds, the one-sided 95% t-interval of TVQ-VAE's
mean paired gain over the strongest of the three baselines (by mean) must lie above ``TQ_MARGIN``
("held"); "not held" when its upper bound is below the margin, "inconclusive" otherwise. Gates:
the random-word control loses, the clustering baseline beats its planted copy (positive control),
the codebook is in use (mechanism). ``TQ_PLAN`` holds the design (SESOI, pilot SD, planned seeds);
the ``full`` preset runs the planned seeds. Sub-claims: the same rule on NMI against the categories
(k-means on theta), TVQ-VAE vs ProdLDA (the codebook's own contribution), and the all-topic TQ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from reprozoo.data.textcorpora import FORTUNES_TOPICAL, load_fortunes, procedural_corpus, read_corpus
from reprozoo.errors import ConfigError, UnknownNameError
from reprozoo.runtime.config import ExperimentConfig
from reprozoo.runtime.figures import pyplot, save_figure
from reprozoo.runtime.registry import register_experiment
from reprozoo.runtime.report import ExperimentResult
from reprozoo.runtime.trials import Trial
from reprozoo.tvqvae import baselines
from reprozoo.tvqvae.corpus import PreparedCorpus, prepare_corpus
from reprozoo.tvqvae.embeddings import POOLINGS, TokenEncoder
from reprozoo.tvqvae.estimator import TVQVAE
from reprozoo.tvqvae.experiment_rule import (
    CLAIM,
    CONTROL,
    MIN_SEEDS,
    NMI_MARGIN,
    PLANTED_WORDS,
    TQ_MARGIN,
    TQ_PLAN,
    code_perplexity,
    decide,
)
from reprozoo.tvqvae.metrics import best_half, clustering_scores, topic_quality

ARMS = ("tvq", "prodlda", "lda", "cluster", "random", "planted")
BASELINES = ("prodlda", "lda", "cluster")
CORPORA = ("fortunes", "procedural", "file")
PAPER = ("Yoo & Choi, Topic-VQ-VAE: Leveraging Latent Codebooks for Flexible Topic-Guided Document "
         "Generation (AAAI 2024)")


@dataclass
class TVQConfig(ExperimentConfig):
    corpus: str = "fortunes"  # fortunes | procedural | file (data_root: text file / folder / JSON lines)
    categories: list[str] = field(default_factory=lambda: list(FORTUNES_TOPICAL))
    max_per_category: int = 150  # fortunes: seeded cap per category (0 = all entries)
    procedural_docs: int = 300
    procedural_topics: int = 4
    topics: list[int] = field(default_factory=lambda: [10, 20])  # K values
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    encoder: str = ""  # local HF model folder; "" = the bundled all-MiniLM-L6-v2
    max_len: int = 128
    pooling: str = "whole"  # whole (released code: whole-word tokens only) | mean (average word pieces)
    min_df: int = 3
    max_df: float = 0.5
    n_codes: int = 300
    code_dim: int = 100
    n_neighbors: int = 5
    vq_hidden: list[int] = field(default_factory=lambda: [128, 128, 256])  # paper: 500, 500, 1000
    quantize: str = "sum"
    codebook_init: str = "data"  # data | uniform (released code: U(-1, 1))
    standardize: bool = True  # standardise token vectors per dimension before the VQ encoder (released: raw)
    restart_dead: bool = True  # move codes unused for an epoch onto random tokens (released: no)
    vq_epochs: int = 10
    vq_max_tokens: int = 10000  # tokens per VQ epoch (0 = all)
    topic_epochs: int = 200
    lr: float = 1e-3
    batch_size: int = 256
    alpha_hidden: int = 1  # the released default: an MLP topic map (0 = the linear variant)
    w_code: float = 0.0
    lda_passes: int = 10
    with_cv: bool = True
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    threads: int = 1

    PRESETS: ClassVar[dict] = {
        "smoke": {"corpus": "procedural", "procedural_docs": 160, "topics": [4], "seeds": [0], "n_codes": 48,
                  "vq_hidden": [64, 64], "vq_epochs": 2, "topic_epochs": 30, "lda_passes": 2, "max_len": 64,
                  "min_df": 2, "with_cv": False, "executor": {"kind": "serial"}},
        "quick": {"executor": {"kind": "local", "workers": 2}},
        # the planned power of TQ_PLAN: the quick settings at the planned number of seeds
        "full": {"seeds": list(range(TQ_PLAN.planned_n or MIN_SEEDS)), "executor": {"kind": "local", "workers": 2}},
        "paper": {"max_per_category": 0, "max_len": 256, "vq_hidden": [500, 500, 1000], "vq_epochs": 1000,
                  "vq_max_tokens": 0, "topic_epochs": 500, "lda_passes": 20, "topics": [10, 20, 30, 40, 50],
                  "codebook_init": "uniform", "standardize": False, "restart_dead": False, "threads": 0, "device": "auto"},
    }

    def validate(self) -> None:
        if self.corpus not in CORPORA:
            raise UnknownNameError(f"unknown corpus '{self.corpus}'; choose one of: {', '.join(CORPORA)}")
        if self.corpus == "file" and not self.data_root:
            raise ConfigError("corpus=file needs data_root=PATH (text file, folder of .txt or JSON lines with labels)")
        bad = [a for a in self.arms if a not in ARMS]
        if bad:
            raise UnknownNameError(f"unknown arm {bad}; choose from: {', '.join(ARMS)}")
        if "tvq" not in self.arms or CONTROL not in self.arms or not set(BASELINES) & set(self.arms):
            raise ConfigError("arms must include 'tvq', 'random' (the control) and at least one baseline")
        if "planted" in self.arms and "cluster" not in self.arms:
            raise ConfigError("the 'planted' arm (positive control) is compared with 'cluster'; add 'cluster' to arms")
        if not self.topics or min(self.topics) < 2:
            raise ConfigError(f"topics needs K values >= 2, e.g. topics=[10,20]; got {self.topics}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {POOLINGS}, got '{self.pooling}'")
        if self.quantize not in ("sum", "mean") or self.codebook_init not in ("data", "uniform"):
            raise ConfigError("quantize must be sum|mean and codebook_init data|uniform")
        if not 1 <= self.n_neighbors <= self.n_codes:
            raise ConfigError(f"n_neighbors must be in 1..n_codes ({self.n_codes}), got {self.n_neighbors}")
        for name in ("max_len", "min_df", "code_dim", "topic_epochs", "batch_size", "lda_passes", "procedural_docs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("vq_epochs", "vq_max_tokens", "max_per_category", "w_code"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.max_df <= 1:
            raise ConfigError(f"max_df must be in (0, 1], got {self.max_df}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.alpha_hidden not in (0, 1, 2):
            raise ConfigError(f"alpha_hidden must be 0, 1 or 2, got {self.alpha_hidden}")
        if not self.vq_hidden or min(self.vq_hidden) < 1:
            raise ConfigError(f"vq_hidden needs positive widths, got {self.vq_hidden}")
        if self.corpus == "fortunes":
            from reprozoo.data.textcorpora import load_fortunes as _check

            _check(self.categories, max_per_category=1)  # missing package or category -> one-line error
        if self.corpus == "file":
            read_corpus(self.data_root)  # a missing file or a byte that is not UTF-8 -> one-line error, before any work


def load_corpus(cfg: TVQConfig):
    if cfg.corpus == "fortunes":
        return load_fortunes(cfg.categories, max_per_category=cfg.max_per_category, min_words=3)
    if cfg.corpus == "procedural":
        return procedural_corpus(cfg.procedural_docs, cfg.procedural_topics, seed=0)
    return read_corpus(cfg.data_root)


def prepare(cfg: TVQConfig, progress: bool | None = False) -> PreparedCorpus:
    """The shared corpus (vocabulary, counts, cached embeddings) every arm is fitted on."""
    enc = TokenEncoder(cfg.encoder or None, max_len=cfg.max_len, pooling=cfg.pooling, device=cfg.device,
                       progress=progress)
    # K is checked against the documents and the vocabulary before anything is encoded
    return prepare_corpus(load_corpus(cfg), enc, min_df=cfg.min_df, max_df=cfg.max_df, max_topics=max(cfg.topics))


def _fit_arm(arm: str, data: PreparedCorpus, cfg: TVQConfig, seed: int) -> dict[int, tuple[list, np.ndarray, list]]:
    """{K: (top-25 word lists, theta, word scores of the top words)} for one arm."""
    out = {}
    if arm == "tvq":
        vq = None
        for k in cfg.topics:
            m = TVQVAE(k, n_codes=cfg.n_codes, code_dim=cfg.code_dim, n_neighbors=cfg.n_neighbors,
                       vq_hidden=tuple(cfg.vq_hidden), quantize=cfg.quantize, codebook_init=cfg.codebook_init,
                       standardize=cfg.standardize, restart_dead=cfg.restart_dead, vq_epochs=cfg.vq_epochs, vq_max_tokens=cfg.vq_max_tokens,
                       topic_epochs=cfg.topic_epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                       alpha_hidden=cfg.alpha_hidden, w_code=cfg.w_code, device=cfg.device, random_state=seed)
            m.fit_prepared(data, vq=vq)  # one VQ autoencoder per seed, shared by the K values
            vq = m.vq_
            scores = [[s for _, s in m.get_topic(t, 25)] for t in range(k)]
            out[k] = (m.get_topics(25), m.transform_counts(m.code_counts_), scores,
                      {"codebook_usage": m.codebook_usage_,
                       "code_perplexity": code_perplexity(m.code_counts_.numpy())})
        return out
    for k in cfg.topics:
        if arm == "prodlda":
            topics, theta = baselines.prodlda(data, k, seed, epochs=cfg.topic_epochs, lr=cfg.lr,
                                              batch_size=cfg.batch_size, device=cfg.device)
        elif arm == "lda":
            topics, theta = baselines.lda(data, k, seed, passes=cfg.lda_passes)
        elif arm == "cluster":
            topics, theta = baselines.embedding_clusters(data, k, seed)
        elif arm == "planted":
            topics, theta = baselines.planted_topics(data, k, seed, n_planted=PLANTED_WORDS)
        else:
            topics, theta = baselines.random_topics(data, k, seed)
        out[k] = (topics, theta, None, {})
    return out


_SHARED: dict[tuple, tuple[PreparedCorpus, Any]] = {}  # one entry: this process's corpus and gensim dictionary
_CORPUS_KEYS = ("corpus", "categories", "max_per_category", "procedural_docs", "procedural_topics", "data_root",
                "encoder", "max_len", "pooling", "min_df", "max_df", "topics", "device")


def shared_corpus(cfg: TVQConfig) -> tuple[PreparedCorpus, Any]:
    """The seed-independent work of a trial -- the prepared corpus (vocabulary, counts, cached
    embeddings) and the gensim dictionary the coherence scores use -- built once per process and
    reused by every later trial of the same corpus settings (a worker runs many trials)."""
    key = tuple(repr(getattr(cfg, name, None)) for name in _CORPUS_KEYS)
    if key not in _SHARED:
        from reprozoo.runtime.extras import require

        data = prepare(cfg)
        _SHARED.clear()
        _SHARED[key] = (data, require("gensim.corpora", what="the tvq-vae experiment").Dictionary(data.tokens))
    return _SHARED[key]


def run_one(trial: Trial, tctx) -> dict[str, Any]:
    """One arm x seed: fit at every K and score it (plain data)."""
    cfg: TVQConfig = tctx.config
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data, dictionary = shared_corpus(cfg)
    result: dict[str, Any] = {"arm": trial.arm, "seed": trial.seed, "n_docs": len(data.texts),
                              "vocab": len(data.vocab), "by_k": {}}
    for k, (topics, theta, scores, extra) in _fit_arm(trial.arm, data, cfg, trial.seed).items():
        q = topic_quality(topics, data.tokens, with_cv=cfg.with_cv, dictionary=dictionary)
        row = {key: v for key, v in q.items()}
        if data.labels is not None:
            row.update(clustering_scores(theta, data.labels, k, seed=trial.seed))
        row["topics"] = [t[:10] for t in topics]
        if scores is not None:
            row["scores"] = [s[:10] for s in scores]
        row.update(extra)
        result["by_k"][str(k)] = row
    return result


def _per_seed(results: list[dict], arm: str, metric: str, ks: list[int]) -> np.ndarray:
    """Per seed (in seed order): the metric averaged over the K values."""
    rows = sorted((r for r in results if r["arm"] == arm), key=lambda r: r["seed"])
    return np.asarray([np.mean([r["by_k"][str(k)][metric] for k in ks]) for r in rows])


@register_experiment("tvq-vae", paper=PAPER, claim=CLAIM, config=TVQConfig)
def run(cfg: TVQConfig, ctx) -> ExperimentResult:
    data = prepare(cfg, progress=ctx.progress)  # encode once (cached); the trials reuse the cache
    trials = [Trial(arm, s) for arm in cfg.arms for s in cfg.seeds]
    results = ctx.run_trials(run_one, trials, description="tvq-vae arms x seeds")
    ks = list(cfg.topics)
    labelled = data.labels is not None
    base = [a for a in BASELINES if a in cfg.arms]
    vals = {a: {m: _per_seed(results, a, m, ks) for m in ("tq_best50", "tq_all", "nmi_kmeans")
                if m != "nmi_kmeans" or labelled} for a in cfg.arms}
    usage = [r["by_k"][str(k)].get("code_perplexity") for r in results if r["arm"] == "tvq" for k in ks]
    head, claims = decide(vals, base, usage)

    metrics: dict[str, float] = {}
    table = []
    names = ("npmi_best50", "npmi_all", "diversity_best50", "diversity_all", "tq_best50", "tq_all", "cv_all",
             "nmi_kmeans", "purity_kmeans", "nmi_argmax", "purity_argmax")
    for arm in cfg.arms:
        group = {"tvq": "method", CONTROL: "control", "planted": "positive_planted"}.get(arm, f"baseline_{arm}")
        for k in ks:
            row: dict[str, Any] = {"arm": arm, "K": k}
            for m in names:
                got = [r["by_k"][str(k)][m] for r in results if r["arm"] == arm and m in r["by_k"][str(k)]]
                if got:
                    metrics[f"{group}/{m}_K{k}"] = float(np.mean(got))
                    row[m] = f"{np.mean(got):.3f} ± {np.std(got):.3f}"
            table.append(row)
        for m in vals[arm]:
            metrics[f"{group}/{m}_meanK"] = float(vals[arm][m].mean())
    metrics["corpus/n_docs"] = float(len(data.texts))
    metrics["corpus/vocab"] = float(len(data.vocab))
    metrics["corpus/tokens"] = float(len(data.encoded.words))
    metrics["corpus/skipped_docs"] = float(data.n_skipped)
    codes_used = [r["by_k"][str(k)].get("codebook_usage") for r in results if r["arm"] == "tvq" for k in ks]
    metrics["method/codebook_usage"] = float(np.mean([u for u in codes_used if u is not None]))
    metrics["method/code_perplexity_share"] = float(np.mean([u for u in usage if u is not None]))
    figures = _figures(cfg, results, ks, ctx)
    notes = (f"corpus {cfg.corpus}: {len(data.texts)} documents ({data.n_skipped} skipped: no vocabulary word), "
             f"vocabulary {len(data.vocab)} words (min_df={cfg.min_df}, max_df={cfg.max_df}), "
             f"{len(data.encoded.words)} embedded whole-word tokens; encoder "
             f"{cfg.encoder or 'all-MiniLM-L6-v2 (bundled)'}, max_len {cfg.max_len}. NPMI = gensim c_npmi, top 10, "
             "reference = the corpus itself; 'best50' = the paper's protocol (mean over the best half of topics, "
             "diversity@25 over the same half); 'all' = every topic. TQ = NPMI x diversity. NMI/purity: k-means "
             "(k = K) on theta, and argmax theta, against the categories. Values mean ± std over seeds. "
             f"VQ: {cfg.n_codes} codes x {cfg.code_dim}, {cfg.n_neighbors} nearest summed, hidden {cfg.vq_hidden}, "
             f"{cfg.vq_epochs} epochs x {cfg.vq_max_tokens or 'all'} tokens, codebook init {cfg.codebook_init}; "
             f"topic stage {cfg.topic_epochs} epochs; LDA {cfg.lda_passes} passes. Positive control: clustering "
             f"vs an independent clustering draw with {PLANTED_WORDS} random word(s) planted at the end of each "
             "top-10 list.")
    return ExperimentResult.from_headline(head, metrics, claims=claims, table=table, figures=figures, notes=notes)


def _figures(cfg: TVQConfig, results: list[dict], ks: list[int], ctx) -> list[str]:
    plt = pyplot()
    paths = []
    # 1. metric bars with error bars (over seeds) per method, at every K
    metrics = [m for m in ("tq_best50", "tq_all", "npmi_best50", "diversity_best50", "nmi_kmeans")
               if m in results[0]["by_k"][str(ks[0])]]
    fig, axes = plt.subplots(len(ks), len(metrics), figsize=(3.2 * len(metrics), 2.8 * len(ks)), squeeze=False)
    for i, k in enumerate(ks):
        for j, m in enumerate(metrics):
            ax = axes[i][j]
            vals = [[r["by_k"][str(k)][m] for r in results if r["arm"] == a] for a in cfg.arms]
            ax.bar(range(len(cfg.arms)), [np.mean(v) for v in vals], yerr=[np.std(v) for v in vals], capsize=3,
                   color=["C3" if a == "tvq" else "C7" if a == CONTROL else "C0" for a in cfg.arms])
            ax.set_xticks(range(len(cfg.arms)), cfg.arms, rotation=30, fontsize=7)
            ax.set_title(f"{m} (K={k})", fontsize=8)
            ax.axhline(0, color="k", lw=0.6)
    save_figure(fig, ctx.out_dir, "metrics_per_method")
    paths.append("figures/metrics_per_method.png")
    # 2. topic-word bars: TVQ-VAE's best topics (first seed, smallest K), standardised word scores
    tvq = min((r for r in results if r["arm"] == "tvq"), key=lambda r: r["seed"])
    row = tvq["by_k"][str(ks[0])]
    best = best_half(np.asarray(row["npmi_per_topic"]))[:6]
    fig, axes = plt.subplots(1, len(best), figsize=(2.3 * len(best), 3.0), squeeze=False)
    for ax, t in zip(axes[0], best):
        words, scores = row["topics"][t][:8], row["scores"][t][:8]
        ax.barh(range(len(words))[::-1], scores, color="C3")
        ax.set_yticks(range(len(words))[::-1], words, fontsize=7)
        ax.set_title(f"topic {t} (NPMI {row['npmi_per_topic'][t]:.2f})", fontsize=7)
        ax.tick_params(axis="x", labelsize=6)
    fig.suptitle(f"TVQ-VAE best topics (K={ks[0]}, seed {tvq['seed']})", fontsize=8)
    save_figure(fig, ctx.out_dir, "tvq_best_topics")
    paths.append("figures/tvq_best_topics.png")
    return paths


__all__ = ["TVQConfig", "run", "run_one", "prepare", "shared_corpus", "decide", "ARMS", "TQ_MARGIN", "NMI_MARGIN",
           "TQ_PLAN"]
