import math

import pytest
import torch

from reprozoo.errors import ConfigError, DataError
from reprozoo.rexnet.training import (
    ImageNetConfig,
    anchor_test,
    build_data,
    build_model,
    path_check,
    sgd,
    transforms,
    warmup_cosine,
    write_tiny_imagefolder,
)
from reprozoo.runtime.runner import run_experiment
from reprozoo.runtime.verdict import HELD, INCONCLUSIVE, NOT_HELD


def test_paper_preset_is_the_spec_recipe():
    assert ImageNetConfig.PRESETS["paper"] == {}  # the dataclass defaults are the paper's recipe
    cfg = ImageNetConfig()
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.warmup_epochs) == \
        (400, 512, 0.5, 0.9, 1e-5, 5.0)
    assert (cfg.randaugment_ops, cfg.randaugment_magnitude, cfg.random_erasing, cfg.dropout) == (2, 9, 0.2, 0.2)
    assert (cfg.image_size, cfg.crop_pct, cfg.dataset, cfg.mixed_precision) == (224, 0.875, "folder", "fp16")


def test_warmup_then_cosine_schedule_values():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    sched = warmup_cosine(opt, total_steps=10, warmup_steps=2)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.25) and lrs[1] == pytest.approx(0.5)
    assert lrs[2] == pytest.approx(0.5) and lrs[6] == pytest.approx(0.5 * 0.5 * (1 + math.cos(math.pi * 4 / 8)))


def test_no_weight_decay_on_bn_and_bias_by_default():
    cfg = ImageNetConfig()
    model = build_model(cfg, 10)
    groups = sgd(model, cfg).param_groups
    assert groups[0]["weight_decay"] == 1e-5 and all(p.ndim == 4 or p.ndim == 2 for p in groups[0]["params"])
    assert groups[1]["weight_decay"] == 0.0 and all(p.ndim == 1 for p in groups[1]["params"])
    assert build_model(ImageNetConfig.from_preset("quick"), 10).width_mult == 0.5
    quick = ImageNetConfig.from_preset("quick")  # the training-path check: <= 60 CPU-s, one thread
    assert (quick.epochs, quick.threads, quick.dataset) == (4, 1, "digits")


def test_eval_transform_resizes_then_centre_crops(tmp_path):
    from PIL import Image

    cfg = ImageNetConfig()
    out = transforms(cfg, train=False)(Image.new("RGB", (500, 300), (255, 0, 0)))
    assert out.shape == (3, 224, 224)
    assert out[0, 0, 0].item() == pytest.approx((1 - 0.485) / 0.229, abs=1e-3)
    assert transforms(cfg, train=True)(Image.new("RGB", (300, 260))).shape == (3, 224, 224)


def test_data_errors_come_before_the_run_folder(tmp_path):
    with pytest.raises(ConfigError, match="data_root"):
        ImageNetConfig.from_preset("paper")
    with pytest.raises(DataError, match="train/<class>/<image>"):
        ImageNetConfig.from_preset("paper", [f"data_root={tmp_path}"])
    with pytest.raises(DataError):
        run_experiment("rexnet-imagenet", "paper", overrides=[f"data_root={tmp_path}"], out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    write_tiny_imagefolder(tmp_path / "ok", classes=3, per_class=2)
    train, val, n = build_data(ImageNetConfig.from_preset("paper", [f"data_root={tmp_path / 'ok'}"]), tmp_path)
    assert (len(train), len(val), n) == (6, 6, 3)
    with pytest.raises(ConfigError, match="dataset"):
        ImageNetConfig.from_preset("smoke", ["dataset=imagenet21k"])
    with pytest.raises(ConfigError, match="random_erasing"):
        ImageNetConfig.from_preset("smoke", ["random_erasing=1.5"])
    with pytest.raises(ConfigError, match="momentum"):
        ImageNetConfig.from_preset("smoke", ["momentum=-1"])
    with pytest.raises(ConfigError, match="num_workers >= 0"):
        ImageNetConfig.from_preset("smoke", ["eval_batch_size=0"])
    with pytest.raises(ConfigError, match="model must be a registered ReXNet"):
        ImageNetConfig.from_preset("smoke", ["model=sinet"])


def test_path_check_can_fail():
    down = [{"train_loss": 2.3}, {"train_loss": 1.1}]
    up = [{"train_loss": 2.3}, {"train_loss": 2.4}]
    assert path_check([down, down])[0] == HELD
    verdict, evidence = path_check([down, up])
    assert verdict == NOT_HELD and "2.3 -> 2.4" in evidence
    assert path_check([[{"train_loss": float("nan")}, {"train_loss": float("nan")}]])[0] == NOT_HELD
    assert path_check([down[:1]])[0] == INCONCLUSIVE


def test_anchor_rule_is_a_noninferiority_interval_over_seeds():
    # top-1 - 0.779 = -0.004 / -0.007 / -0.001: mean -0.004, sd 0.003, t_{0.95,2} = 2.920
    # -> L = -0.004 - 2.920 * 0.003 / sqrt(3) = -0.00906 > -0.012: held
    held = anchor_test([0.775, 0.772, 0.778], 0.779, 0.012)
    assert held.verdict == HELD and held.lower == pytest.approx(-0.004 - 2.919986 * 0.003 / math.sqrt(3), abs=1e-6)
    # -0.019 / -0.014 / -0.017: U = -0.01667 + 2.920 * 0.00252 / sqrt(3) = -0.0124 < -0.012: not held
    assert anchor_test([0.760, 0.765, 0.762], 0.779, 0.012).verdict == NOT_HELD
    assert anchor_test([0.780, 0.750, 0.770], 0.779, 0.012).verdict == INCONCLUSIVE  # seeds too spread to tell
    # one seed: one number against the bar 0.767, no interval
    assert anchor_test([0.770], 0.779, 0.012).verdict == HELD
    single = anchor_test([0.760], 0.779, 0.012)
    assert single.verdict == NOT_HELD and "one seed: no interval" in single.evidence


def test_smoke_trains_two_steps_on_a_generated_imagefolder(tmp_path):
    out, data = run_experiment("rexnet-imagenet", "smoke", out_dir=tmp_path / "run", overrides=["width_mult=0.5"])
    assert data["verdict"] == INCONCLUSIVE and "training-path check on proxy data" in data["evidence"]
    assert "headline" not in data  # no ImageNet claim is tested on proxy data
    assert [c["headline"] for c in data["claims"]] == [True, False]
    assert data["claims"][1]["verdict"] == INCONCLUSIVE  # one epoch: no loss trend to read
    assert (out / "tiny_imagefolder" / "train" / "class_1" / "0.png").is_file()
    trial = out / "trials" / "train__seed0"
    log = (trial / "train_log.csv").read_text().splitlines()
    assert len(log) == 2 and "val_top1" in log[0]
    assert (trial / "checkpoints" / "last.pt").is_file()
    assert (out / "trials" / "train__seed0.json").is_file()
    assert data["metrics"]["method/epochs"] == 1.0 and "baseline/target_top1" not in data["metrics"]
    # 12 val images (6 per class): top-1 is a multiple of 1/12
    assert data["metrics"]["method/val_top1"] * 12 == pytest.approx(round(data["metrics"]["method/val_top1"] * 12))


def test_folder_run_records_the_anchor_headline(tmp_path):
    write_tiny_imagefolder(tmp_path / "data", classes=2, per_class=2)
    _, data = run_experiment("rexnet-imagenet", "smoke", out_dir=tmp_path / "run",
                             overrides=["dataset=folder", f"data_root={tmp_path / 'data'}", "epochs=2",
                                        "width_mult=0.5"])
    # one seed of a 2-step toy run: a single number far below the 0.767 bar
    assert data["verdict"] == NOT_HELD and "one seed: no interval" in data["evidence"]
    assert data["headline"]["verdict"] == NOT_HELD and data["headline"]["test"]["kind"] == "threshold"
    assert data["claims"][0]["test"]["verdict"] == NOT_HELD and data["metrics"]["baseline/target_top1"] == 0.779
