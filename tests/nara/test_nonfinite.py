"""Non-finite noise, contexts and model outputs are refused by every NARA sampler."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reprozoo import nara
from reprozoo.errors import ConfigError, DataError

METHODS = ["sequential", "jacobi", "tolerance"]


class CumGauss(nn.Module):
    """Causal Gaussian AR: mu_t = scale * sum_{s<t} x_s, log_sigma = 0."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        mu = self.scale * F.pad(x, (1, 0))[:, :-1].cumsum(1)
        return torch.stack([mu, torch.zeros_like(mu)], -1)


class NanLogitAt3(nn.Module):
    def forward(self, x):
        out = torch.zeros(x.shape[0], x.shape[1], 1)
        out[:, 3] = math.nan
        return out


def _sample(model, method, **kw):
    kw.setdefault("generator", torch.Generator().manual_seed(0))
    if method == "tolerance":
        kw["tol"] = 0.1
    return nara.sample(model, method, **kw)


@pytest.mark.parametrize("method", METHODS)
def test_overflowing_gaussian_is_refused(method):
    # sequential used to return inf/NaN samples, the parallel samplers "failed to make progress"
    with pytest.raises(DataError, match=r"^model.conditionals returned non-finite parameters \(NaN or inf\)"):
        _sample(nara.GaussianAR(CumGauss(1e30), 8), method, batch=2)


@pytest.mark.parametrize("method", METHODS)
def test_nan_logits_are_not_silent_zeros(method):
    with pytest.raises(DataError, match="non-finite parameters"):
        _sample(nara.BernoulliAR(NanLogitAt3(), 8), method, batch=2)


@pytest.mark.parametrize("method", METHODS)
def test_noise_and_context_checked(method):
    model = nara.GaussianAR(CumGauss(0.5), 8)
    noise = torch.zeros(1, 8)
    noise[0, 1] = math.nan
    with pytest.raises(DataError, match=r"^noise must be finite; index \(0, 1\) is nan \(1 non-finite in all\)$"):
        _sample(model, method, noise=noise)
    with pytest.raises(DataError, match=r"^context must be finite; index \(0, 0\) is inf"):
        _sample(model, method, context=torch.tensor([[math.inf, 1.0]]))
    with pytest.raises(DataError, match=r"^noise of the bernoulli family must be uniform draws in \[0, 1\]"):
        _sample(nara.BernoulliAR(NanLogitAt3(), 8), method, noise=torch.full((1, 8), 5.0))


def test_settings_checked_and_finite_models_still_agree():
    model = nara.GaussianAR(CumGauss(0.5), 8)
    with pytest.raises(ConfigError, match=r"^tol must be a finite number, got nan$"):
        nara.sample_parallel(model, batch=2, tol=math.nan)
    with pytest.raises(ConfigError, match=r"^window must be an integer, got 2.5$"):
        nara.sample_parallel(model, batch=2, window=2.5)
    noise = nara.draw_noise(model, 3, torch.Generator().manual_seed(1))
    seq = nara.sample(model, "sequential", noise=noise)
    jac = nara.sample(model, "jacobi", noise=noise, compact=False)
    assert torch.isfinite(seq.x).all() and torch.equal(seq.x, jac.x)


def test_sample_metrics_refuse_non_finite_samples():
    from reprozoo.nara.metrics import abs_error, hamming, lag1_autocorrelation, mmd_rbf

    a, b = torch.zeros(2, 4), torch.ones(2, 4)
    b[1, 2] = math.inf
    with pytest.raises(DataError, match=r"^b must be finite; index \(1, 2\) is inf"):
        abs_error(a, b)
    with pytest.raises(DataError, match=r"^start must be in 0..3, got 7$"):
        hamming(a, a, start=7)
    with pytest.raises(DataError, match=r"^y must be finite"):
        mmd_rbf(a, b)
    with pytest.raises(ConfigError, match=r"^bandwidth must be > 0.0, got 0.0$"):
        mmd_rbf(a, a, bandwidth=0)
    with pytest.raises(DataError, match=r"^x must be finite"):
        lag1_autocorrelation(b.T.contiguous().T * math.nan)
    assert mmd_rbf(a, a) == pytest.approx(0.0) and abs_error(a, torch.ones(2, 4)) == (1.0, 1.0)
