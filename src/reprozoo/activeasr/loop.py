"""Pool-based active learning: rounds of train -> evaluate -> select -> label.

    L = random seed set of b0 utterances, labelled by the oracle
    for r in 0..R:
        train (warm start: the same model and optimiser continue) on L (+ U \\ L unlabelled for CR)
        evaluate CER / WER on the test set          <- one budget point per round
        if r == R: stop
        score U \\ L with the acquisition function; label the top b (utterances or audio seconds)

The :class:`Oracle` holds the transcripts (e.g. a manifest's) and refuses a second query for the
same utterance; :class:`LabelLedger` keeps the labelled set and every round's cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from reprozoo.activeasr.acquisition import ACQUISITIONS, score_batch, select_top
from reprozoo.activeasr.metrics import cer, wer
from reprozoo.activeasr.training import UNSUP_MODES, CTCTrainer, SpeechSet, transcribe
from reprozoo.errors import ConfigError, DataError


class Oracle:
    """Answers transcription queries from known transcripts and counts the cost."""

    def __init__(self, texts: list[str], durations: list[float]):
        self._texts, self._durations = list(texts), list(durations)
        self.asked: set[int] = set()
        self.seconds = 0.0

    def label(self, indices: list[int]) -> list[str]:
        again = sorted(set(indices) & self.asked) or sorted({i for i in indices if indices.count(i) > 1})
        if again:
            raise DataError(f"utterances {again[:5]} were already labelled; the oracle is asked once per utterance")
        self.asked.update(indices)
        self.seconds += float(sum(self._durations[i] for i in indices))
        return [self._texts[i] for i in indices]


@dataclass
class LabelLedger:
    n_pool: int
    labelled: list[int] = field(default_factory=list)
    rounds: list[dict] = field(default_factory=list)

    def add(self, indices: list[int], durations: list[float]) -> None:
        dup = set(indices) & set(self.labelled)
        if dup or len(set(indices)) != len(indices):
            raise DataError(f"utterances labelled twice: {sorted(dup)[:5]}")
        self.labelled += list(indices)
        self.rounds.append({"added": len(indices), "seconds": float(sum(durations[i] for i in indices))})

    @property
    def unlabelled(self) -> list[int]:
        taken = set(self.labelled)
        return [i for i in range(self.n_pool) if i not in taken]


@dataclass
class ALConfig:
    acquisition: str = "least_confidence"
    unsup: str = "none"  # none | cr | pl
    initial: int = 100  # b0, random
    per_round: float = 100  # b: utterances, or seconds when budget_unit == "seconds"
    rounds: int = 3  # acquisition rounds after the initial one (R)
    budget_unit: str = "utterances"  # utterances | seconds
    steps_per_round: int = 400
    lc_norm: str = "label"
    mc_samples: int = 5
    score_pool_max: int = 0  # score at most this many random unlabelled utterances (0 = all)

    def validate(self, n_pool: int | None = None) -> None:
        if self.acquisition not in ACQUISITIONS:
            raise ConfigError(f"unknown acquisition '{self.acquisition}'; choose one of: {', '.join(ACQUISITIONS)}")
        if self.unsup not in UNSUP_MODES:
            raise ConfigError(f"unsup must be one of {UNSUP_MODES}, got '{self.unsup}'")
        if self.budget_unit not in ("utterances", "seconds"):
            raise ConfigError(f"budget_unit must be 'utterances' or 'seconds', got '{self.budget_unit}'")
        if self.initial < 1 or self.per_round < 0 or self.rounds < 0 or self.steps_per_round < 0:
            raise ConfigError("active learning needs initial >= 1, per_round >= 0, rounds >= 0, steps_per_round >= 0")
        if self.mc_samples < 2:
            raise ConfigError(f"mc_samples must be >= 2, got {self.mc_samples}")
        if n_pool is not None and self.budget_unit == "utterances":
            total = self.initial + self.per_round * self.rounds
            if total > n_pool:
                raise ConfigError(f"the labelling budget ({self.initial} + {self.rounds} x {self.per_round:g} = "
                                  f"{total:g} utterances) exceeds the pool ({n_pool}); lower per_round or rounds")


def score_pool(trainer: CTCTrainer, data: SpeechSet, indices: list[int], cfg: ALConfig, batch_size: int = 64) -> np.ndarray:
    scores = []
    for s in range(0, len(indices), batch_size):
        waves = [data.waves[i] for i in indices[s:s + batch_size]]
        feats, lengths = trainer.feat(waves)
        scores.append(score_batch(cfg.acquisition, trainer.model, feats, lengths, generator=trainer.gen,
                                  norm=cfg.lc_norm, n_samples=cfg.mc_samples))
    return torch.cat(scores).numpy() if scores else np.zeros(0)


def run_active_learning(trainer: CTCTrainer, pool: SpeechSet, test: SpeechSet, cfg: ALConfig, *,
                        rng: np.random.Generator, initial: list[int] | None = None,
                        keep_examples: int = 0) -> dict:
    """Run the loop; returns per-round budget points and the ledger. ``initial`` fixes the seed set
    (shared by every arm of one seed); otherwise it is drawn from ``rng``."""
    cfg.validate(len(pool))
    oracle = Oracle(pool.texts, pool.durations)
    ledger = LabelLedger(len(pool))
    seed_set = list(initial) if initial is not None else rng.permutation(len(pool))[: cfg.initial].tolist()
    oracle.label(seed_set)
    ledger.add(seed_set, pool.durations)
    points = []
    for r in range(cfg.rounds + 1):
        stats = trainer.train(pool, ledger.labelled, ledger.unlabelled, cfg.steps_per_round, cfg.unsup)
        hyps = transcribe(trainer.model, trainer.feat, test.waves)
        points.append({"round": r, "labelled": len(ledger.labelled),
                       "hours": float(sum(pool.durations[i] for i in ledger.labelled)) / 3600,
                       "cer": cer(test.texts, hyps), "wer": wer(test.texts, hyps), "step": trainer.step, **stats,
                       **({"examples": hyps[:keep_examples]} if keep_examples else {})})
        if r == cfg.rounds:
            break
        cand = ledger.unlabelled
        if cfg.score_pool_max and len(cand) > cfg.score_pool_max:
            cand = sorted(rng.choice(cand, cfg.score_pool_max, replace=False).tolist())
        scores = score_pool(trainer, pool, cand, cfg)
        costs = [pool.durations[i] for i in cand] if cfg.budget_unit == "seconds" else None
        chosen = [cand[i] for i in select_top(scores, cfg.per_round, costs=costs, rng=rng)]
        oracle.label(chosen)
        ledger.add(chosen, pool.durations)
    return {"points": points, "labelled": ledger.labelled, "rounds": ledger.rounds, "oracle_seconds": oracle.seconds}
