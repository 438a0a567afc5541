import numpy as np
import pytest
import torch

from reprozoo.eclips.sampler import UncertaintySampler, bucket_weights
from reprozoo.errors import DataError


def test_bucket_weights_hand_computed():
    np.testing.assert_allclose(bucket_weights([0.3, 0.1, 0.9], eta=0.0), [1 / 3] * 3)
    pi = bucket_weights([0.0, 1.0, 3.0], eta=0.5, gamma=1.0, eps=1e-12)
    np.testing.assert_allclose(pi, [0.5 / 3, 0.5 / 3 + 0.125, 0.5 / 3 + 0.375], atol=1e-9)
    capped = bucket_weights([0.0, 1.0, 3.0], eta=0.5, eps=1e-12, cap=1.2)  # limit 0.4
    excess = 0.5 / 3 + 0.375 - 0.4
    rest = 0.5 / 3 + 0.5 / 3 + 0.125
    np.testing.assert_allclose(capped, [0.5 / 3 + excess * (0.5 / 3) / rest, 0.5 / 3 + 0.125 + excess * (0.5 / 3 + 0.125) / rest,
                                        0.4], atol=1e-9)
    assert capped.sum() == pytest.approx(1.0)


def test_batches_are_bucket_balanced():
    domains = np.array([0] * 10 + [1] * 6)
    labels = np.array([0, 1] * 5 + [1, 1, 0, 0, 0, 1])
    s = UncertaintySampler(domains, labels, n_per_bucket=3)
    g = torch.Generator().manual_seed(0)
    idx, w = s.sample(g)
    assert s.batch_size == 12 and len(idx) == 12 and np.all(w == 1)
    for d in (0, 1):
        for c in (0, 1):
            assert ((domains[idx] == d) & (labels[idx] == c)).sum() == 3


def test_uncertainty_shifts_sampling_inside_buckets():
    domains, labels = np.zeros(20, int), np.array([0] * 10 + [1] * 10)
    s = UncertaintySampler(domains, labels, n_per_bucket=50, eta=1.0, cap=100.0)
    u = np.full(20, 0.01)
    u[3] = 1.0
    s.set_uncertainty(u)
    idx, _ = s.sample(torch.Generator().manual_seed(0))
    assert (idx == 3).sum() > 20  # about 50 * 1.0 / 1.09
    s2 = UncertaintySampler(domains, labels, n_per_bucket=50, eta=0.5, cap=2.0)
    s2.set_uncertainty(u)
    assert s2.pi[(0, 0)].max() == pytest.approx(2.0 / 10)  # capped
    lw = UncertaintySampler(domains, labels, n_per_bucket=4, mode="loss_weight")
    lw.set_uncertainty(u)
    _, w = lw.sample(torch.Generator().manual_seed(0))
    assert w.shape == (8,) and np.all(w > 0)


def test_refresh_scores_a_stratified_subset():
    domains, labels = np.repeat([0, 1], 50), np.tile([0, 1], 50)
    s = UncertaintySampler(domains, labels, subset=20)
    seen = []

    def score(idx):
        seen.append(idx)
        return idx / 100.0

    idx = s.refresh(score, torch.Generator().manual_seed(0))
    assert len(idx) == 20 and len(seen) == 1
    for members in s.buckets.values():
        assert len(np.intersect1d(members, idx)) == 5
    unseen = np.setdiff1d(s.buckets[(0, 0)], idx)
    assert np.allclose(s.u[unseen], 0.0)  # stored raw uncertainties: unscored frames keep 0 ...
    assert len(set(np.round(s.pi[(0, 0)], 12))) > 1  # ... but the weights use the bucket mean for them


def test_bad_inputs():
    with pytest.raises(DataError, match="source domain 1 has no live"):
        UncertaintySampler([0, 0, 1], [0, 1, 0])
    s = UncertaintySampler([0, 0], [0, 1])
    with pytest.raises(DataError, match="finite"):
        s.set_uncertainty([np.nan, 0.1])
