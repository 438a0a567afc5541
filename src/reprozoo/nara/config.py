"""Settings of the ``nara`` experiment (:class:`NaraConfig`): the two tasks, the sampler grids and
the presets; the benchmark builds its tasks from the same settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from reprozoo.errors import ConfigError
from reprozoo.nara.tasks import TaskConfig
from reprozoo.nara.training import FitConfig
from reprozoo.runtime.config import ExperimentConfig

_RULES = "rule constants (NLL margin, spread factor, call/time margins, speed-up bars) are fixed in code"
_LOCKED = {key: _RULES for key in ("margin", "nll_margin", "spread_factor", "call_margin", "time_margin",
                                   "speedup", "min_seeds")}

FULL_SEEDS = 21  # = reprozoo.nara.rules.planned_seeds() (not imported: the rules import this module)


def _digits_task() -> TaskConfig:
    return TaskConfig(kind="digits", observed=0, mother=FitConfig(epochs=40, batch_size=100),
                      prior=FitConfig(epochs=40, batch_size=100), confidence=FitConfig(epochs=10, batch_size=200),
                      confidence_states=6000)


def _sine_task() -> TaskConfig:
    # sized for the 5-minute quick budget: C's training states cost one sequential sample each
    # (48 mother calls), the earlier 4,000 states with 48 channels took most of a trial
    return TaskConfig(kind="sine", observed=16, n_train=2000, n_test=600, n_reference=300, channels=32,
                      mother=FitConfig(epochs=20, batch_size=100), prior=FitConfig(epochs=20, batch_size=100),
                      confidence=FitConfig(epochs=10, batch_size=200), confidence_states=1200)


@dataclass
class NaraConfig(ExperimentConfig):
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    tasks: list[str] = field(default_factory=lambda: ["digits", "sine"])
    digits: TaskConfig = field(default_factory=_digits_task)
    sine: TaskConfig = field(default_factory=_sine_task)
    eval_samples: int = 300  # per split (validation and test), same noise for every sampler
    thresholds: list[float] = field(default_factory=lambda: [0.99, 0.95, 0.9, 0.8, 0.7])
    tolerances: list[float] = field(default_factory=lambda: [0.001, 0.01, 0.1, 0.3, 1.0])  # x sigma
    rejected: str = "warm"  # NARA's rejected tail: warm (Jacobi step) | reprior (redraw from Q)
    time_rounds: int = 3  # CPU time: interleaved rounds over the chosen samplers, median per sampler
    test_curve: bool = False  # also run every non-chosen setting on the test draw (a curve; no rule reads it)

    LOCKED: ClassVar[dict[str, str]] = _LOCKED
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "eval_samples": 24, "thresholds": [0.9, 0.5], "tolerances": [0.1], "time_rounds": 1,
            "digits": {"hidden": [32, 32], "prior_hidden": [32], "confidence_hidden": [8],
                       "mother": {"epochs": 1, "max_steps_per_epoch": 3},
                       "prior": {"epochs": 1, "max_steps_per_epoch": 3},
                       "confidence": {"epochs": 1, "max_steps_per_epoch": 3}, "confidence_states": 64},
            "sine": {"n_train": 64, "n_test": 48, "n_reference": 24, "length": 24, "observed": 8, "channels": 8,
                     "dilations": [1, 2], "prior_hidden": [32], "confidence_hidden": [8],
                     "mother": {"epochs": 1}, "prior": {"epochs": 1}, "confidence": {"epochs": 1},
                     "confidence_states": 64},
        },
        "quick": {},
        # the quick preset's models at the seeds rules.planned_seeds() asks for (80% power at the SESOI of
        # the calls and time designs); digits only: on sines the untrained control is not separable from
        # NARA at any n (C saves ~1% of calls there, below the 5% margin), and a sine trial costs ~5 digits
        # trials; a test keeps the two in step
        "full": {"seeds": list(range(FULL_SEEDS)), "tasks": ["digits"]},
        "paper": {"seeds": [0, 1, 2, 3, 4], "eval_samples": 1000, "time_rounds": 5,
                  "digits": {"mother": {"epochs": 60}, "prior": {"epochs": 60}, "confidence_states": 20000,
                             "confidence": {"epochs": 40}},
                  "sine": {"n_train": 8000, "n_test": 2000, "n_reference": 1000, "channels": 64,
                           "mother": {"epochs": 40}, "prior": {"epochs": 40}, "confidence_states": 10000,
                           "confidence": {"epochs": 40}}},
    }

    def validate(self) -> None:
        bad = [t for t in self.tasks if t not in ("digits", "sine")]
        if bad or not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ConfigError(f"tasks must be a non-empty subset of [digits, sine] without repeats, got {self.tasks}")
        if any(not (0.0 < t <= 1.0) for t in self.thresholds) or not self.thresholds:
            raise ConfigError(f"every threshold must lie in (0, 1], got {self.thresholds}")
        if any(t <= 0 for t in self.tolerances) or not self.tolerances:
            raise ConfigError(f"tolerances are multiples of the AR noise scale and must be > 0, got {self.tolerances}")
        if self.eval_samples < 2:
            raise ConfigError(f"eval_samples must be >= 2, got {self.eval_samples}")
        if self.time_rounds < 1:
            raise ConfigError(f"time_rounds must be >= 1, got {self.time_rounds}")
        if self.rejected not in ("warm", "reprior"):
            raise ConfigError(f"rejected must be 'warm' or 'reprior', got '{self.rejected}'")
        if "sine" in self.tasks and self.sine.n_test < 2 * self.eval_samples:
            # validation prefixes are test rows [0, n), test prefixes rows [n, 2n): they must not overlap
            raise ConfigError(f"sine.n_test must be >= 2 * eval_samples = {2 * self.eval_samples} so the validation "
                              f"and test prefixes are disjoint, got {self.sine.n_test}")
        self.digits.check("digits")
        self.sine.check("sine")


def task_cfg(cfg: NaraConfig, kind: str) -> TaskConfig:
    """The :class:`TaskConfig` of task ``kind`` (``digits`` or ``sine``) in ``cfg``."""
    return cfg.digits if kind == "digits" else cfg.sine
