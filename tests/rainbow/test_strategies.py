import math

import numpy as np
import pytest
import torch

from reprozoo.errors import ConfigError, UnknownNameError
from reprozoo.rainbow.data import digits_data
from reprozoo.rainbow.models import rm_mlp_digits
from reprozoo.rainbow.scenarios import blurry_split
from reprozoo.rainbow.strategies import CLSettings, ContinualLearner, Normalized, epoch_lrs

DATA = digits_data(0)


def _setup(n=300, n_tasks=5, blur=0.1):
    x, y = DATA.x_train[:n], DATA.y_train[:n]
    scen = blurry_split(y, n_tasks, blur, seed=0)
    return scen, x, scen.relabel(DATA.y_test[:150]), DATA.x_test[:150]


def _model():
    return Normalized(rm_mlp_digits(hidden=32), DATA.mean, DATA.std)


def _fit(**kw):
    scen, x, yt, xt = _setup()
    learner = ContinualLearner(_model, CLSettings(**{"epochs": 2, **kw}), seed=0)
    return learner, learner.fit(scen, x, xt, yt), scen


def test_rm_memory_is_class_balanced_and_results_are_reproducible():
    learner, res, scen = _fit(method="rm", memory_size=20)
    assert np.bincount(res.memory_labels[-1], minlength=10).tolist() == [2] * 10
    assert len(res.task_acc) == 5 and res.class_acc.shape == (5, 10)
    assert res.selections[-1]["uncertainty"] is not None
    _, again, _ = _fit(method="rm", memory_size=20)
    assert again.task_acc == res.task_acc
    assert all(np.array_equal(a, b) for a, b in zip(again.memory_keys, res.memory_keys))
    assert res.summary()["A_last"] == res.task_acc[-1]


def test_er_reservoir_finetune_gdumb_ewc_memories():
    _, er, scen = _fit(method="er", memory_size=20)
    assert len(er.memory_keys[-1]) == 20 and len(set(er.memory_keys[-1].tolist())) == 20
    _, ft, _ = _fit(method="finetune", memory_size=20)
    assert all(len(k) == 0 for k in ft.memory_keys)
    _, gd, _ = _fit(method="gdumb", memory_size=20)
    assert np.bincount(gd.memory_labels[-1], minlength=10).tolist() == [2] * 10
    learner, ewc, _ = _fit(method="ewc", memory_size=20)
    fisher, anchor = learner.ewc_state
    assert not any(k.startswith("net.head") for k in fisher)  # head parameters excluded
    assert float(learner._ewc_penalty(learner.model_).detach()) == pytest.approx(0.0)  # at the anchor
    with torch.no_grad():
        for p in learner.model_.parameters():
            p.add_(0.1)
    assert float(learner._ewc_penalty(learner.model_).detach()) > 0


def test_head_is_reset_every_task_and_backbone_carries_over():
    scen, x, yt, xt = _setup()
    heads, feats = [], []
    learner = ContinualLearner(_model, CLSettings(method="rm", memory_size=20, epochs=1), seed=0)
    learner.progress = lambda: (heads.append(learner_model().head), feats.append(
        learner_model().net.features[1].weight.detach().clone()))
    models = []
    orig = learner._optimizer

    def spy(model):
        models.append(model)
        return orig(model)

    learner._optimizer = spy

    def learner_model():
        return models[-1]

    learner.fit(scen, x, xt, yt)
    assert len(models) == 5 and all(m is models[0] for m in models)  # same model, new optimiser per task
    assert len({id(h) for h in heads}) == 5  # a fresh head at every task start
    assert not torch.equal(feats[0], feats[-1])


def test_offline_protocol_and_disjoint_evaluation():
    scen, x, yt, xt = _setup(blur=0.0)
    res = ContinualLearner(_model, CLSettings(method="rm", memory_size=10, epochs=1, online=False),
                           seed=0).fit(scen, x, xt, yt)
    assert len(res.task_acc) == 5
    # disjoint: after task 0 only classes 0, 1 exist; the head has 2 outputs, so it never predicts 2..9
    assert np.isnan(res.class_acc[0]).sum() == 0
    assert res.class_acc[0, 2:].tolist() == [0.0] * 8
    # task t is scored on the test samples of the classes of tasks 0..t only (not the full test set)
    counts = np.bincount(yt, minlength=10)
    for t in range(5):
        seen = slice(0, 2 * (t + 1))
        expected = (res.class_acc[t, seen] * counts[seen]).sum() / counts[seen].sum()
        assert res.task_acc[t] == pytest.approx(expected)


def test_bad_settings_raise_clear_errors():
    scen, x, yt, xt = _setup()
    with pytest.raises(UnknownNameError, match="unknown method 'rmm'; choose one of: ewc, er, finetune"):
        ContinualLearner(_model, CLSettings(method="rmm")).fit(scen, x, xt, yt)
    with pytest.raises(ConfigError, match=r"memory size K=8 is smaller than the number of classes \(10\)"):
        ContinualLearner(_model, CLSettings(method="er", memory_size=8)).fit(scen, x, xt, yt)
    with pytest.raises(UnknownNameError, match="unknown memory policy"):
        CLSettings(policy="fifo").validate()
    with pytest.raises(UnknownNameError, match="unknown augmentation policy 'trivial'"):
        CLSettings(aug_policy="trivial").validate()
    with pytest.raises(ConfigError, match="SGD needs lr > 0"):  # torch's own ValueError before
        CLSettings(lr=-1.0).validate()
    with pytest.raises(ConfigError, match="nesterov needs momentum > 0"):
        CLSettings(momentum=0.0).validate()
    with pytest.raises(ConfigError, match="eval_batch, score_batch and n_votes must be >= 1"):
        CLSettings(eval_batch=0).validate()


def test_torch_schedulers_give_the_hand_computed_learning_rates():
    base, lo = 0.05, 0.0005
    sgdr = epoch_lrs(10, base, "warm_restarts", True, 0.01)
    assert sgdr[0] == pytest.approx(0.005)  # warm-up epoch at 0.1 x lr
    # SGDR(T_0=1, T_mult=2) after the warm-up: cycles of 1, 2, 4, 8 epochs, each restarting at the base lr

    def cycle(n, t):
        return lo + (base - lo) * 0.5 * (1 + math.cos(math.pi * t / n))

    expected = [cycle(1, 0), cycle(2, 0), cycle(2, 1), *[cycle(4, t) for t in range(4)], cycle(8, 0), cycle(8, 1)]
    assert sgdr[1:] == pytest.approx(expected)
    assert expected[2] == pytest.approx(0.02525)
    cos = epoch_lrs(9, base, "cosine", True, 0.0)
    assert cos[0] == pytest.approx(0.005)
    assert cos[1:] == pytest.approx([base * 0.5 * (1 + math.cos(math.pi * t / 8)) for t in range(8)])
    assert epoch_lrs(3, base, "constant", False, 0.01) == pytest.approx([base] * 3)
    assert epoch_lrs(1, base, "cosine", True, 0.01) == pytest.approx([0.005])  # the online stream pass


def test_fit_leaves_the_global_rng_alone_and_repeats_exactly():
    torch.manual_seed(5)
    state = torch.get_rng_state()
    _, a, _ = _fit(method="rm", memory_size=20, cutmix=True, crop_pad=1)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(99)  # a different global state does not change the run
    _, b, _ = _fit(method="rm", memory_size=20, cutmix=True, crop_pad=1)
    assert a.task_acc == b.task_acc


def test_best_epoch_is_only_a_flagged_legacy_option():
    _, last, _ = _fit(method="rm", memory_size=20)
    _, best, _ = _fit(method="rm", memory_size=20, task_acc="best")
    # evaluation consumes no randomness: same training, so best-of-epochs >= final-epoch accuracy
    assert all(b >= a for a, b in zip(last.task_acc, best.task_acc))
    assert np.allclose(best.class_acc, last.class_acc)  # per-class accuracy always from the final epoch


def test_the_device_defaults_to_auto_and_is_read_by_the_runtime_resolver():
    from reprozoo.rainbow.batched import BatchedLearner
    from reprozoo.runtime.accel import resolve_device

    auto = torch.device(resolve_device("auto"))
    assert ContinualLearner(_model).device == auto
    assert BatchedLearner([_model], CLSettings()).device == auto
    assert ContinualLearner(_model, device=torch.device("cpu")).device == torch.device("cpu")
    for bad in ("gpu", "cuda:x"):
        with pytest.raises(ConfigError, match="device must be auto, cpu, cuda, cuda:N or mps"):
            ContinualLearner(_model, device=bad)
        with pytest.raises(ConfigError, match="device must be"):
            BatchedLearner([_model], CLSettings(), device=bad)
