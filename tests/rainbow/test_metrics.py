import numpy as np
import pytest

from reprozoo.rainbow.metrics import (
    a_avg,
    a_last,
    forgetting,
    intransigence,
    intransigence_per_task,
    summarize,
    task_block_accuracy,
)

# 3 tasks x 2 classes; row k = per-class accuracy after task k
CLASS_ACC = np.array([
    [0.9, 0.7, 0.1, 0.0, 0.0, 0.0],
    [0.6, 0.4, 0.8, 1.0, 0.2, 0.0],
    [0.5, 0.5, 0.4, 0.6, 0.9, 0.7],
])
MAJOR = [[0, 1], [2, 3], [4, 5]]


def test_block_accuracy_and_forgetting_by_hand():
    a = task_block_accuracy(CLASS_ACC, MAJOR)
    assert np.allclose(a, [[0.8, 0.05, 0.0], [0.5, 0.9, 0.1], [0.5, 0.5, 0.8]])
    # f_0 = max(0.8, 0.5) - 0.5 = 0.3; f_1 = max(0.05, 0.9) - 0.5 = 0.4; mean 0.35
    assert forgetting(CLASS_ACC, MAJOR) == pytest.approx(0.35)
    assert forgetting(CLASS_ACC[:1], MAJOR) == 0.0


def test_accuracy_metrics_by_hand():
    task_acc = [0.4, 0.55, 0.61]
    assert a_last(task_acc) == 0.61
    assert a_avg(task_acc) == pytest.approx(0.52)
    assert intransigence(0.9, task_acc) == pytest.approx(0.29)
    assert intransigence_per_task([0.9, 0.8, 0.85], task_block_accuracy(CLASS_ACC, MAJOR)) == pytest.approx(
        ((0.9 - 0.8) + (0.8 - 0.9) + (0.85 - 0.8)) / 3)
    out = summarize(task_acc, CLASS_ACC, MAJOR, joint_acc=0.9)
    assert out == pytest.approx({"A_last": 0.61, "A_avg": 0.52, "F_last": 0.35, "I_last": 0.29})


def test_nan_classes_are_ignored_in_blocks():
    acc = np.array([[1.0, np.nan], [0.5, np.nan]])
    assert forgetting(acc, [[0, 1]]) == 0.5
    assert task_block_accuracy(acc, [[0, 1]]).ravel().tolist() == [1.0, 0.5]
