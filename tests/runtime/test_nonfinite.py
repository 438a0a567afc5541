"""The shared validators of reprozoo.runtime.checks."""

import math

import numpy as np
import pytest
import torch

from reprozoo.errors import ConfigError, DataError
from reprozoo.runtime import checks


def test_finite_scalars():
    assert checks.finite("t", 0.5) == 0.5 and checks.finite("t", np.float32(2)) == 2.0
    assert checks.finite("t", torch.tensor(0.25)) == 0.25
    for bad, msg in [(math.nan, "t must be a finite number, got nan"), (-math.inf, "t must be a finite number, got -inf"),
                     ("0.5", "t must be a number, got str '0.5'"), (True, "t must be a number, got bool True"),
                     (None, "t must be a number, got NoneType None")]:
        with pytest.raises(ConfigError, match=f"^{msg}$"):
            checks.finite("t", bad)
    with pytest.raises(ConfigError, match=r"^t must be > 0.0, got 0.0$"):
        checks.finite("t", 0.0, lo=0.0, lo_open=True)
    with pytest.raises(ConfigError, match=r"^t must be <= 1.0, got 1.5$"):
        checks.finite("t", 1.5, hi=1.0)


def test_integers():
    assert checks.integer("n", 3) == 3 and checks.integer("n", 3.0) == 3 and checks.integer("n", np.int64(4)) == 4
    for bad, msg in [(2.5, "n must be an integer, got 2.5"), (math.nan, "n must be an integer, got nan"),
                     (False, "n must be an integer, got False")]:
        with pytest.raises(ConfigError, match=f"^{msg}$"):
            checks.integer("n", bad)
    with pytest.raises(ConfigError, match=r"^n must be >= 1, got -5$"):
        checks.integer("n", -5, lo=1)


def test_arrays_and_tensors():
    assert checks.finite_array("x", [1, 2]).dtype == np.float64
    with pytest.raises(DataError, match=r"^x must be finite; index \(1, 0\) is inf \(2 non-finite in all\)$"):
        checks.finite_array("x", [[0.0, 1.0], [math.inf, math.nan]])
    with pytest.raises(DataError, match=r"^x must hold numbers only"):
        checks.finite_array("x", ["a", 1])
    with pytest.raises(DataError, match=r"^x must be 1-dimensional, got shape \(2, 2\)$"):
        checks.finite_array("x", np.zeros((2, 2)), ndim=1)
    with pytest.raises(DataError, match=r"^x is empty$"):
        checks.finite_array("x", [], allow_empty=False)
    with pytest.raises(DataError, match=r"^x must be finite; index 0 is inf"):
        checks.finite_array("x", [1e39], dtype=np.float32)  # overflow of the cast is named, not warned
    t = torch.ones(3)
    assert checks.finite_tensor("t", t) is t
    with pytest.raises(DataError, match=r"^t must be finite; index 1 is nan \(1 non-finite in all\)$"):
        checks.finite_tensor("t", torch.tensor([0.0, math.nan, 1.0]))
    with pytest.raises(DataError, match=r"^t must be a torch tensor, got list$"):
        checks.finite_tensor("t", [1.0])


def test_integer_labels_and_one_line():
    assert checks.integer_labels("y", [0.0, 2.0]).tolist() == [0, 2]
    assert checks.integer_labels("y", torch.tensor([1, 2])).tolist() == [1, 2]
    with pytest.raises(DataError, match=r"^y must be integer labels; index 1 is 1.5$"):
        checks.integer_labels("y", [0, 1.5])
    with pytest.raises(DataError, match=r"^y must be integer labels, got dtype <U1$"):
        checks.integer_labels("y", ["a"])
    with pytest.raises(DataError, match=r"^y must be <= 2; index 1 is 7$"):
        checks.integer_labels("y", [0, 7], hi=2)
    err = RuntimeError("\n  first line\nsecond line")
    assert checks.one_line(err) == "RuntimeError: first line"
    assert checks.one_line(ValueError("x" * 500), limit=20) == "ValueError: " + "x" * 17 + "..."
