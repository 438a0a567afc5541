"""A tiny experiment and training setup used by the runtime tests (not part of the library)."""

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from reprozoo.runtime.config import ExperimentConfig
from reprozoo.runtime.registry import register_experiment
from reprozoo.runtime.report import ExperimentResult
from reprozoo.runtime.verdict import paired_comparison


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
    verdict, evidence = paired_comparison(method, base, name="value")
    import matplotlib.pyplot as plt

    from reprozoo.runtime.report import save_figure

    fig, ax = plt.subplots()
    ax.plot(base, method)
    save_figure(fig, ctx.out_dir, "curve")
    return ExperimentResult(verdict, evidence, {"method/value": sum(method) / len(method),
                                                "baseline/value": sum(base) / len(base)})
