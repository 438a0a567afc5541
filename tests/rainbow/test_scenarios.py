import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reprozoo.errors import ConfigError, DataError
from reprozoo.rainbow.scenarios import blurry_split, check_partition, scenario_from_tasks


def _labels(n_classes=10, per_class=100):
    return np.repeat(np.arange(n_classes), per_class)


@pytest.mark.parametrize("share,expected", [("exact", 0.10), ("legacy", 0.08)])
def test_foreign_share_hand_case(share, expected):
    # 10 classes x 100, 5 tasks: each pool has 200 samples, 20 move; exact: 4 chunks of 5 out
    # (each task receives 20 -> 10%); legacy: 5 chunks of 4, one stays (receives 16 -> 8% = 0.8*M)
    scen = blurry_split(_labels(), n_tasks=5, blur=0.1, seed=3, share=share)
    check_partition(scen, 1000)
    assert [len(t) for t in scen.tasks] == [200] * 5
    assert [scen.foreign_share(t) for t in range(5)] == pytest.approx([expected] * 5)


def test_relabel_puts_major_classes_in_task_order():
    y = _labels()
    scen = blurry_split(y, 5, 0.1, seed=1)
    for t in range(5):
        assert scen.major[t].tolist() == [2 * t, 2 * t + 1]
        counts = np.bincount(scen.labels[scen.tasks[t]], minlength=10)
        assert counts[2 * t] > 80 and counts[2 * t + 1] > 80
    # labels are the original ones mapped through the seeded class order
    assert np.array_equal(scen.class_order[scen.labels], y)
    assert np.array_equal(scen.relabel(scen.class_order), np.arange(10))
    assert not np.array_equal(blurry_split(y, 5, 0.1, seed=2).class_order, scen.class_order)
    again = blurry_split(y, 5, 0.1, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(again.tasks, scen.tasks))


def test_blurry0_is_disjoint_and_evaluates_seen_classes_only():
    scen = blurry_split(_labels(), 5, 0.0, seed=0)
    assert scen.disjoint
    for t in range(5):
        assert set(scen.labels[scen.tasks[t]].tolist()) == {2 * t, 2 * t + 1}
    assert scen.eval_classes(1).tolist() == [0, 1, 2, 3]
    blurry = blurry_split(_labels(), 5, 0.1, seed=0)
    assert blurry.eval_classes(0).tolist() == list(range(10))
    assert blurry.exposed_classes(0).tolist() == list(range(10))


@settings(max_examples=40, deadline=None)
@given(n_tasks=st.sampled_from([1, 2, 3, 5]), per_class=st.integers(1, 40), blur=st.floats(0, 0.5),
       seed=st.integers(0, 10**6), share=st.sampled_from(["exact", "legacy"]),
       uneven=st.booleans())
def test_partition_property(n_tasks, per_class, blur, seed, share, uneven):
    rng = np.random.default_rng(seed)
    n_classes = 2 * n_tasks if n_tasks > 1 else 3
    counts = rng.integers(1, per_class + 1, n_classes) if uneven else np.full(n_classes, per_class)
    y = rng.permutation(np.repeat(np.arange(n_classes), counts))
    scen = blurry_split(y, n_tasks, blur, seed, share=share)
    check_partition(scen, len(y))  # every sample exactly once
    for t in range(n_tasks):
        pool = int(np.isin(scen.labels, scen.major[t]).sum())
        moved = int(round(blur * pool)) if n_tasks > 1 else 0
        home = np.isin(scen.labels[scen.tasks[t]], scen.major[t]).sum()
        # a task keeps exactly (pool - moved) of its own samples, plus its own legacy chunk
        if share == "exact":
            assert home == pool - moved
        else:
            assert pool - moved <= home <= pool - moved + int(np.ceil(moved / n_tasks))
    if not uneven and n_tasks > 1:
        pool = per_class * 2
        moved = int(round(blur * pool))
        chunk = moved / (n_tasks - 1 if share == "exact" else n_tasks)
        for t in range(n_tasks):
            foreign = len(scen.tasks[t]) * scen.foreign_share(t)
            assert abs(foreign - (n_tasks - 1) * chunk) <= n_tasks - 1


def test_absent_class_errors():
    y = _labels()
    with pytest.raises(DataError, match=r"class \[10\] has no samples, so it would be absent from every task"):
        blurry_split(y, 5, 0.1, classes=range(11))
    with pytest.raises(DataError, match=r"class \[9\] would be absent from every task"):
        blurry_split(y, 5, 0.1, class_order=list(range(9)) + [0])
    with pytest.raises(DataError, match=r"class \[3\] is absent from every task"):
        scenario_from_tasks(np.array([0, 1, 2]), [[0, 1], [2]], [[0, 1], [2, 3]], num_classes=4)
    with pytest.raises(ConfigError, match="cannot be split into 3 equal tasks"):
        blurry_split(y, 3, 0.1)
    with pytest.raises(ConfigError, match="blur must be in"):
        blurry_split(y, 5, 1.5)
    with pytest.raises(DataError, match="labels must be non-negative class ids, got -1"):
        blurry_split(y - 1, 5, 0.1)  # a negative id would silently wrap in the relabelling table
