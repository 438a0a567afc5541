"""Rainbow scenarios and metrics refuse float labels, NaN settings and non-finite accuracies."""

import math

import numpy as np
import pytest

from reprozoo.errors import ConfigError, DataError
from reprozoo.rainbow import metrics as M
from reprozoo.rainbow.scenarios import blurry_split, check_partition, scenario_from_tasks


def test_blurry_split_refuses_float_labels_and_bad_settings():
    with pytest.raises(DataError, match=r"^labels must be integer labels; index 0 is 0.5$"):
        blurry_split([0.5, 1.0, 2.0, 3.0], 2)  # used to truncate 0.5 to class 0 silently
    with pytest.raises(DataError, match=r"^labels must be integer labels; index 2 is nan$"):
        blurry_split([0, 1, math.nan, 3], 2)
    with pytest.raises(ConfigError, match=r"^blur must be a finite number, got nan$"):
        blurry_split([0, 1, 2, 3], 2, blur=math.nan)
    with pytest.raises(ConfigError, match=r"^seed must be >= 0, got -1$"):
        blurry_split([0, 1, 2, 3], 2, seed=-1)  # used to be a numpy traceback
    with pytest.raises(ConfigError, match=r"^n_tasks must be an integer, got 2.5$"):
        blurry_split([0, 1, 2, 3], 2.5)
    with pytest.raises(DataError, match=r"^class_order must be >= 0"):
        blurry_split([0, 1], 1, class_order=[-1, 0])
    labels = [0.0, 1.0, 2.0, 3.0] * 3  # integral floats are class ids
    s = blurry_split(labels, 2)
    check_partition(s, 12)
    assert s.num_classes == 4


def test_scenario_from_tasks_checks_ids():
    with pytest.raises(DataError, match=r"^tasks\[0\] must be <= 3; index 1 is 9$"):
        scenario_from_tasks([0, 1, 0, 1], [[0, 9]], [[0, 1]], 2)
    with pytest.raises(DataError, match=r"^labels must be <= 1; index 2 is 5$"):
        scenario_from_tasks([0, 1, 5, 1], [[0, 1]], [[0, 1]], 2)


def test_metrics_refuse_non_finite_numbers():
    with pytest.raises(DataError, match=r"^task_acc must be finite; index 1 is nan"):
        M.a_avg([0.5, math.nan])
    with pytest.raises(DataError, match=r"^task_acc must be finite; index 0 is inf"):
        M.a_last([math.inf])
    with pytest.raises(DataError, match=r"^task_acc is empty$"):
        M.a_last([])
    with pytest.raises(ConfigError, match=r"^joint_acc must be a finite number, got nan$"):
        M.intransigence(math.nan, [0.5])
    with pytest.raises(DataError, match=r"^epoch_acc must be finite"):
        M.task_accuracy([0.2, math.nan], rule="best")  # max() with NaN depends on the order
    with pytest.raises(DataError, match=r"^target must be integer labels; index 0 is 0.5$"):
        M.class_accuracy([0, 1], [0.5, 1], 2)
    with pytest.raises(DataError, match=r"^target must be <= 1; index 1 is 2$"):
        M.class_accuracy([0, 1], [0, 2], 2)
    with pytest.raises(DataError, match="0 <= correct <= total"):
        M.class_accuracy_from_counts([3, 1], [2, 1])
    with pytest.raises(DataError, match="with inf"):
        M.forgetting(np.array([[0.5, math.inf]]), [[0], [1]])
    assert np.allclose(M.class_accuracy([0, 1, 1, 5], [0, 1, 0, 1], 2), [0.5, 0.5])
    f = M.forgetting(np.array([[1.0, np.nan], [0.5, 0.8]]), [[0], [1]])  # NaN = untested class, allowed
    assert f == pytest.approx(0.5)
