import json

import pytest

from reprozoo.errors import ConfigError, ReproZooError
from reprozoo.runtime.trials import ExecutorConfig, Trial, TrialError, run_trials
from tests.runtime import trial_fns

TRIALS = [Trial(arm, s, lr=lr) for arm, lr in (("a", 0.1), ("b", 0.5)) for s in (0, 1, 2)]


def _run(tmp_path, kind, fn=trial_fns.train_tiny, trials=TRIALS, resume=False, workers=2):
    return run_trials(fn, trials, config=None, run_dir=tmp_path,
                      executor=ExecutorConfig(kind=kind, workers=workers), resume=resume, progress=False)


def test_trial_keys_are_stable_and_safe():
    t = Trial("rm", 3, k=20, name="a/b")
    assert t.key == "rm__seed3__k20__namea-b"
    assert t == Trial("rm", 3, name="a/b", k=20)
    assert t["k"] == 20 and t.get("missing", 5) == 5


def test_serial_and_local_give_identical_results_in_spec_order(tmp_path):
    serial = _run(tmp_path / "s", "serial")
    local = _run(tmp_path / "l", "local")
    assert serial == local
    assert [r["arm"] for r in serial] == ["a"] * 3 + ["b"] * 3
    # the result depends on the trial spec: different seeds differ, the same spec repeats exactly
    assert len({r["loss"] for r in serial}) == 6
    assert len({r["noise"] for r in serial}) == 6
    stored = json.loads((tmp_path / "s" / "trials" / f"{TRIALS[0].key}.json").read_text())
    assert stored["result"] == serial[0] and stored["trial"] == {"arm": "a", "seed": 0, "params": {"lr": 0.1}}


def test_resume_runs_only_missing_trials(tmp_path):
    trials = [Trial("x", s) for s in range(4)]
    _run(tmp_path, "serial", trial_fns.marker, trials)
    (tmp_path / "trials" / f"{trials[2].key}.json").unlink()  # as if that trial had been killed
    results = _run(tmp_path, "local", trial_fns.marker, trials, resume=True)
    ran = {p.name: p.read_text() for p in tmp_path.glob("ran-*")}
    assert ran[f"ran-{trials[2].key}"] == "xx"
    assert all(ran[f"ran-{t.key}"] == "x" for t in trials if t is not trials[2])
    assert [r["seed"] for r in results] == [0, 1, 2, 3]


@pytest.mark.parametrize("kind", ["serial", "local"])
def test_failing_trial_is_named_and_finished_trials_are_kept(tmp_path, kind):
    trials = [Trial("good", 0), Trial("good", 1), Trial("bad", 0)]
    with pytest.raises(TrialError, match=r"Trial\(arm='bad', seed=0\) failed: ValueError: this arm is broken"):
        _run(tmp_path, kind, trial_fns.fail_on, trials, workers=1)
    assert (tmp_path / "trials" / "good__seed0.json").exists()
    assert (tmp_path / "trials" / "good__seed1.json").exists()
    assert "Traceback" in (tmp_path / "trials" / "bad__seed0.error.txt").read_text()
    assert issubclass(TrialError, ReproZooError)


def test_duplicate_trials_and_bad_executor_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="duplicate"):
        _run(tmp_path, "serial", trials=[Trial("a", 0), Trial("a", 0)])
    with pytest.raises(ConfigError, match="executor.kind"):
        _run(tmp_path, "threads")
    assert not (tmp_path / "trials").exists() or not any((tmp_path / "trials").iterdir())


def test_ray_executor_matches_serial(tmp_path):
    ray = pytest.importorskip("ray")
    serial = _run(tmp_path / "s", "serial")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    try:
        via_ray = _run(tmp_path / "r", "ray")
    finally:
        ray.shutdown()
    assert via_ray == serial


def test_generator_scope_leaves_the_global_stream_alone():
    import torch

    from reprozoo.runtime.seeding import generator_scope

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with generator_scope(torch.Generator().manual_seed(7)):
        a = torch.nn.functional.dropout(torch.ones(1000), 0.5)
    assert torch.equal(torch.rand(3), expected)  # the caller's stream continues as if nothing ran
    with generator_scope(torch.Generator().manual_seed(7)):
        b = torch.nn.functional.dropout(torch.ones(1000), 0.5)
    assert torch.equal(a, b) and 300 < int((a == 0).sum()) < 700
    torch.manual_seed(5)
    with generator_scope(None):
        torch.rand(2)
    torch.manual_seed(5)
    torch.rand(2)
    after = torch.rand(1)
    torch.manual_seed(5)
    with generator_scope(None):
        torch.rand(2)
    assert torch.equal(torch.rand(1), after)  # without a generator: the usual global stream
