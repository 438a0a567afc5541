import math

import pytest
import torch

from reprozoo.data.portraits import generate_portraits
from reprozoo.errors import ConfigError
from reprozoo.runtime import trainer as trainer_mod
from reprozoo.sinet import SINet, SINetEncoder
from reprozoo.sinet.data import SegDataset, eval_transform, train_transform
from reprozoo.sinet.losses import class_weights
from reprozoo.sinet.training import BestKeeper, StageConfig, make_scheduler, param_groups, train_stage


def test_weight_decay_groups():
    model = SINet()
    dw, conv, other = param_groups(model)
    assert (dw["weight_decay"], conv["weight_decay"], other["weight_decay"]) == (0.0, 2e-4, 2e-6)
    n_dw = sum(p.numel() for p in dw["params"])
    # depthwise weights: the two SE-DSConv downsamplers (12 and 64 channels, 3x3) + one per S2 block
    assert all(p.ndim == 4 and p.shape[1] == 1 for p in dw["params"])
    assert n_dw == 108 + 576 + sum(m.dw.weight.numel() for m in model.modules() if hasattr(m, "pool"))
    assert all(p.ndim == 4 for p in conv["params"]) and all(p.ndim < 4 for p in other["params"])
    assert sum(p.numel() for g in (dw, conv, other) for p in g["params"]) == 86_910


def test_multistep_schedule_milestones():
    opt = torch.optim.Adam(torch.nn.Linear(1, 1).parameters(), lr=5e-4)
    sched = make_scheduler(opt, 300)
    assert sorted(sched.milestones) == [150, 250] and sched.gamma == 0.5
    assert StageConfig().schedule == "multistep"  # the library's default stays the official schedule


def test_cosine_schedule_anneals_to_zero_over_the_stage():
    opt = torch.optim.Adam(torch.nn.Linear(1, 1).parameters(), lr=2e-3)
    sched = make_scheduler(opt, 10, "cosine")
    lrs = []
    for _ in range(10):  # the rate each of the 10 epochs trains at (one step per epoch)
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(2e-3) and lrs[5] == pytest.approx(1e-3)
    assert lrs[-1] == pytest.approx(2e-3 * 0.5 * (1 + math.cos(math.pi * 9 / 10)))  # 2.4e-5, the last epoch
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    with pytest.raises(ConfigError, match="schedule must be one of multistep, cosine"):
        StageConfig(schedule="linear").validate()


def test_best_keeper_ignores_early_epochs():
    model = torch.nn.Linear(1, 1)
    keeper = BestKeeper(lambda: model, epochs=10, best_from=0.6, out_dir=None)
    keeper(4, {"val_fg_iou": 99.0})  # epoch 5 < 6: not eligible
    keeper(5, {"val_fg_iou": 50.0})
    keeper(6, {"val_fg_iou": 70.0})
    keeper(7, {"val_fg_iou": 60.0})
    assert (keeper.best_epoch, keeper.best_score) == (7, 70.0)
    with pytest.raises(ConfigError, match="best_from"):
        StageConfig(best_from=1.5).validate()
    with pytest.raises(ConfigError, match="must be >= 0, got -0.1"):
        StageConfig(wd_conv=-0.1).validate()


def _tiny():
    data = generate_portraits(8, 32, seed=0)
    mean, std = [0.5] * 3, [0.25] * 3
    return (SegDataset(data.images, data.masks, train_transform(32, mean, std)),
            SegDataset(data.images[:4], data.masks[:4], eval_transform(32, mean, std)), class_weights(data.masks))


def test_stage1_resume_is_exact(tmp_path, monkeypatch):
    train, val, w = _tiny()
    cfg = StageConfig(epochs=2, batch_size=4, lr=1e-3, best_from=0.0)
    kw = dict(weight=w, image_size=32, stage=1, seed=0, device="cpu", progress=False)
    torch.manual_seed(0)
    full, s_full = train_stage(SINetEncoder(), train, val, cfg, out_dir=tmp_path / "a", **kw)

    original = trainer_mod.Trainer.train_epoch

    def interrupted(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, epoch)

    torch.manual_seed(0)
    monkeypatch.setattr(trainer_mod.Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_stage(SINetEncoder(), train, val, cfg, out_dir=tmp_path / "b", **kw)
    monkeypatch.setattr(trainer_mod.Trainer, "train_epoch", original)
    torch.manual_seed(123)  # a different global state: the checkpoint must restore everything
    resumed, s_res = train_stage(SINetEncoder(), train, val, cfg, out_dir=tmp_path / "b", resume=True, **kw)
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert s_full["best_epoch"] == s_res["best_epoch"]
    assert (tmp_path / "a" / "train_log.csv").read_text() == (tmp_path / "b" / "train_log.csv").read_text()
    assert s_full["band_kernel"] == 3  # 5 @ 28 px scaled to the 4 x 4 stage-1 map, floor 3


def test_train_stage_refuses_a_run_and_names_a_changed_setting_on_resume(tmp_path):
    from reprozoo.errors import OutputExistsError

    train, val, w = _tiny()
    cfg = StageConfig(epochs=1, batch_size=4, lr=1e-3, best_from=0.0, max_steps_per_epoch=1)
    kw = dict(weight=w, image_size=32, stage=1, seed=0, device="cpu", progress=False, out_dir=tmp_path / "run")
    train_stage(SINetEncoder(), train, val, cfg, **kw)
    best = (tmp_path / "run" / "best.pt").read_bytes()
    with pytest.raises(OutputExistsError, match=r"run already holds a training run \(checkpoints/last.pt\); "
                                                "pass resume=True to continue it, or a new out_dir$"):
        train_stage(SINetEncoder(), train, val, cfg, **kw)
    assert (tmp_path / "run" / "best.pt").read_bytes() == best
    with pytest.raises(ConfigError, match=r"^resume=True but lr differs from the run in .*: 0.001 there, 0.002 now"):
        train_stage(SINetEncoder(), train, val, StageConfig(epochs=1, batch_size=4, lr=2e-3, best_from=0.0,
                                                            max_steps_per_epoch=1), resume=True, **kw)
    with pytest.raises(ConfigError, match="^resume=True but stage differs"):
        train_stage(SINetEncoder(), train, val, cfg, resume=True, **{**kw, "stage": 2})
    _, summary = train_stage(SINetEncoder(), train, val, cfg, resume=True, **kw)  # finished: nothing reruns
    assert summary["best_epoch"] == 1 and len(summary["history"]) == 1
