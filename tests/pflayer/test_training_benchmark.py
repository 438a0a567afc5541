import pytest
import torch

from reprozoo.errors import ConfigError, DataError
from reprozoo.pflayer.benchmark import GROUPS, compare, float32_peak_gflops
from reprozoo.pflayer.training import ImageNetConfig
from reprozoo.runtime.profile import count_macs, count_params
from reprozoo.runtime.registry import create_model, get_benchmark
from reprozoo.runtime.runner import run_experiment


def test_imagenet_smoke_trains_two_steps_on_a_generated_folder(tmp_path):
    out, data = run_experiment("pflayer-imagenet", "smoke", out_dir=tmp_path / "run", progress=False)
    m = data["metrics"]
    assert 0.0 <= m["method/val_top1"] <= 1.0 and m["method/val_top5"] == 1.0  # 2 classes: top-5 is trivial
    assert data["verdict"] == "inconclusive" and "no accuracy bar" in data["evidence"]
    assert (out / "seed0" / "train_log.csv").exists() and (out / "seed0" / "checkpoints" / "last.pt").exists()
    assert len(list((out / "tiny_imagefolder" / "train").iterdir())) == 2


def test_imagenet_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="needs an ImageNet folder"):
        ImageNetConfig.from_preset("paper")
    with pytest.raises(DataError, match="does not exist"):
        ImageNetConfig.from_preset("paper", [f"data_root={tmp_path}"])
    with pytest.raises(ConfigError, match="model must be one of"):
        ImageNetConfig.from_preset("smoke", ["model=vit_s_max"])
    with pytest.raises(ConfigError, match="width_mult"):
        ImageNetConfig.from_preset("smoke", ["width_mult=0"])
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    cfg = ImageNetConfig.from_preset("paper", [f"data_root={tmp_path}"])
    assert (cfg.lr, cfg.weight_decay, cfg.epochs, cfg.batch_size, cfg.step_epochs) == (0.2, 1e-4, 90, 1024, 30)


def test_benchmark_rows_are_ratios_against_the_baseline():
    res = compare("resnet", quick=True, batches=(1,), size=32, engines=("eager",), layers=(1, 1, 1, 1), width_mult=0.25)
    lat = [r for r in res["rows"] if "latency_ms" in r]
    assert [r["model"] for r in lat] == ["resnet50_pf", "r50_max", "r50_hybrid"]
    assert lat[0]["ratio_vs_resnet50_pf"] == 1.0 and all(r["latency_ms"] > 0 for r in lat)
    assert set(res["ratios"]) == {"eager batch1 r50_max/resnet50_pf", "eager batch1 r50_hybrid/resnet50_pf"}
    small = {n: create_model(n, layers=(1, 1, 1, 1), width_mult=0.25) for n in ("r50_max", "r50_hybrid")}
    assert res["rows"][0]["params_r50_max"] == count_params(small["r50_max"])
    assert lat[1]["gmacs"] == round(count_macs(small["r50_max"], torch.randn(1, 3, 32, 32)) / 1e9, 3)
    assert float32_peak_gflops(n=64, seconds=0.01) > 0
    assert GROUPS["vit"] == ("vit_s_attn", ("vit_s_max",)) and get_benchmark("pflayer").name == "pflayer"


@pytest.mark.parametrize("kwargs, msg", [
    ({"batches": []}, "batches must be"), ({"batches": [0]}, "batches must be"),
    ({"engines": ["tensorrt"]}, "engines must be"), ({"threads": 0}, "threads >= 1"),
])
def test_benchmark_options_are_checked_before_measuring(kwargs, msg):
    with pytest.raises(ConfigError, match=msg):
        get_benchmark("pflayer").run(quick=True, **kwargs)
