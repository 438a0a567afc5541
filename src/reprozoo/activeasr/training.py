"""Step-based CTC training with an optional unsupervised branch, and batched decoding.

Each step draws ``batch_size`` labelled utterances (SpecAugment-ed by ``sup_augment``) and, for
``unsup="cr"`` or ``"pl"``, ``mu x batch_size`` unlabelled ones:

- ``cr`` (augmented consistency regularisation): pseudo-label from the teacher's decode of the
  *weak* view, CTC of the student on the *strong* view;
- ``pl`` (plain pseudo-labelling, the ablation): the teacher and the student both see the
  un-augmented utterance;
- ``none``: supervised only.

Loss = CTC_sup + lambda(t) * CTC_unsup (see :mod:`reprozoo.activeasr.consistency`). Training is a
plain loop rather than :class:`reprozoo.runtime.trainer.Trainer` because every step mixes two
sampled streams and arms are compared at equal *step* counts across active-learning rounds.
All randomness (batches, augmentation) comes from one ``torch.Generator``.

``CTCTrainer(..., out_dir=...)`` writes its state (weights, optimiser, EMA teacher, global step,
the generator and global RNG states, the log) to ``out_dir/checkpoints/last.pt`` after every
:meth:`CTCTrainer.train` call; ``CTCTrainer(..., out_dir=..., resume=True)`` restores it, so the calls
made after it continue as if the trainer had never stopped (bit for bit on the CPU). Which calls
remain is the caller's to know: ``trainer.calls`` counts the finished ones (a call interrupted
midway is lost). The folder follows the library's rule (:mod:`reprozoo.runtime.fit_folder`): one
that holds a run is refused without ``resume=True``, and a resume must use the run's settings,
``total_steps``, model size, features and initial ``generator`` state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from reprozoo.activeasr.consistency import EMATeacher, ctc_loss, pseudo_labels, ramp_weight
from reprozoo.activeasr.features import AugmentConfig, Featurizer, strong_augment, weak_augment
from reprozoo.activeasr.text import encode, greedy_decode, normalize
from reprozoo.errors import ConfigError, DataError
from reprozoo.runtime.fit_folder import CHECKPOINT, atomic_save, describe_model, fingerprint, prepare_out_dir
from reprozoo.runtime.seeding import get_rng_state, set_rng_state

UNSUP_MODES = ("none", "cr", "pl")


@dataclass
class SpeechSet:
    """Waves (16 kHz float tensors), normalised transcripts, ids and durations (seconds)."""

    waves: list[torch.Tensor]
    texts: list[str]
    ids: list[str]
    durations: list[float]

    def __len__(self) -> int:
        return len(self.waves)

    @classmethod
    def from_items(cls, items: list[dict], sample_rate: int = 16000, oov: str = "drop") -> SpeechSet:
        """Manifest items (``audio``, ``text``) -> a SpeechSet (audio read and resampled)."""
        from reprozoo.data.speech import load_audio

        waves, texts = [], []
        for it in items:
            waves.append(torch.from_numpy(load_audio(it["audio"], sample_rate)))
            text, _ = normalize(it["text"], oov)
            if not text:
                raise DataError(f"{it['audio']}: transcript {it['text']!r} is empty after normalisation")
            texts.append(text)
        return cls(waves, texts, [str(it.get("id", i)) for i, it in enumerate(items)],
                   [w.numel() / sample_rate for w in waves])


@dataclass
class TrainSettings:
    lr: float = 1e-3
    batch_size: int = 16
    mu: int = 2  # unlabelled batch = mu x batch_size
    grad_clip: float = 5.0  # (inferred)
    tau: float = 0.9  # pseudo-label confidence threshold
    lambda_max: float = 1.0
    ramp_frac: float = 0.2  # ramp-up over this fraction of all training steps
    start_step: int = 0  # no unsupervised loss before this global step
    teacher: str = "eval"  # eval (the model itself, dropout off) | ema
    ema_decay: float = 0.999
    sup_augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(freq_masks=2, freq_width=8,
                                                                             time_masks=2, time_width=20))
    weak: AugmentConfig = field(default_factory=weak_augment)
    strong: AugmentConfig = field(default_factory=strong_augment)

    def validate(self) -> None:
        if self.lr <= 0 or self.batch_size < 1 or self.mu < 1:
            raise ConfigError(f"train needs lr > 0, batch_size >= 1, mu >= 1 (got {self.lr}, {self.batch_size}, {self.mu})")
        if not 0 <= self.tau <= 1:
            raise ConfigError(f"train.tau must be in [0, 1], got {self.tau}")
        if self.lambda_max < 0 or not 0 <= self.ramp_frac <= 1 or self.start_step < 0 or self.grad_clip < 0:
            raise ConfigError("train needs lambda_max >= 0, ramp_frac in [0, 1], start_step >= 0, grad_clip >= 0")
        if self.teacher not in ("eval", "ema"):
            raise ConfigError(f"train.teacher must be 'eval' or 'ema', got '{self.teacher}'")
        if not 0 < self.ema_decay < 1:
            raise ConfigError(f"train.ema_decay must be in (0, 1), got {self.ema_decay}")
        for name in ("sup_augment", "weak", "strong"):
            getattr(self, name).validate(f"train.{name}")


class CTCTrainer:
    """Holds the model, its optimiser and the global step across active-learning rounds (warm start).
    ``out_dir`` / ``resume``: see the module."""

    def __init__(self, model: torch.nn.Module, settings: TrainSettings, *, total_steps: int,
                 generator: torch.Generator, featurizer: Featurizer | None = None,
                 out_dir: str | Path | None = None, resume: bool = False):
        settings.validate()
        self.model, self.s, self.total_steps, self.gen = model, settings, total_steps, generator
        self.feat = featurizer or Featurizer()
        record = {"call": "CTCTrainer", **asdict(settings), "total_steps": total_steps,
                  "model": describe_model(model), "features": repr(getattr(self.feat.logmel, "cfg", None)),
                  "generator": f"sha256 {fingerprint(generator.get_state())}"} if out_dir is not None else {}
        again = prepare_out_dir(out_dir, record, resume=resume, what="a CTC training run")
        self.path = Path(out_dir) / CHECKPOINT if out_dir is not None else None
        self.opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
        self.step = 0
        self.ema = EMATeacher(model, settings.ema_decay) if settings.teacher == "ema" else None
        self.log: list[dict] = []
        if again:
            self._restore()

    @property
    def calls(self) -> int:
        """The number of finished :meth:`train` calls."""
        return len(self.log)

    def _save(self) -> None:
        state = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step,
                 "ema": None if self.ema is None else self.ema.model.state_dict(), "log": self.log,
                 "generator": self.gen.get_state(), "rng": get_rng_state()}
        atomic_save(state, self.path)

    def _restore(self) -> None:
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if self.ema is not None:
            self.ema.model.load_state_dict(state["ema"])
        self.step, self.log = int(state["step"]), list(state["log"])
        self.gen.set_state(state["generator"])
        set_rng_state(state["rng"])

    def _sample(self, n_pool: int, k: int) -> list[int]:
        if n_pool >= k:
            return torch.randperm(n_pool, generator=self.gen)[:k].tolist()
        return torch.randint(n_pool, (k,), generator=self.gen).tolist()

    def _unsup_loss(self, data: SpeechSet, pool: list[int], mode: str) -> tuple[torch.Tensor | None, float]:
        idx = [pool[i] for i in self._sample(len(pool), self.s.mu * self.s.batch_size)]
        waves = [data.waves[i] for i in idx]
        weak = self.s.weak if mode == "cr" else None
        teacher = self.ema.model if self.ema is not None else self.model
        was = teacher.training
        teacher.eval()
        with torch.no_grad():
            fw, nw = self.feat(waves, weak, self.gen)
            lp_t, n_t = teacher(fw, nw)
        teacher.train(was)
        labels, _, keep = pseudo_labels(lp_t, n_t, self.s.tau)
        if not bool(keep.any()):
            return None, 0.0
        kept = [i for i, k in enumerate(keep.tolist()) if k]
        strong = self.s.strong if mode == "cr" else None
        if strong is None:  # plain pseudo-labelling: the student sees exactly the teacher's input
            fs, ns = fw[kept], nw[kept]
        else:
            fs, ns = self.feat([waves[i] for i in kept], strong, self.gen)
        lp_s, n_s = self.model(fs, ns)
        return ctc_loss(lp_s, n_s, [labels[i] for i in kept]), len(kept) / len(idx)

    def train(self, data: SpeechSet, labelled: list[int], unlabelled: list[int], steps: int, mode: str = "none") -> dict:
        """``steps`` optimiser steps on ``labelled`` (+ ``unlabelled`` for cr / pl)."""
        if mode not in UNSUP_MODES:
            raise ConfigError(f"unsupervised mode must be one of {UNSUP_MODES}, got '{mode}'")
        if not labelled:
            raise DataError("training needs at least one labelled utterance")
        self.model.train()
        ramp = int(round(self.s.ramp_frac * self.total_steps))
        sums = {"sup": 0.0, "unsup": 0.0, "kept": 0.0}
        for _ in range(steps):
            idx = [labelled[i] for i in self._sample(len(labelled), self.s.batch_size)]
            feats, lengths = self.feat([data.waves[i] for i in idx], self.s.sup_augment, self.gen)
            lp, n = self.model(feats, lengths)
            loss = ctc_loss(lp, n, [encode(data.texts[i]) for i in idx])
            sums["sup"] += loss.item()
            w = ramp_weight(self.step, lambda_max=self.s.lambda_max, ramp_steps=ramp, start_step=self.s.start_step)
            if mode != "none" and w > 0 and unlabelled:
                lu, kept = self._unsup_loss(data, unlabelled, mode)
                sums["kept"] += kept
                if lu is not None:
                    sums["unsup"] += lu.item()
                    loss = loss + w * lu
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.s.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.s.grad_clip)
            self.opt.step()
            if self.ema is not None:
                self.ema.update(self.model)
            self.step += 1
        out = {k: v / max(steps, 1) for k, v in sums.items()}
        self.log.append({"step": self.step, **out})
        if self.path is not None:
            self._save()
        return out


@torch.no_grad()
def log_posteriors(model: torch.nn.Module, featurizer: Featurizer, waves: list[torch.Tensor],
                   batch_size: int = 64) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Eval-mode (T, b, V) log-posteriors and lengths per batch of ``waves`` (in order)."""
    was = model.training
    model.eval()
    out = []
    for s in range(0, len(waves), batch_size):
        feats, lengths = featurizer(waves[s:s + batch_size])
        out.append(model(feats, lengths))
    model.train(was)
    return out


def transcribe(model: torch.nn.Module, featurizer: Featurizer, waves: list[torch.Tensor],
               batch_size: int = 64) -> list[str]:
    """Greedy CTC transcripts, one per wave."""
    hyps: list[str] = []
    for lp, n in log_posteriors(model, featurizer, waves, batch_size):
        hyps += greedy_decode(lp, n)
    return hyps
