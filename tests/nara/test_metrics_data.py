import math

import pytest
import torch

from reprozoo.errors import DataError
from reprozoo.nara.data import ar_process, digits_sequences, noisy_sines, sequence_task
from reprozoo.nara.metrics import abs_error, hamming, lag1_autocorrelation, mmd_rbf, sample_nll
from reprozoo.nara.predictors import context_change, prefix_mask
from reprozoo.nara.protocol import BernoulliAR


def test_hamming_and_abs_error_hand_cases():
    a = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    b = torch.tensor([[1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
    assert hamming(a, b).tolist() == [2.0, 1.0]
    assert hamming(a, b, start=2).tolist() == [1.0, 1.0]
    mean, mx = abs_error(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, -1.0]]))
    assert mean == pytest.approx(1.25) and mx == pytest.approx(2.0)


def test_mmd_rbf_hand_case():
    x, y = torch.tensor([[0.0]]), torch.tensor([[1.0]])
    assert mmd_rbf(x, y, bandwidth=1.0) == pytest.approx(2 - 2 * math.exp(-0.5))
    z = torch.randn(20, 3)
    assert mmd_rbf(z, z.clone()) == pytest.approx(0.0, abs=1e-12)


def test_lag1_autocorrelation_hand_cases():
    assert lag1_autocorrelation(torch.tensor([[1.0, -1.0, 1.0, -1.0]])) == pytest.approx(-0.75)
    assert lag1_autocorrelation(torch.tensor([[1.0, 2.0, 3.0]])) == pytest.approx(0.0)  # (-1*0 + 0*1) / 2


def test_sample_nll_uniform_model():
    class Zero(torch.nn.Module):
        def forward(self, x):
            return torch.zeros_like(x)

    model = BernoulliAR(Zero(), 6)
    nll = sample_nll(model, torch.ones(2, 6), start=2)
    assert torch.allclose(nll, torch.full((2,), 4 * math.log(2.0)))


def test_masks_and_context_change():
    m = torch.tensor([0, 2])
    assert prefix_mask(m, 4).tolist() == [[0, 0, 0, 0], [1, 1, 0, 0]]
    prev = torch.tensor([[0.0, 0.0, 0.0, 0.0], [9.0, 9.0, 0.0, 0.0]])
    new = torch.tensor([[1.0, 0.0, 0.5, 0.0], [0.0, 0.0, 2.0, 1.0]])
    # D_t sums |change| over m <= s < t; changes inside the confirmed prefix do not count
    assert context_change(prev, new, m).tolist() == [[0.0, 1.0, 1.0, 1.5], [0.0, 0.0, 0.0, 2.0]]


def test_digits_split_and_binary_values():
    train, test = digits_sequences(0)
    assert train.shape == (1500, 64) and test.shape == (297, 64)
    assert set(train.unique().tolist()) == {0.0, 1.0}


def test_sequence_generators():
    a, b = noisy_sines(5, 32, seed=3), noisy_sines(5, 32, seed=3)
    assert a.shape == (5, 32) and torch.equal(a, b)
    assert a.abs().max() < 1.3
    ar = ar_process(200, 64, seed=0)
    assert ar.shape == (200, 64)
    # AR(2) with (1.6, -0.8): theoretical lag-1 autocorrelation 1.6 / (1 + 0.8) = 0.889
    c = ar - ar.mean()
    rho = float((c[:, :-1] * c[:, 1:]).mean() / (c * c).mean())
    assert rho == pytest.approx(0.889, abs=0.05)
    with pytest.raises(DataError, match="explosive"):
        ar_process(2, 16, coeffs=(1.5, 0.5))
    with pytest.raises(DataError, match="unknown sequence kind"):
        sequence_task("walk", 2)
    with pytest.raises(DataError, match="n >= 1"):
        noisy_sines(0)
