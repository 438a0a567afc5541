"""ContinualLearner.fit(out_dir=..., resume=...): the state after every task is saved, and a stream
interrupted in a later task resumes from its last finished task and ends as a run never stopped."""

import numpy as np
import pytest
import torch

from reprozoo.errors import ConfigError, OutputExistsError
from reprozoo.rainbow.data import digits_data
from reprozoo.rainbow.models import rm_mlp_digits
from reprozoo.rainbow.scenarios import blurry_split
from reprozoo.rainbow.strategies import CLSettings, ContinualLearner, Normalized

DATA = digits_data(0)
X, Y = DATA.x_train[:240], DATA.y_train[:240]
SCEN = blurry_split(Y, 5, 0.1, seed=0)
XT, YT = DATA.x_test[:120], SCEN.relabel(DATA.y_test[:120])


def _model():
    return Normalized(rm_mlp_digits(hidden=16), DATA.mean, DATA.std)


def _learner(**kw):
    return ContinualLearner(_model, CLSettings(**{"epochs": 2, "memory_size": 20, "memory_batch": 8, **kw}), seed=3)


def _same(a, b):
    assert a.task_acc == b.task_acc and a.best_acc == b.best_acc
    assert np.array_equal(a.class_acc, b.class_acc, equal_nan=True)
    assert all(np.array_equal(p, q) for p, q in zip(a.memory_keys, b.memory_keys))
    assert all(np.array_equal(p, q) for p, q in zip(a.memory_labels, b.memory_labels))
    assert len(a.selections) == len(b.selections)
    for p, q in zip(a.selections, b.selections):
        assert (p is None) == (q is None)
        if p is not None:
            assert p.keys() == q.keys()
            assert all((p[k] is None and q[k] is None) or np.array_equal(p[k], q[k]) for k in p)


@pytest.mark.parametrize("method, augment", [("rm", {"cutmix": True, "hflip": True, "crop_pad": 1}), ("er", {}),
                                             ("ewc", {}), ("gdumb", {})])
def test_a_stream_stopped_in_its_third_task_resumes_bit_for_bit(method, augment, tmp_path, monkeypatch):
    straight = _learner(method=method, **augment)
    full = straight.fit(SCEN, X, XT, YT, out_dir=tmp_path / "a")
    assert (tmp_path / "a" / "stream_state.pt").is_file()

    evaluate = ContinualLearner.evaluate
    calls = []

    def stop_at_the_third_task(self, model, classes):
        calls.append(1)
        if len(calls) == 3:  # task 3 trained, its state not yet saved
            raise KeyboardInterrupt
        return evaluate(self, model, classes)

    monkeypatch.setattr(ContinualLearner, "evaluate", stop_at_the_third_task)
    with pytest.raises(KeyboardInterrupt):
        _learner(method=method, **augment).fit(SCEN, X, XT, YT, out_dir=tmp_path / "b")
    monkeypatch.setattr(ContinualLearner, "evaluate", evaluate)
    torch.manual_seed(123)  # another global RNG state at restart: the saved state restores the run's
    np.random.seed(7)
    resumed = _learner(method=method, **augment)
    again = resumed.fit(SCEN, X, XT, YT, out_dir=tmp_path / "b", resume=True)
    _same(again, full)
    for (k, a), b in zip(straight.model_.state_dict().items(), resumed.model_.state_dict().values()):
        assert torch.equal(a, b), k


def test_only_the_unfinished_tasks_run_again(tmp_path, monkeypatch):
    done = []
    learner = _learner(method="er")
    learner.progress = lambda: done.append(1)
    learner.fit(SCEN, X, XT, YT, out_dir=tmp_path / "run")
    assert len(done) == 5
    runs = []
    train = ContinualLearner._train

    def counted(self, model, opt, stream, epochs, eval_fn=None):
        runs.append(stream is not None)
        return train(self, model, opt, stream, epochs, eval_fn)

    monkeypatch.setattr(ContinualLearner, "_train", counted)
    result = _learner(method="er").fit(SCEN, X, XT, YT, out_dir=tmp_path / "run", resume=True)
    assert runs == [] and len(result.task_acc) == 5  # every task was finished: nothing reruns


def test_out_dir_and_resume_are_checked(tmp_path):
    _learner(method="er", epochs=1).fit(SCEN, X, XT, YT, out_dir=tmp_path / "run")
    before = (tmp_path / "run" / "stream_state.pt").read_bytes()
    with pytest.raises(OutputExistsError, match=r"already holds a continual run \(stream_state.pt\); pass resume=True"):
        _learner(method="er", epochs=1).fit(SCEN, X, XT, YT, out_dir=tmp_path / "run")
    assert (tmp_path / "run" / "stream_state.pt").read_bytes() == before
    for learner, data, name in [
        (_learner(method="er", epochs=2), (X, XT, YT), "epochs"),
        (_learner(method="rm", epochs=1), (X, XT, YT), "method"),
        (ContinualLearner(_model, CLSettings(method="er", epochs=1, memory_size=20, memory_batch=8), seed=4),
         (X, XT, YT), "seed"),
        (_learner(method="er", epochs=1), (X.flip(0), XT, YT), "train_data"),
    ]:
        with pytest.raises(ConfigError, match=rf"^resume=True but {name} differs from the run in .*use a new "
                                              r"out_dir$") as info:
            learner.fit(SCEN, *data, out_dir=tmp_path / "run", resume=True)
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="resume=True needs the out_dir"):
        _learner(method="er").fit(SCEN, X, XT, YT, resume=True)
    with pytest.raises(ConfigError, match="needs reset_optimizer=True"):
        _learner(method="er", reset_optimizer=False).fit(SCEN, X, XT, YT, out_dir=tmp_path / "other")
