"""A tiny experiment and training setup used by the runtime tests (not part of the library)."""

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from reprozoo.runtime.config import ExperimentConfig
from reprozoo.runtime.registry import register_experiment
from reprozoo.runtime.report import ExperimentResult
from reprozoo.runtime.verdict import Plan, decide, superiority


class SmallCNN(nn.Module):
    def __init__(self, dropout: float = 0.0, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(64, classes))

    def forward(self, x):
        return self.head(self.features(x))


@dataclass
class ToyConfig(ExperimentConfig):
    offset: float = 1.0
    steps: int = 3
    mode: str = "add"
    PRESETS: ClassVar[dict] = {"smoke": {"steps": 1}, "quick": {"steps": 2, "seeds": [0, 1, 2]},
                               "paper": {"steps": 10}}


@register_experiment("_toy", paper="Nobody et al. (test only)", claim="adding an offset raises a number",
                     config=ToyConfig)
def run_toy(cfg: ToyConfig, ctx) -> ExperimentResult:
    base = [float(s) for s in cfg.seeds]
    method = [b + cfg.offset for b in base]
    head = decide(superiority(method, base, margin=0.5, name="value"),
                  plan=Plan(2.0, "test only", 0.5, 1.0, "test only"))
    import matplotlib.pyplot as plt

    from reprozoo.runtime.report import save_figure

    fig, ax = plt.subplots()
    ax.plot(base, method)
    save_figure(fig, ctx.out_dir, "curve")
    return ExperimentResult.from_headline(head, {"method/value": sum(method) / len(method),
                                                 "baseline/value": sum(base) / len(base)})


@dataclass
class TrialsToyConfig(ExperimentConfig):
    sleep: float = 0.0
    fail_arm: str = ""  # an arm whose trials raise (to test failure handling)
    fail_early: bool = False  # raise before any trial runs
    margin: float = 0.1
    PRESETS: ClassVar[dict] = {"smoke": {"seeds": [0, 1, 2]}, "quick": {"seeds": [0, 1, 2, 3]}, "paper": {}}
    LOCKED: ClassVar[dict] = {"margin": "it is the rule's margin, fixed in code before the numbers exist"}


@register_experiment("_toy_trials", paper="Nobody et al. (test only)", claim="arm b scores above arm a",
                     config=TrialsToyConfig)
def run_toy_trials(cfg: TrialsToyConfig, ctx) -> ExperimentResult:
    from reprozoo.errors import ConfigError
    from reprozoo.runtime.trials import Trial
    from reprozoo.runtime.verdict import claim, superiority
    from tests.runtime.trial_fns import scored

    if cfg.fail_early:
        raise ConfigError("found a problem before the first trial")
    trials = [Trial(arm, s) for arm in ("a", "b") for s in cfg.seeds]
    results = ctx.run_trials(scored, trials, description="toy trials")
    a = [r["score"] for t, r in zip(trials, results) if t.arm == "a"]
    b = [r["score"] for t, r in zip(trials, results) if t.arm == "b"]
    verdict, evidence = superiority(b, a, margin=cfg.margin, name="score")
    return ExperimentResult(verdict, evidence, {"method/score": sum(b) / len(b), "baseline/score": sum(a) / len(a)},
                            claims=[claim("b beats a", verdict, evidence, headline=True)])
