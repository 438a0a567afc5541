import math

import pytest
import torch

from reprozoo.errors import ConfigError, DataError
from reprozoo.nara import (
    MADE,
    Bernoulli,
    BernoulliAR,
    Categorical,
    CategoricalAR,
    Gaussian,
    GaussianAR,
    sequence_log_prob,
)
from tests.nara.helpers import BigramCategorical


def test_bernoulli_inverse_cdf_and_log_prob():
    fam = Bernoulli()
    params = torch.tensor([[[0.0], [0.0], [math.log(3.0)]]])  # p = 0.5, 0.5, 0.75
    noise = torch.tensor([[0.49, 0.51, 0.74]])
    assert fam.sample(params, noise).tolist() == [[1.0, 0.0, 1.0]]
    lp = fam.log_prob(torch.tensor([[1.0, 0.0, 0.0]]), params)
    assert torch.allclose(lp, torch.log(torch.tensor([[0.5, 0.5, 0.25]])))


def test_gaussian_reparameterisation_and_log_prob():
    fam = Gaussian()
    params = torch.tensor([[[1.0, math.log(2.0)]]])
    assert fam.sample(params, torch.tensor([[0.5]])).item() == pytest.approx(2.0)
    lp = fam.log_prob(torch.tensor([[3.0]]), params)  # z = 1, sigma = 2
    assert lp.item() == pytest.approx(-0.5 - math.log(2.0) - 0.5 * math.log(2 * math.pi))


def test_categorical_inverse_cdf():
    fam = Categorical(3)
    params = torch.log(torch.tensor([[[0.2, 0.3, 0.5]]])).expand(1, 4, 3)
    noise = torch.tensor([[0.1, 0.25, 0.6, 0.999]])
    assert fam.sample(params, noise).tolist() == [[0.0, 1.0, 2.0, 2.0]]
    with pytest.raises(ConfigError, match="at least 2 classes"):
        Categorical(1)


def test_sequence_log_prob_of_uniform_model_is_n_log_half():
    class Zero(torch.nn.Module):
        def forward(self, x):
            return torch.zeros_like(x)

    model = BernoulliAR(Zero(), 10)
    x = torch.randint(0, 2, (3, 10)).float()
    assert torch.allclose(sequence_log_prob(model, x), torch.full((3,), 10 * math.log(0.5)))
    assert torch.allclose(sequence_log_prob(model, x, start=4), torch.full((3,), 6 * math.log(0.5)))


def test_adapter_checks_shapes_and_length():
    model = BernoulliAR(MADE(8, (16,)), 8)
    with pytest.raises(DataError, match=r"shape \(batch, 8\)"):
        model.conditionals(torch.zeros(2, 7))
    with pytest.raises(DataError, match="length must be >= 1"):
        BernoulliAR(MADE(8, (16,)), 0)
    cat = CategoricalAR(BigramCategorical(3), 5, 3)
    assert cat.conditionals(torch.zeros(2, 5)).shape == (2, 5, 3)
    with pytest.raises(ConfigError, match=r"must return \(batch, 5, 2\) parameters for a gaussian model"):
        GaussianAR(torch.nn.Identity(), 5).conditionals(torch.zeros(2, 5))  # (B, N): no log-sigma
