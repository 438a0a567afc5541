from dataclasses import dataclass, field
from typing import ClassVar, Literal

import pytest

from reprozoo.errors import ConfigError, UnknownNameError
from reprozoo.runtime.config import ExperimentConfig, apply_overrides, load_yaml, to_yaml


@dataclass
class Optim:
    lr: float = 0.1
    nesterov: bool = False


@dataclass
class Cfg(ExperimentConfig):
    epochs: int = 3
    name: str = "x"
    widths: list[float] = field(default_factory=lambda: [1.0])
    act: Literal["relu", "silu"] = "relu"
    limit: int | None = None
    optim: Optim = field(default_factory=Optim)
    PRESETS: ClassVar[dict] = {"smoke": {"epochs": 1}, "quick": {}, "paper": {"epochs": 300, "optim": {"lr": 0.5}}}


def test_presets_and_typed_overrides():
    cfg = Cfg.from_preset("paper", ["epochs=7", "optim.lr=1e-3", "optim.nesterov=true", "widths=0.5,2",
                                    "act=silu", "seeds=[1, 2]", "limit=none"])
    assert cfg.epochs == 7 and cfg.optim.lr == pytest.approx(1e-3) and cfg.optim.nesterov is True
    assert cfg.widths == [0.5, 2.0] and cfg.act == "silu" and cfg.seeds == [1, 2] and cfg.limit is None
    assert Cfg.from_preset("paper").optim.lr == 0.5
    assert apply_overrides(Cfg(), ["limit=4"]).limit == 4


@pytest.mark.parametrize("override, fragment", [
    ("nosuch=1", "unknown config key 'nosuch'; valid keys: seeds, device"),
    ("epochs=1.5", "'epochs' expects an integer"),
    ("optim.lr=fast", "'optim.lr' expects float"),
    ("optim.nesterov=maybe", "expects true/false"),
    ("act=tanh", "must be one of ['relu', 'silu']"),
    ("epochs", "must look like key=value"),
    ("optim.nope=1", "valid keys:"),
])
def test_bad_overrides_are_one_line_errors(override, fragment):
    with pytest.raises(ConfigError) as err:
        Cfg.from_preset("quick", [override])
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_unknown_preset():
    with pytest.raises(UnknownNameError, match="unknown preset 'nope'.*smoke, quick, paper"):
        Cfg.from_preset("nope")


def test_yaml_round_trip(tmp_path):
    cfg = Cfg.from_preset("smoke", ["widths=0.9,1.3", "optim.lr=0.25"])
    (tmp_path / "c.yaml").write_text(to_yaml(cfg))
    assert load_yaml(tmp_path / "c.yaml", Cfg) == cfg
