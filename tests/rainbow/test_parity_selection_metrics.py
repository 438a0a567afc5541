"""Parity with the official Rainbow Memory code: memory selection (stride rule, ties) and the metrics."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from reprozoo.errors import ConfigError
from reprozoo.rainbow.memory import stride_pick, stride_select
from reprozoo.rainbow.metrics import (
    a_avg,
    a_last,
    class_accuracy,
    class_accuracy_from_counts,
    forgetting,
    forgetting_matrix,
    intransigence,
    task_accuracy,
)

FIX = Path(__file__).parents[1] / "fixtures" / "rainbow"
SETS = ["vr", "vr_randaug"]


@pytest.fixture(scope="module")
def selection():
    sel = json.loads((FIX / "selection.json").read_text())
    votes = json.loads((FIX / "votes.json").read_text())["metrics"]
    labels = load_file(str(FIX / "candidates.safetensors"))["labels"].numpy()
    return sel, votes, labels


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("order_key", ["simd", "no_simd"])
def test_parity_stride_rule_on_the_official_sorted_order(selection, name, order_key):
    """Given pandas' per-class order (each of the two recorded CPUs' orders), the stride rule gives the
    official picks exactly, in the official order (class by class)."""
    sel, votes, labels = selection
    rec = sel["selection"][name] if order_key == "simd" else sel["selection"][name]["no_simd"]
    order = np.concatenate([rec["pandas_sorted_order_per_class"][str(c)] for c in range(10)])
    u = np.asarray(votes[name]["uncertainty"], dtype=np.float32)
    for K, want in rec["per_K"].items():
        assert want["mem_per_cls"] == int(K) // 10
        picks = stride_select(u, labels, int(K), range(10), np.random.default_rng(0), order=order)
        picks = picks[: len(want["quota_picks"])]  # then the random fill
        assert picks.tolist() == want["quota_picks"], (name, K)


@pytest.mark.parametrize("name", SETS)
def test_parity_our_tie_breaking_picks_the_official_uncertainties(selection, name):
    """Our ties are broken by a seeded shuffle; per class we pick the same multiset of uncertainties as
    the official code, the same number per class and the same number of random fills."""
    sel, votes, labels = selection
    u = np.asarray(votes[name]["uncertainty"], dtype=np.float32)
    for K, want in sel["selection"][name]["per_K"].items():
        K = int(K)
        ours = stride_select(u, labels, K, range(10), np.random.default_rng(0))
        assert len(ours) == K and len(set(ours.tolist())) == K
        quota = ours[: len(want["quota_picks"])]
        for c in range(10):
            mine = Counter(u[quota][labels[quota] == c].tolist())
            official = Counter(u[want["quota_picks"]][labels[want["quota_picks"]] == c].tolist())
            assert mine == official, (name, K, c)
        assert len(ours) - len(quota) == len(want["fill_picks"])
        assert len(want["fill_picks"]) == (7 if K == 100 else 0)  # classes 8 and 9 are under quota at K = 100


def test_tie_breaking_is_deterministic_and_the_official_one_is_not(selection):
    sel, votes, labels = selection
    u = np.asarray(votes["vr"]["uncertainty"], dtype=np.float32)
    a = stride_select(u, labels, 40, range(10), np.random.default_rng(5))
    b = stride_select(u, labels, 40, range(10), np.random.default_rng(5))
    c = stride_select(u, labels, 40, range(10), np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)  # a seeded, reproducible tie order
    for name in SETS:  # the official picks differ between two CPUs' numpy sorts, for every K
        rec = sel["selection"][name]
        for K in rec["per_K"]:
            assert rec["per_K"][K]["quota_picks"] != rec["no_simd"]["per_K"][K]["quota_picks"]


def test_stride_pick_rule():
    assert stride_pick([5, 6, 7], 4).tolist() == [5, 6, 7]  # at most k: all, in the given order
    assert stride_pick(list(range(10)), 3).tolist() == [0, 3, 6]  # j = 10 // 3 = 3
    assert stride_pick(list(range(11)), 2).tolist() == [0, 5]


# ------------------------------------------------------------------ metrics
@pytest.fixture(scope="module")
def records():
    return {r["name"]: r for r in json.loads((FIX / "metrics.json").read_text())["record_sets"]}


def _ours(rec, rule, absent="ignore"):
    """reprozoo's metrics from the official correct counts."""
    counts = np.asarray(rec["correct_counts"], dtype=float)  # (T, E, C)
    T, E, C = counts.shape
    n = rec["n_test_per_class"]
    task_acc, class_acc = [], []
    for t in range(T):
        tested = np.zeros(C)
        tested[rec["classes_in_test_set"][t]] = n
        epoch_acc = [counts[t, e][tested > 0].sum() / tested.sum() for e in range(E)]
        for e in range(E):
            assert epoch_acc[e] == pytest.approx(rec["official_evaluation_per_epoch"][t][e]["avg_acc"], abs=1e-12)
        task_acc.append(task_accuracy(epoch_acc, rule))
        class_acc.append(class_accuracy_from_counts(counts[t, -1], tested))
    major = [range(j * rec["n_cls_a_task"], (j + 1) * rec["n_cls_a_task"]) for j in range(T)]
    return task_acc, np.stack(class_acc), major


@pytest.mark.parametrize("name", ["blurry10_c10", "disjoint_c100"])
@pytest.mark.parametrize("rule,key", [("best", "best_epoch"), ("last", "last_epoch")])
def test_parity_metrics(records, name, rule, key):
    rec = records[name]
    want = rec["metrics"][key]
    task_acc, class_acc, major = _ours(rec, rule)
    assert task_acc == pytest.approx(want["task_acc"], abs=1e-12)
    assert abs(a_last(task_acc) - want["A_last"]) <= 1e-9
    assert abs(a_avg(task_acc) - want["A_avg"]) <= 1e-9
    assert abs(intransigence(rec["joint_acc"], task_acc) - want["I_last"]) <= 1e-9
    assert abs(forgetting(class_acc, major) - want["F_last"]) <= 1e-6
    fm = forgetting_matrix(class_acc, major)
    gold = np.asarray([[np.nan if v is None else v for v in row] for row in want["forget_matrix"]])
    assert np.array_equal(np.isnan(fm), np.isnan(gold))
    assert np.nanmax(np.abs(fm - gold)) <= 1e-6


def test_parity_absent_classes_both_ways(records):
    """Disjoint: classes of later tasks have no test images. Ours keep NaN and skip them (default); the
    official 0 (``absent='zero'``, or the official per-class accuracies) gives the same F_last; a plain
    max over NaN, our former code, gave NaN."""
    rec = records["disjoint_c100"]
    want = rec["metrics"]["best_epoch"]["F_last"]
    _, class_acc, major = _ours(rec, "best")
    assert np.isnan(class_acc[0, 20:]).all() and not np.isnan(class_acc[0, :20]).any()
    assert abs(forgetting(class_acc, major, absent="ignore") - want) <= 1e-6
    assert abs(forgetting(class_acc, major, absent="zero") - want) <= 1e-6
    official_cls_acc = np.asarray(rec["cls_acc_used"], dtype=float)  # float32 correct / (n + 1e-5), 0 if absent
    assert abs(forgetting(official_cls_acc, major, absent="zero") - want) <= 1e-9
    # where a block is partly tested the two rules differ: 0 pulls the block mean down
    partial = np.asarray([[1.0, np.nan], [0.5, 0.5]])
    assert forgetting(partial, [[0, 1]], absent="ignore") == pytest.approx(0.5)
    assert forgetting(partial, [[0, 1]], absent="zero") == pytest.approx(0.0)
    with pytest.raises(ConfigError):
        forgetting(partial, [[0, 1]], absent="nan")


def test_class_accuracy_and_task_accuracy_rules():
    acc = class_accuracy([0, 1, 1, 2], [0, 1, 2, 2], 4)
    assert acc[:3].tolist() == [1.0, 1.0, 0.5] and np.isnan(acc[3])
    assert task_accuracy([0.5, 0.7, 0.6], "last") == 0.6
    assert task_accuracy([0.5, 0.7, 0.6], "best") == 0.7
    assert task_accuracy([-1.0], "best") == 0.0  # official max(0.0, ...)
    with pytest.raises(ConfigError):
        task_accuracy([0.5], "mean")
