"""Seeds trained as one batched model give the numbers each seed gives alone."""

import numpy as np
import pytest

from reprozoo.rainbow.batched import BatchedLearner, batched_joint, can_batch
from reprozoo.rainbow.experiment import RainbowConfig
from reprozoo.rainbow.experiment_trials import _setup, run_one, settings_for
from reprozoo.rainbow.strategies import ContinualLearner, joint_accuracy
from reprozoo.runtime.trials import Trial

SEEDS = [0, 1, 2]


def _cfg(**kw):
    over = ["cl.epochs=2", "cl.perturbation=shift_cutout_noise"] + [f"{k}={v}" for k, v in kw.items()]
    return RainbowConfig.from_preset("smoke", over)


@pytest.mark.parametrize("arm,blur", [("rm", 0.1), ("er", 0.1), ("gdumb", 0.0), ("balanced", 0.0), ("finetune", 0.1)])
def test_batched_seeds_equal_one_at_a_time(arm, blur):
    cfg = _cfg()
    setups = [_setup(cfg, "rm_mlp_digits", s, blur) for s in SEEDS]
    st = settings_for(cfg, arm, 40)
    seq = [ContinualLearner(fn, st, "cpu", s).fit(sc, d.x_train, d.x_test, sc.relabel(d.y_test))
           for (d, sc, fn), s in zip(setups, SEEDS)]
    bat = BatchedLearner([fn for _, _, fn in setups], st, "cpu", SEEDS).fit(
        [sc for _, sc, _ in setups], [d.x_train for d, _, _ in setups], [d.x_test for d, _, _ in setups],
        [sc.relabel(d.y_test) for d, sc, _ in setups])
    for a, b in zip(seq, bat):
        assert b.task_acc == pytest.approx(a.task_acc, abs=2.5e-3)  # at most one test image of 450 flips
        assert all(np.array_equal(x, y) for x, y in zip(a.memory_keys, b.memory_keys))
        np.testing.assert_allclose(b.class_acc, a.class_acc, atol=0.05)
    assert len({round(r.task_acc[-1], 4) for r in bat}) > 1  # the seeds really differ


def test_batched_joint_equals_the_sequential_joint_run():
    cfg = _cfg()
    setups = [_setup(cfg, "rm_mlp_digits", s, 0.1) for s in SEEDS]
    seq = [joint_accuracy(fn, d.x_train, sc.labels, d.x_test, sc.relabel(d.y_test), cfg.cl, epochs=2, seed=s)
           for (d, sc, fn), s in zip(setups, SEEDS)]
    assert batched_joint(setups, cfg.cl, 2, SEEDS) == pytest.approx(seq, abs=2.5e-3)


def test_only_supported_settings_and_models_are_batched():
    cfg = _cfg()
    mlp = _setup(cfg, "rm_mlp_digits", 0, 0.1)[2]
    cnn = _setup(cfg, "rm_cnn_digits", 0, 0.1)[2]  # batch norm: sequential
    assert can_batch(settings_for(cfg, "rm", 40), mlp) and not can_batch(settings_for(cfg, "rm", 40), cnn)
    assert not can_batch(settings_for(cfg, "ewc", 40), mlp) and not can_batch(settings_for(cfg, "rm_da", 40), mlp)


def test_a_seed_group_trial_returns_the_rows_of_single_seed_trials():
    cfg = _cfg()

    class Ctx:
        config = cfg

    group = run_one(Trial("er", 0, seeds=(0, 1), backbone="rm_mlp_digits", blur=0.1, k=40), Ctx())
    single = [run_one(Trial("er", s, backbone="rm_mlp_digits", blur=0.1, k=40), Ctx()) for s in (0, 1)]
    assert [r["memory_hist"] for r in group["seeds"]] == [r["memory_hist"] for r in single]
    assert [r["A_last"] for r in group["seeds"]] == pytest.approx([r["A_last"] for r in single], abs=2.5e-3)
