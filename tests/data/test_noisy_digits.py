import numpy as np
import pytest
import torch

from reprozoo.data.noisy_digits import N_DIGITS, digit_split, noisy_digit_splits, noisy_digits
from reprozoo.errors import DataError


def test_split_is_disjoint_fixed_and_covers_every_digit():
    tr, te = digit_split()
    assert (len(tr), len(te)) == (1438, 359)
    assert not set(tr) & set(te) and len(set(tr) | set(te)) == N_DIGITS
    assert np.array_equal(digit_split()[1], te) and not np.array_equal(digit_split(split_seed=1)[1], te)


def test_images_are_deterministic_and_copies_tile_the_labels():
    idx = np.arange(10)
    x, y = noisy_digits(idx, copies=3, seed=5)
    assert x.shape == (30, 1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert y.tolist() == list(range(10)) * 3  # sklearn's first ten digits are 0..9
    assert torch.equal(x, noisy_digits(idx, copies=3, seed=5)[0])
    assert not torch.equal(x, noisy_digits(idx, copies=3, seed=6)[0])
    assert not torch.equal(x[:10], x[10:20])  # each copy has its own distortion


def test_noise_free_image_is_the_scaled_digit_inside_the_shift_window():
    x, _ = noisy_digits(np.array([0]), copies=20, noise=0.0, contrast=(0.5, 0.5), shift=3, digit_size=20)
    ink = x[:, 0] > 0
    rows = ink.any(2).nonzero()[:, 1]
    cols = ink.any(1).nonzero()[:, 1]
    assert rows.min() >= 6 - 3 and rows.max() < 6 + 3 + 20  # top-left = 6 +- 3, digit 20 px
    assert cols.min() >= 3 and cols.max() < 29
    assert x.max().item() <= 0.5 + 1e-6
    sums = x.sum((1, 2, 3))
    assert torch.allclose(sums, sums[0].expand_as(sums), rtol=1e-5)  # only the position differs


def test_noise_std_and_splits():
    x, _ = noisy_digits(np.arange(50), noise=0.5, seed=0, shift=3)
    corner = x[:, 0, :2, :2]  # the digit starts at row/col >= 3: only noise here
    assert corner.std().item() == pytest.approx(0.5, abs=0.05)
    (xtr, ytr), (xte, yte) = noisy_digit_splits(1, 2)
    assert (len(xtr), len(xte)) == (1438, 718) and torch.bincount(yte).min() > 50


def test_bad_settings_are_refused():
    with pytest.raises(DataError, match="shift"):
        noisy_digits(np.arange(2), shift=7, digit_size=20)
    with pytest.raises(DataError, match="digit_size"):
        noisy_digits(np.arange(2), digit_size=40)
    with pytest.raises(DataError, match="indices"):
        noisy_digits(np.array([N_DIGITS]))
    with pytest.raises(DataError, match="contrast"):
        noisy_digits(np.arange(2), contrast=(0.0, 1.0))
