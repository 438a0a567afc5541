import numpy as np
import pytest
import torch

from reprozoo.data.dot_patterns import CLASSES, PATTERNS, dot_pattern_splits, dot_patterns
from reprozoo.errors import DataError


def test_seeded_balanced_and_shaped():
    x, y = dot_patterns(50, seed=3)
    x2, y2 = dot_patterns(50, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert x.shape == (50, 1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.bincount(y, minlength=10).tolist() == [5] * 10
    assert not torch.equal(dot_patterns(50, seed=4)[0], x)
    assert len(CLASSES) == 10 and all(len(set(c)) == 4 for c in PATTERNS.values())
    assert len({tuple(sorted(c)) for c in PATTERNS.values()}) == 10


def test_four_equal_dots_in_the_class_arrangement():
    x, y = dot_patterns(40, seed=0, noise=0.0, jitter=0, spacing=(5, 5), contrast=(0.8, 0.8))
    for img, label in zip(x[:, 0].numpy(), y.numpy()):
        assert np.isclose(img.sum(), 4 * 4 * 0.8)  # four 2x2 dots of contrast 0.8, nothing else
        rows, cols = np.nonzero(img)
        cells = {((r - rows.min()) // 5, (c - cols.min()) // 5) for r, c in zip(rows, cols)}
        ref = np.asarray(PATTERNS[CLASSES[label]])
        assert cells == {(r - ref[:, 0].min(), c - ref[:, 1].min()) for r, c in ref}


def test_splits_are_disjoint_streams_and_bad_values_fail():
    (xa, _), (xb, _) = dot_pattern_splits(20, 20, seed=0)
    assert not torch.equal(xa, xb)
    with pytest.raises(DataError, match="spans"):
        dot_patterns(5, spacing=(5, 12))
    with pytest.raises(DataError, match="overlap"):
        dot_patterns(5, spacing=(3, 4), jitter=1)
    with pytest.raises(DataError, match="contrast"):
        dot_patterns(5, contrast=(0.0, 1.0))
