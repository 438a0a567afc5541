import json
import math

import pytest
import torch
from scipy import stats
from torch import nn

from reprozoo.errors import ConfigError
from reprozoo.rexnet.channels_experiment import (
    ACC_MARGIN,
    ALTERNATIVES,
    ARM_SETTINGS,
    EARLY_BLOCKS,
    FIT_TRAIN_ACC,
    PLAN,
    ChannelsConfig,
    arms,
    data,
    decide,
    factor_claims,
    fitted_gate,
)
from reprozoo.rexnet.schedule import STAGEWISE_BASE
from reprozoo.rexnet.study import Arm, arm_macs, build_study_model, equal_mac_arms
from reprozoo.runtime.profile import count_macs
from reprozoo.runtime.runner import run_experiment
from reprozoo.runtime.verdict import HELD, INCONCLUSIVE, NOT_HELD

torch.set_num_threads(1)


def test_all_arms_are_at_equal_macs_and_the_counter_agrees():
    study = arms(ChannelsConfig.from_preset("quick"))
    macs = equal_mac_arms(study, "rexnet", image_size=16, num_classes=20)
    assert macs["rexnet"] == macs["linear_relu6"] == macs["control"] == macs["rexnet_short"] == 1_674_044
    assert macs["mbv2"] == macs["stagewise_silu"] == 1_664_760  # -0.6%
    for name in ("rexnet", "mbv2"):
        model = build_study_model(study[name], image_size=16, num_classes=20)
        assert count_macs(model, torch.randn(1, 1, 16, 16)) == macs[name]
    # the former stage-wise arm (no shared early blocks) at the former 32x32 / 10-class setting
    assert arm_macs(Arm("stagewise", "relu6", 0.25)) == 6_318_696 and arm_macs(Arm("linear", "silu", 0.25)) == 6_306_180


def test_presets_mirror_data_and_budget():
    q = ChannelsConfig.from_preset("quick")
    assert (q.dataset, q.image_size, q.num_classes, q.epochs, q.batch_size, q.lr, q.width_mult, q.seeds) == (
        "mirror", 16, 20, 9, 256, 5e-3, 0.25, [0, 1, 2])
    assert (q.train_copies, q.test_copies, q.fresh_train, q.rotate, q.scale) == (1, 2, True, 20.0, 0.15)
    f = ChannelsConfig.from_preset("full")
    assert f.seeds == list(range(PLAN.planned_n))  # the power function's seeds
    # the calibrated budget: 36 epochs of 2,876 fresh, rotated images
    assert (f.epochs, f.train_copies, f.batch_size, f.fresh_train, f.rotate, f.scale) == (36, 1, 256, True, 20.0, 0.15)
    d = ChannelsConfig()  # the former fixed-set design stays the default
    assert (d.epochs, d.train_copies, d.fresh_train, d.rotate, d.scale) == (12, 2, False, 0.0, 0.0)
    s = ChannelsConfig.from_preset("smoke")
    assert (s.epochs, s.batch_size, s.max_train, s.train_copies, s.test_copies) == (4, 32, 64, 1, 1)


def test_calibrated_data_sizes():
    (xtr, ytr), (xte, yte) = data(ChannelsConfig.from_preset("quick"))
    # 1,438 train digits x 1 copy x 2 (mirrors) per epoch, 359 test digits x 2 copies x 2
    assert xtr.shape == (2_876, 1, 16, 16) and xte.shape == (1_436, 1, 16, 16)
    assert torch.equal(torch.bincount(ytr, minlength=20)[:10], torch.bincount(ytr, minlength=20)[10:])
    assert int(yte.min()) == 0 and int(yte.max()) == 19


def test_mirror_digits_add_ten_mirrored_classes():
    from reprozoo.data.noisy_digits import noisy_digits
    from reprozoo.rexnet.mirror_digits import mirror_digits

    idx = [0, 1, 2, 3]
    x, y = mirror_digits(idx, copies=2, seed=5)
    x0, y0 = noisy_digits(idx, copies=2, size=16, digit_size=12, shift=2, noise=0.2, seed=5)
    assert x.shape == (16, 1, 16, 16) and torch.equal(x[:8], x0) and torch.equal(x[8:], x0.flip(-1))
    assert torch.equal(y, torch.cat([y0, y0 + 10])) and int(y.max()) < 20


def test_rotation_and_scale_distort_before_the_noise():
    from reprozoo.errors import DataError
    from reprozoo.rexnet.mirror_digits import mirror_digits

    idx = [0, 1, 2, 3]
    plain = mirror_digits(idx, copies=2, seed=5, noise=0.0)[0]
    assert torch.allclose(mirror_digits(idx, copies=2, seed=5, noise=0.0, rotate=1e-4)[0], plain, atol=1e-4)
    turned = mirror_digits(idx, copies=2, seed=5, noise=0.0, rotate=20, scale=0.15)[0]
    assert not torch.allclose(turned, plain, atol=0.05) and torch.equal(turned[8:], turned[:8].flip(-1))
    assert torch.equal(mirror_digits(idx, copies=2, seed=5, rotate=20, scale=0.15)[0],
                       mirror_digits(idx, copies=2, seed=5, rotate=20, scale=0.15)[0])
    with pytest.raises(DataError, match="rotate"):
        mirror_digits(idx, rotate=200)
    with pytest.raises(ConfigError, match="rotate"):
        ChannelsConfig.from_preset("quick", ["dataset=digits", "image_size=32", "digit_size=20", "shift=6"])


def test_fresh_train_draws_differ_per_epoch_and_repeat_from_the_seed():
    from reprozoo.rexnet.channels_experiment import train_draw
    from reprozoo.rexnet.channels_training import fit_and_test
    from reprozoo.rexnet.mirror_digits import epoch_draw, epoch_seed

    idx = [0, 1, 2, 3]
    (a0, y0), (a1, y1) = epoch_draw(idx, 0, seed=3), epoch_draw(idx, 1, seed=3)
    assert torch.equal(y0, y1) and not torch.equal(a0, a1)  # same digits and labels, new distortions
    assert torch.equal(epoch_draw(idx, 1, seed=3)[0], a1)  # reproducible from (seed, epoch)
    assert not torch.equal(epoch_draw(idx, 1, seed=4)[0], a1)
    assert len({epoch_seed(0, e) for e in range(50)} | {epoch_seed(1, e) for e in range(50)}) == 100
    cfg = ChannelsConfig.from_preset("quick", ["fresh_train=true"])
    x2, y2 = train_draw(cfg, 2)
    assert x2.shape == data(cfg)[0][0].shape and torch.equal(y2, data(cfg)[0][1])
    assert not torch.equal(x2, train_draw(cfg, 3)[0]) and torch.equal(x2, train_draw(cfg, 2)[0])
    seen = []

    def draw(e):
        seen.append(e)
        return epoch_draw(idx, e, seed=0)

    model = nn.Sequential(nn.Flatten(), nn.Linear(256, 20))
    fixed = epoch_draw(idx, 0, seed=0)
    r = fit_and_test(model, (fixed, fixed), seed=0, epochs=3, batch_size=4, lr=1e-2, weight_decay=0.0,
                     warmup_epochs=0.0, channels_last=False, train_draw=draw)
    assert seen == [0, 1, 2] and len(r["train_acc"]) == 3
    with pytest.raises(ConfigError, match="fresh_train"):
        ChannelsConfig.from_preset("smoke", ["fresh_train=true"])


def test_equal_mac_check_refuses_arms_at_different_widths():
    bad = {"rexnet": Arm("linear", "silu", 0.25), "wide": Arm("stagewise", "relu6", 0.5)}
    with pytest.raises(ConfigError, match=r"not at equal MACs: wide .*\+\d+\.\d%.*tolerance 5%"):
        equal_mac_arms(bad, "rexnet")
    assert arm_macs(Arm("linear", "silu", 0.5)) == 14_432_512


def test_one_builder_differs_only_in_widths_and_activation():
    study = arms(ChannelsConfig.from_preset("quick"))
    rex, mb, ctl = (build_study_model(study[n], image_size=16, num_classes=20) for n in ("rexnet", "mbv2", "control"))
    assert rex.schedule.out_channels == [16, 19, 22, 24, 27, 30, 33, 36, 38, 41, 44, 47, 50, 53, 55, 58]
    widths = mb.schedule.out_channels
    # the first EARLY_BLOCKS = 3 blocks (stages 1-2) are the linear ones; no later block is narrower;
    # then constant within each stage (last block = the 320-like one)
    assert widths == [16, 19, 22, 22, 22, 22, 22, 22, 33, 33, 33, 55, 55, 55, 55, 111]
    assert EARLY_BLOCKS == 3 and widths[:3] == rex.schedule.out_channels[:3]
    assert len({w for w, b in zip(widths, STAGEWISE_BASE) if b == 160}) == 1
    old = build_study_model(Arm("stagewise", "relu6", 0.25)).schedule.out_channels
    assert old == [8, 9, 9, 12, 12, 25, 25, 25, 37, 37, 37, 62, 62, 62, 62, 123]  # the former arm
    assert (rex.schedule.stem_chs, rex.schedule.pen_chs) == (mb.schedule.stem_chs, mb.schedule.pen_chs) == (32, 320)
    assert [b.stride for b in rex.schedule.blocks] == [b.stride for b in mb.schedule.blocks]
    assert rex.forward_features(torch.randn(2, 1, 16, 16)).shape == (2, 320, 2, 2)  # total stride 8
    assert isinstance(rex.blocks[5].expand.act, nn.SiLU) and isinstance(mb.blocks[5].expand.act, nn.ReLU6)
    assert isinstance(ctl.blocks[5].expand.act, nn.Identity) and isinstance(ctl.stem.act, nn.Identity)
    assert all(isinstance(m.blocks[5].post_act, nn.ReLU6) for m in (rex, mb, ctl))  # kept after the depthwise


def _accs(method, strongest, control):
    return {"rexnet": method, "mbv2": [0.80, 0.81, 0.80], "linear_relu6": strongest,
            "stagewise_silu": [0.82, 0.83, 0.82], "control": control}


def test_rule_is_not_held_when_rexnet_loses_to_the_strongest_alternative():
    # rexnet clearly beats mbv2 and stagewise_silu, but linear_relu6 is better than rexnet: the upper
    # bound of the paired gain (-0.017 + t * sd / sqrt(3) ~ -0.012) is below the margin
    head = decide(_accs([0.88, 0.89, 0.885], [0.90, 0.905, 0.90], [0.70, 0.71, 0.70]))
    v, e = head
    assert v == NOT_HELD and "strongest alternative 'linear_relu6'" in e and head.test.upper < ACC_MARGIN
    assert "negative control" in e and "(passed)" in e


def test_rule_is_inconclusive_when_the_control_does_not_lose():
    v, e = decide(_accs([0.90, 0.91, 0.905], [0.85, 0.86, 0.85], [0.90, 0.905, 0.905]))
    assert v == INCONCLUSIVE and "cannot separate arms" in e and "(FAILED)" in e


def test_rule_holds_on_a_clear_paired_gain_and_respects_the_margin():
    assert decide(_accs([0.88, 0.89, 0.885], [0.85, 0.86, 0.855], [0.70, 0.71, 0.70]))[0] == HELD  # +0.03 every seed
    # +0.8 points on every seed: the interval excludes the 1-point margin
    assert decide(_accs([0.858, 0.868, 0.863], [0.85, 0.86, 0.855], [0.70, 0.71, 0.70]))[0] == NOT_HELD
    assert set(ALTERNATIVES) | {"rexnet", "control", "rexnet_short"} == set(ARM_SETTINGS)


def test_rule_is_the_one_sided_t_interval_by_hand():
    # paired gains +0.03 / +0.04 / +0.015: mean 0.02833, sd 0.01258, t_{0.95,2} = 2.920
    # -> L = 0.02833 - 2.920 * 0.01258 / sqrt(3) = 0.0071 < 0.01 < U = 0.0495: inconclusive
    # (the old 2-SD bar called this "held": 0.0283 > 2 x 0.0126)
    head = decide(_accs([0.88, 0.90, 0.87], [0.85, 0.86, 0.855], [0.70, 0.71, 0.70]))
    sd = float(torch.tensor([0.03, 0.04, 0.015], dtype=torch.float64).std())
    half = stats.t.ppf(0.95, 2) * sd / math.sqrt(3)
    assert sd == pytest.approx(0.01258, abs=1e-5) and half == pytest.approx(0.02121, abs=1e-5)
    assert head.test.lower == pytest.approx(0.085 / 3 - half) and head.test.upper == pytest.approx(0.085 / 3 + half)
    assert head.verdict == INCONCLUSIVE
    rec = head.record()
    assert rec["plan"]["sesoi"] == PLAN.sesoi == 0.028 and rec["plan"]["margin"] == ACC_MARGIN
    assert rec["plan"]["planned_n"] == PLAN.planned_n == 6 and rec["negative_control"][0]["verdict"] == HELD
    # 3 seeds at this SD (0.0126) can detect 0.039 with 80% power, more than the SESOI 0.028: "underpowered"
    assert rec["test"]["mde"] == pytest.approx(0.0389, abs=5e-4) and any("underpowered" in r for r in head.reasons)
    tight = decide(_accs([0.88, 0.891, 0.885], [0.85, 0.86, 0.855], [0.70, 0.71, 0.70]))  # paired SD 0.0006
    assert tight.record()["test"]["mde"] < PLAN.sesoi and not any("underpowered" in r for r in tight.reasons)


def test_plan_seeds_come_from_the_power_function():
    from scipy.stats import chi2

    from reprozoo.runtime.power import power, seeds_for_power

    # SESOI: the paper's -17.8% relative error (26.9 -> 22.1) on the fresh-draw pilot's strongest alternative
    # (stagewise_silu, 0.683), halved; SD of the pilot's paired differences +0.0160 / +0.0035 / +0.0146
    assert PLAN.sesoi == pytest.approx(0.5 * 4.8 / 26.9 * (1 - 0.683), abs=5e-4)
    # planned at the pilot SD's one-sided 80% upper confidence limit (chi2 with 2 df)
    pilot = float(torch.tensor([0.0160, 0.0035, 0.0146], dtype=torch.float64).std())
    assert pilot == pytest.approx(0.0069, abs=1e-4)
    assert PLAN.pilot_sd == pytest.approx(pilot * (2 / chi2.ppf(0.2, 2)) ** 0.5, abs=5e-4)
    assert PLAN.seeds == seeds_for_power(0.028, 0.0146, bound=ACC_MARGIN) == 6
    assert power(0.028, 0.0146, 5, bound=ACC_MARGIN) < 0.8 <= PLAN.power_at(6)
    assert seeds_for_power(0.028, pilot, bound=ACC_MARGIN) == 3  # what the raw 3-seed SD would have asked for


def test_factor_claims_use_the_same_interval_test():
    accs = _accs([0.88, 0.90, 0.87], [0.85, 0.86, 0.855], [0.70, 0.71, 0.70])
    got = {c["claim"]: c for c in factor_claims(accs)}
    assert got["ReXNet (linear + SiLU) beats the MobileNetV2 configuration (stage-wise + ReLU6)"]["verdict"] == HELD
    silu = got["SiLU beats ReLU6 after the expansion layers (linear schedule)"]
    assert silu["verdict"] == INCONCLUSIVE and silu["test"]["kind"] == "superiority"
    # stage-wise: SiLU +0.02 / +0.02 / +0.02 over ReLU6 -> L = 0.02 > 0.01
    assert got["SiLU beats ReLU6 after the expansion layers (stage-wise schedule)"]["verdict"] == HELD


def test_config_errors_come_before_any_work():
    with pytest.raises(ConfigError, match="shift"):
        ChannelsConfig.from_preset("smoke", ["shift=7"])
    with pytest.raises(ConfigError, match="width_mult"):
        ChannelsConfig.from_preset("smoke", ["width_mult=0"])
    with pytest.raises(ConfigError, match="seeds must be distinct"):
        ChannelsConfig.from_preset("smoke", ["seeds=[1,1]"])
    with pytest.raises(ConfigError, match="unknown activation"):
        Arm("linear", "tanh", 0.25)


def test_smoke_runs_every_arm_through_the_trial_executor(tmp_path):
    out, data = run_experiment("rexnet-channels", "smoke", out_dir=tmp_path / "run")
    assert data["verdict"] == INCONCLUSIVE and "fewer than 3 seeds" in data["evidence"]
    assert data["headline"]["verdict"] == INCONCLUSIVE and data["headline"]["plan"]["planned_n"] == 6
    assert data["headline"]["test"]["kind"] == "superiority" and data["headline"]["test"]["n"] == 1
    assert sorted(p.stem for p in (out / "trials").glob("*.json")) == sorted(f"{a}__seed0" for a in ARM_SETTINGS)
    m = data["metrics"]
    assert m["method/rexnet_macs"] == 1_674_044 and m["baseline/mbv2_macs"] == 1_664_760
    assert m["method/rexnet_params"] == sum(p.numel() for p in build_study_model(
        Arm("linear", "silu", 0.25), image_size=16, num_classes=20).parameters())
    stored = [json.loads(p.read_text()) for p in (out / "trials").glob("*.json")]
    assert {len(r.get("result", r)["train_acc_curve"]) for r in stored} == {4, 1}  # the short arm: 4 // 4 epochs
    assert m["method/rexnet_acc"] * 64 == pytest.approx(round(m["method/rexnet_acc"] * 64))  # 64 test images
    assert [c["headline"] for c in data["claims"]] == [True] + [False] * 5
    assert (out / "figures" / "accuracy_by_arm.png").stat().st_size > 1000


def test_fit_gate_reads_each_arms_final_train_accuracy():
    fitted = [0.6, 0.88, 0.93]
    rising = [0.1, 0.2, 0.25]
    tests = fitted_gate({"a": [fitted, fitted], "b": [fitted, rising]}, ("a", "b"))
    assert tests[0].verdict == HELD and tests[0].estimate == pytest.approx(0.93)
    assert tests[1].verdict == NOT_HELD and tests[1].estimate == pytest.approx((0.93 + 0.25) / 2)
    assert FIT_TRAIN_ACC == 0.60


def test_positive_control_and_plateau_gate_the_headline():
    accs = {**_accs([0.88, 0.89, 0.885], [0.85, 0.86, 0.855], [0.70, 0.71, 0.70]), "rexnet_short": [0.6, 0.62, 0.61]}
    flat = [[0.9, 0.95, 0.96, 0.985]] * 3
    curves = {a: flat for a in accs}
    head = decide(accs, curves=curves)
    assert head.verdict == HELD and head.record()["positive_control"][0]["estimate"] == pytest.approx(0.275)
    blind = decide({**accs, "rexnet_short": accs["rexnet"]}, curves=curves)
    assert blind.verdict == INCONCLUSIVE and "no power" in blind.evidence
    slow = decide(accs, curves={**curves, "mbv2": [[0.1, 0.2, 0.3, 0.4]] * 3})  # mbv2 did not learn
    assert decide(accs, curves={**curves, "control": [[0.1, 0.2]] * 3}).verdict == HELD  # the control is not gated
    assert slow.verdict == INCONCLUSIVE and "mechanism inactive" in slow.evidence
