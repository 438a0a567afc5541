import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from reprozoo.errors import ConfigError
from reprozoo.runtime.power import seeds_for_mde, seeds_for_power
from reprozoo.runtime.runner import run_experiment
from reprozoo.runtime.verdict import HELD, INCONCLUSIVE, NOT_HELD
from reprozoo.sinet.arms import datasets
from reprozoo.sinet.experiment import (
    ABLATIONS_PLAN,
    CALIBRATED,
    DECODER_MARGIN,
    PLATEAU_LOSS,
    PORTRAIT_PLAN,
    SINetAblationsConfig,
    SINetPortraitConfig,
    decide_ablations,
    decide_portrait,
    encoder_converged,
    iou_plateau,
)
from reprozoo.sinet.experiment_rules import PORTRAIT_POOLED, iou_rise, loss_drop
from reprozoo.sinet.inference import load_checkpoint

LRASPP = [88.0, 89.0, 87.5]
CONTROL = [78.0, 79.5, 77.0]


def _alts(values=LRASPP):
    return {"LR-ASPP MobileNetV3": values}


def test_smoke_preset_end_to_end(tmp_path):
    out, data = run_experiment("sinet-portrait", "smoke", out_dir=tmp_path / "run", progress=False,
                               overrides=["executor.kind=serial"])
    assert data["verdict"] == INCONCLUSIVE  # one seed: the rules need three
    assert "(fewer than 3 seeds)" in data["evidence"]
    m = data["metrics"]
    assert m["method/params"] == 86_910 and m["baseline/params"] == 3_218_308 and m["control/params"] == 86_764
    assert m["baseline/params_ratio"] == pytest.approx(3_218_308 / 86_910)
    stored = {}  # the per-trial results the run kept: the reported metrics must be their aggregates
    for path in (out / "trials").glob("*.json"):
        result = json.loads(path.read_text())
        result = result.get("result", result)
        arm = path.name.split("__")[0] + ("_quarter" if "fraction0.25" in path.name else "")
        stored[arm] = result["fg_iou"]
    for arm, trial_arm in (("method", "sinet"), ("baseline", "lraspp"), ("control", "encoder"),
                           ("positive", "sinet_quarter")):
        assert m[f"{arm}/fg_iou"] == pytest.approx(stored[trial_arm])  # one seed: mean = the trial's value
        assert m[f"{arm}/fg_iou_std"] == 0.0  # and a spread of exactly 0
    # one seed: the interval of LR-ASPP's mean is unbounded, so it cannot lie inside the band
    assert len(data["claims"]) == 6 and data["claims"][2]["verdict"] == NOT_HELD
    assert data["headline"]["verdict"] == INCONCLUSIVE
    assert data["headline"]["plan"]["planned_n"] == PORTRAIT_PLAN.planned_n
    assert data["headline"]["positive_control"][0]["n"] == 1
    # the plateau gates measure the stored per-epoch validation curves: LR-ASPP trains 1 + 1 epochs (its
    # rise is epoch 2 - epoch 1), SINet's stage 2 one epoch (nothing to measure: not held)
    lr = json.loads((out / "trials" / "lraspp__seed0__extranone.json").read_text())["result"]
    assert len(lr["val_curve"]) == 2
    assert m["plateau/baseline_iou_rise"] == pytest.approx(lr["val_curve"][1] - lr["val_curve"][0])
    assert "plateau/method_iou_rise" not in m and data["headline"]["calibration"][2]["verdict"] == NOT_HELD
    heads = [c for c in data["claims"] if c["headline"]]
    assert len(heads) == 1 and heads[0]["verdict"] == data["verdict"]
    for name in ("predictions", "gate_map", "iou_by_arm"):
        assert (out / "figures" / f"{name}.png").is_file()
    model, ckpt = load_checkpoint(out / "sinet.safetensors")
    assert ckpt["image_size"] == 64 and model.decoder == "blocking" and ckpt["synthetic"] is True
    trials = out / "trials"
    for key in ("encoder__seed0__extranone__poolingTrue", "lraspp__seed0__extranone",
                "sinet__seed0__boundaryTrue__decoderblocking__extranone__poolingTrue"):
        assert (trials / f"{key}.json").is_file()
        assert (trials / key / "train_log.csv").is_file() and (trials / key / "best.pt").is_file()
    stored = json.loads((trials / "lraspp__seed0__extranone.json").read_text())["result"]
    assert stored["fg_iou"] == pytest.approx(m["baseline/fg_iou"]) and stored["params"] == 3_218_308


def test_serial_and_local_executors_give_identical_metrics(tmp_path):
    over = ["n_train=8", "n_val=4", "n_test=4", "baseline_epochs=1", "save_checkpoint=false"]
    _, serial = run_experiment("sinet-portrait", "smoke", out_dir=tmp_path / "s", progress=False,
                               overrides=over + ["executor.kind=serial"])
    _, local = run_experiment("sinet-portrait", "smoke", out_dir=tmp_path / "l", progress=False,
                              overrides=over + ["executor.kind=local", "executor.workers=2"])
    assert serial["metrics"] == local["metrics"]
    assert serial["metrics"]["method/fg_iou"] != serial["metrics"]["control/fg_iou"]


def test_ablations_smoke(tmp_path):
    out, data = run_experiment("sinet-ablations", "smoke", out_dir=tmp_path / "run", progress=False,
                               overrides=["executor.kind=serial", "arms=[plain,unpooled,crop]", "n_extra=4"])
    assert data["verdict"] == INCONCLUSIVE
    m = data["metrics"]
    for key in ("method", "ablation_plain", "ablation_unpooled", "ablation_crop", "control"):
        assert f"{key}/fg_iou" in m
    assert m["ablation_plain/params"] == m["ablation_unpooled/params"] == m["method/params"] == 86_910
    texts = [c["claim"] for c in data["claims"]]
    assert texts[0].startswith("SINet's information blocking decoder beats plain skip")
    assert any("portrait crops beats the base" in t for t in texts)
    # one stage-1 encoder per (pooling, extra) setting, shared by the decoder variants
    encoders = sorted(p.name for p in (out / "trials").glob("encoder__*.json"))
    assert encoders == ["encoder__seed0__extracrop__poolingTrue.json",
                        "encoder__seed0__extranone__fraction0.25__poolingTrue.json",
                        "encoder__seed0__extranone__poolingFalse.json", "encoder__seed0__extranone__poolingTrue.json"]
    # the mechanism gate reads the shared encoder's per-epoch train loss
    enc = json.loads((out / "trials" / "encoder__seed0__extranone__poolingTrue.json").read_text())["result"]
    assert len(enc["train_loss"]) == 1 and "mechanism/encoder_loss_drop" not in m  # no curve to judge
    assert "mechanism inactive" in data["evidence"] and "benchmark has no power" in data["evidence"]


# ------------------------------------------------------------------ the rules on crafted numbers
def test_headline_held_when_sinet_is_close_and_the_control_loses():
    head, claims = decide_portrait([87.5, 88.4, 87.0], _alts(), CONTROL)
    v, e = head
    assert v == HELD and "negative control" in e and "(passed)" in e
    assert [c["headline"] for c in claims] == [True, False, False]
    # by hand: paired differences -0.5 / -0.6 / -0.5, mean -0.5333, sd 0.05774, t_{0.95,2} = 2.920
    # -> L = -0.5333 - 2.920 * 0.05774 / sqrt(3) = -0.631 > -2
    assert head.test.lower == pytest.approx(-1.6 / 3 - stats.t.ppf(0.95, 2) * 0.0577350 / math.sqrt(3), abs=1e-6)
    assert head.test.lower == pytest.approx(-0.631, abs=1e-3)
    rec = head.record()
    assert rec["plan"]["sesoi"] == PORTRAIT_PLAN.sesoi == -1.0 and rec["plan"]["planned_n"] == PORTRAIT_PLAN.planned_n
    assert rec["calibration"][0]["verdict"] == HELD and rec["negative_control"][0]["verdict"] == HELD


def test_headline_not_held_when_sinet_loses_to_the_strongest_alternative():
    head, _ = decide_portrait([83.0, 84.0, 83.5], _alts(), CONTROL)  # U = -4.67 + 0.97 = -3.69 < -2
    assert head.verdict == NOT_HELD and "strongest alternative 'LR-ASPP MobileNetV3'" in head.evidence
    # the strongest of several alternatives is the one compared
    v, e = decide_portrait([87.5, 88.4, 87.0], {"weak": [70.0, 71.0, 69.0], **_alts([90.5, 91.5, 91.0])},
                           CONTROL)[0]
    assert v == NOT_HELD and "'LR-ASPP MobileNetV3'" in e


def test_headline_inconclusive_when_the_control_does_not_lose():
    head, claims = decide_portrait([87.5, 88.4, 87.0], _alts(), [87.0, 88.9, 86.5])
    assert head.verdict == INCONCLUSIVE and "cannot separate arms" in head.evidence
    assert claims[1]["verdict"] == NOT_HELD  # gain +0.17, upper bound 1.14 < 2


def test_headline_inconclusive_when_the_benchmark_is_saturated_or_too_hard():
    for level in (99.0, 60.0):
        alt = [level, level + 0.2, level - 0.2]
        head, claims = decide_portrait([a - 0.1 for a in alt], _alts(alt), [a - 20 for a in alt])
        assert head.verdict == INCONCLUSIVE and "not calibrated" in head.evidence and claims[2]["verdict"] == NOT_HELD
    assert CALIBRATED == (70.0, 97.0)
    # just outside the band on either side
    for level in (69.9, 97.1):
        head, _ = decide_portrait([level] * 3, _alts([level] * 3), [level - 20] * 3)
        assert head.verdict == INCONCLUSIVE and "not calibrated" in head.evidence
    # mean 70.27 inside the band, but its interval [69.59, 70.95] is not: not calibrated
    head, claims = decide_portrait([70.6, 69.8, 70.1], _alts([70.7, 69.9, 70.2]), [55.0, 55.0, 55.0])
    assert head.verdict == INCONCLUSIVE and claims[2]["verdict"] == NOT_HELD
    assert head.gates["calibration"][0].lower == pytest.approx(69.59, abs=0.01)


def test_ablation_rules_on_crafted_numbers():
    blocking = [86.0, 87.0, 86.5]
    arms = {"plain": [84.0, 85.1, 84.4], "none": [83.0, 84.0, 83.3], "unpooled": [85.8, 87.2, 86.1],
            "naive": [85.0, 86.0, 85.5], "crop": [88.5, 89.4, 89.0]}
    head, claims = decide_ablations(blocking, arms, CONTROL)
    by = {c["claim"]: c["verdict"] for c in claims}
    # blocking - plain = 2.0 / 1.9 / 2.1: L = 2.0 - 2.920 * 0.1 / sqrt(3) = 1.83 > 0
    assert head.verdict == HELD and head.record()["plan"]["planned_n"] == ABLATIONS_PLAN.planned_n
    assert by["blocking decoder beats plain skip"] == HELD
    # blocking - unpooled = 0.2 / -0.2 / 0.4: [-0.38, +0.65] contains 0.5
    assert by["pooled S2 branches (larger receptive field, fewer MACs) beat the same weights unpooled"] == INCONCLUSIVE
    assert by["adding full-body scenes as portrait crops beats the base training set"] == HELD
    # naive - blocking = -1.0 every seed: the upper bound is below the margin
    assert by["adding full-body scenes naively resized beats the base training set"] == NOT_HELD
    assert by["portrait crops beat naive resizing of the same full-body scenes"] == HELD
    # blocking loses to the plain skip -> not held; a control that does not lose -> inconclusive
    head, _ = decide_ablations(blocking, {**arms, "plain": [87.0, 88.2, 87.4]}, CONTROL)
    assert head.verdict == NOT_HELD
    head, _ = decide_ablations(blocking, arms, [85.9, 87.1, 86.0])
    assert head.verdict == INCONCLUSIVE and "cannot separate arms" in head.evidence
    assert decide_ablations(blocking, {"unpooled": arms["unpooled"]}, CONTROL)[0] is None  # no decoder arm ran


def test_a_gain_with_spread_seeds_is_inconclusive_not_held():
    blocking = [86.0, 88.0, 85.0]
    head, claims = decide_ablations(blocking, {"plain": [85.0, 85.0, 86.0]}, CONTROL)
    # paired gains 1, 3, -1: mean 1.0, sd 2.0 -> [1 - 3.37, 1 + 3.37] contains the margin 0: the benchmark
    # cannot tell (the old 2-SD bar called this "not held"); 3 seeds cannot detect the planned 0.75 gain
    assert head.verdict == INCONCLUSIVE and any("underpowered" in r for r in head.reasons)
    assert head.test.upper == pytest.approx(1.0 + stats.t.ppf(0.95, 2) * 2.0 / math.sqrt(3))


def test_plateau_measures_on_small_curves():
    # 20 epochs: the last tenth is epochs 19-20, the tenth before 17-18; whole fall 1.0 - 0.5
    loss = [1.0] * 16 + [0.55, 0.53, 0.5, 0.5]
    assert loss_drop(loss) == pytest.approx((0.54 - 0.5) / 0.5)
    assert encoder_converged([loss]).verdict == NOT_HELD  # 8% of the fall in the last tenth > 5%
    flat = [1.0] * 16 + [0.51, 0.505, 0.5, 0.5]
    gate = encoder_converged([flat, loss])  # mean over seeds (0.015 + 0.08) / 2 = 0.0475
    assert gate.verdict == HELD and gate.estimate == pytest.approx(0.0475) and PLATEAU_LOSS == 0.05
    assert encoder_converged([loss, loss]).verdict == NOT_HELD
    assert math.isnan(loss_drop([0.5, 0.6]))  # a loss that did not fall has no plateau to measure
    # val IoU over fifths: 10 epochs -> epochs 7-8 vs 9-10
    iou = [50, 60, 70, 75, 78, 80, 81, 82, 82.0, 82.4]
    assert iou_rise(iou) == pytest.approx(82.2 - 81.5)
    assert iou_plateau([iou], "m").verdict == NOT_HELD and iou_plateau([iou[:-2] + [81.5, 82.0]], "m").verdict == HELD
    assert math.isnan(iou_rise([80.0])) and math.isnan(loss_drop([0.3]))
    assert iou_rise([80.0, 81.0]) == 1.0 and loss_drop([1.0, 0.6]) == pytest.approx(1.0)


def test_positive_control_and_mechanism_gate_the_ablation_headline():
    blocking, plain, none = [86.0, 87.0, 86.5], [84.0, 85.1, 84.4], [83.0, 84.0, 83.3]
    arms = {"plain": plain, "none": none}
    held = encoder_converged([[1.0] * 16 + [0.51, 0.505, 0.5, 0.5]])
    head, claims = decide_ablations(blocking, arms, CONTROL, quarter=[80.0, 81.0, 80.2], mechanism=held)
    assert head.verdict == HELD and head.gates["positive_control"][0].verdict == HELD
    assert [c["claim"].split(":")[0] for c in claims[3:5]] == ["positive control", "mechanism"]
    # a quarter-epoch SINet as good as SINet: the benchmark cannot see a known effect -> inconclusive
    head, _ = decide_ablations(blocking, arms, CONTROL, quarter=[86.1, 86.9, 86.6], mechanism=held)
    assert head.verdict == INCONCLUSIVE and "benchmark has no power" in head.evidence
    # an encoder still learning: the decoder comparison does not count
    head, _ = decide_ablations(blocking, arms, CONTROL, quarter=[80.0, 81.0, 80.2],
                               mechanism=encoder_converged([[1.0, 0.5]]))
    assert head.verdict == INCONCLUSIVE and head.reasons == ("mechanism inactive",)


def test_portrait_positive_control_and_plateau_gates():
    sinet, alt = [87.5, 88.4, 87.0], _alts()
    flat = iou_plateau([[80.0, 85.0, 86.0, 86.0, 86.1]] * 3, "LR-ASPP MobileNetV3")
    rising = iou_plateau([[60.0, 70.0, 80.0, 84.0, 86.0]] * 3, "LR-ASPP MobileNetV3")
    head, claims = decide_portrait(sinet, alt, CONTROL, quarter=[84.0, 85.0, 84.5], plateaus=[flat])
    assert head.verdict == HELD and len(head.gates["calibration"]) == 2 and claims[-1]["verdict"] == HELD
    head, _ = decide_portrait(sinet, alt, CONTROL, quarter=[84.0, 85.0, 84.5], plateaus=[rising])
    assert head.verdict == INCONCLUSIVE and head.reasons == ("not calibrated",)
    # SINet beats its quarter-epoch self by only ~1 point: a gap of the margin is not resolved
    head, _ = decide_portrait(sinet, alt, CONTROL, quarter=[86.5, 87.4, 86.0], plateaus=[flat])
    assert head.verdict == INCONCLUSIVE and "benchmark has no power" in head.evidence


def test_plans_give_the_full_presets_their_seeds():
    for cls, plan in ((SINetPortraitConfig, PORTRAIT_PLAN), (SINetAblationsConfig, ABLATIONS_PLAN)):
        bound = -plan.margin if plan.kind == "noninferiority" else plan.margin
        n = seeds_for_power(plan.sesoi, plan.pilot_sd, bound=bound)
        if plan.mde_assurance:  # the run's own MDE must also be <= SESOI with this probability
            n = max(n, seeds_for_mde(plan.sesoi, plan.pilot_sd, bound=bound, assurance=plan.mde_assurance))
        assert plan.planned_n == n
        full = cls.from_preset("full")
        assert len(full.seeds) >= n and plan.power_at(len(full.seeds)) >= 0.8
        assert full.positive_control and cls.from_preset("quick").seeds == [0, 1, 2]
    assert ABLATIONS_PLAN.margin == DECODER_MARGIN == 0.0
    assert f"{ABLATIONS_PLAN.pilot_sd:g}" in ABLATIONS_PLAN.pilot_source


def test_portrait_plan_2_pools_the_full_designs_runs():
    # plan 2: the plan-1 record (seeds 0-2, SD 0.765) and its repeat (3-5, SD 0.172), pooled (4 df) and
    # taken at the SD's 80% upper limit; 8 seeds for 80% power and an 80% chance of MDE <= SESOI
    sd, df = PORTRAIT_POOLED
    assert df == 4 and sd == pytest.approx(((2 * 0.7652**2 + 2 * 0.1722**2) / 4) ** 0.5)
    assert PORTRAIT_PLAN.pilot_sd == pytest.approx(0.8638, abs=1e-4) and PORTRAIT_PLAN.mde_assurance == 0.8
    assert PORTRAIT_PLAN.planned_n == 8 and seeds_for_power(-1.0, 0.8638, bound=-2.0) == 7
    seeds = SINetPortraitConfig.from_preset("full").seeds
    assert seeds == list(range(6, 14)) and not set(seeds) & set(range(6))  # disjoint from the pooled runs


def test_lraspp_trains_sinets_budget_on_sinets_schedule():
    from reprozoo.sinet.arms import _stage, baseline_stage

    for schedule in ("multistep", "cosine"):
        cfg = SINetPortraitConfig.from_preset("full", [f"stage1.schedule={schedule}", f"stage2.schedule={schedule}"])
        # LR-ASPP trains SINet's two stages' epochs in one run, on the stage-2 recipe and schedule
        assert cfg.baseline_epochs == cfg.stage1.epochs + cfg.stage2.epochs
        baseline = baseline_stage(cfg)
        assert (baseline.schedule, baseline.epochs, baseline.lr) == (schedule, cfg.baseline_epochs, cfg.stage2.lr)
        # its own budget and learning rate when given (the other fields stay the stage-2 recipe)
        own = baseline_stage(SINetPortraitConfig.from_preset("full", ["baseline_epochs=7", "baseline_lr=0.004"]))
        assert (own.epochs, own.lr, own.batch_size) == (7, 0.004, cfg.stage2.batch_size)
        default = SINetPortraitConfig.from_preset("quick")
        assert baseline_stage(default).epochs == default.stage1.epochs + default.stage2.epochs
        # the positive control: both stages at a quarter of the epochs, on the same schedule
        quarter = _stage(cfg, "stage2", 0.25)
        assert quarter.epochs == round(cfg.stage2.epochs / 4) and quarter.schedule == schedule


# ------------------------------------------------------------------------------------- config
def test_config_validation():
    def check(cls, over, match, preset="smoke"):
        with pytest.raises(ConfigError, match=match):
            cls.from_preset(preset, over).validate()

    check(SINetPortraitConfig, ["image_size=100"], "multiple of 32")
    check(SINetPortraitConfig, ["baseline_epochs=-1"], "baseline_epochs must be >= 0")
    check(SINetPortraitConfig, ["baseline_lr=-0.1"], "baseline_lr must be >= 0")
    check(SINetPortraitConfig, ["augment.scale=1.5"], "augment.scale")
    check(SINetPortraitConfig, ["augment.p_blur=2"], "augment.p_blur")
    check(SINetPortraitConfig, ["seeds=[1,1,2]"], "seeds must be distinct")
    check(SINetPortraitConfig, [], "pass --set data_root", preset="paper")
    check(SINetAblationsConfig, [], "pass --set data_root", preset="paper")
    check(SINetAblationsConfig, ["arms=[plain,x]"], "unknown ablation arm 'x'")
    check(SINetAblationsConfig, ["arms=[crop]", "n_extra=0"], "n_extra >= 1")
    cfg = SINetPortraitConfig.from_preset("quick", ["stage2.epochs=7"])
    assert cfg.stage2.epochs == 7 and cfg.image_size == 96 and cfg.seeds == [0, 1, 2]
    assert not hasattr(cfg, "workers")


def test_paper_preset_without_data_root_is_refused_before_any_output(tmp_path):
    with pytest.raises(ConfigError, match="data_root"):
        run_experiment("sinet-portrait", "paper", out_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_extra_data_arms_add_cropped_or_resized_full_body_scenes():
    cfg = SINetAblationsConfig.from_preset("smoke", ["n_extra=3"])
    base, crop, naive = datasets(cfg), datasets(cfg, "crop"), datasets(cfg, "naive")
    assert len(base[0]) == 16 and len(crop[0]) == len(naive[0]) == 19
    extra_crop, extra_naive = crop[0].masks[16:].float().mean(), naive[0].masks[16:].float().mean()
    assert extra_crop > 1.5 * extra_naive  # cropping around the head makes the person portrait-sized


def test_data_root_reads_eg1800(tmp_path):
    from PIL import Image

    (tmp_path / "Images").mkdir()
    (tmp_path / "Labels").mkdir()
    for i in range(8):
        Image.fromarray(np.full((80, 60, 3), 20 * i, np.uint8)).save(tmp_path / "Images" / f"{i:05d}.png")
        mask = np.zeros((80, 60), np.uint8)
        mask[40:, 10:50] = 255
        Image.fromarray(mask).save(tmp_path / "Labels" / f"{i:05d}.png")
    (tmp_path / "eg1800_train.txt").write_text("\n".join(f"{i:05d}.png" for i in range(6)))
    (tmp_path / "eg1800_test.txt").write_text("00006.png\n00007.png\n")
    cfg = SINetPortraitConfig.from_preset("smoke", [f"data_root={tmp_path}"])
    train, val, test, weight, _, splits = datasets(cfg)
    assert (len(train), len(val), len(test)) == (5, 1, 2)  # 10% of the train list -> validation
    assert splits.test.images.shape == (2, 3, 64, 64) and int(splits.test.images[1, 0, 0, 0]) == 140
    assert splits.test.masks.float().mean() == pytest.approx(0.5 * 40 / 60, abs=0.03)
    assert torch.isfinite(weight).all()
