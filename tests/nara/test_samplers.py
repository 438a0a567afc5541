import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reprozoo.errors import ConfigError, DataError
from reprozoo.nara import (
    BernoulliAR,
    CategoricalAR,
    PriorPredictor,
    draw_noise,
    nara_causal_conv,
    nara_made,
    sample,
)
from tests.nara.helpers import AlternatingNet, BigramCategorical, ConstantConfidence


def _sharp_made(seed=0, length=64):
    torch.manual_seed(seed)
    model = nara_made(length, (64, 64)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # strong dependencies: Jacobi needs many calls
    return model


def _gaussian_conv(seed=0):
    torch.manual_seed(seed)
    model = nara_causal_conv(32, channels=16, dilations=(1, 2, 4)).eval()
    with torch.no_grad():
        model.net.head.weight.mul_(0.2)
        model.net.head.bias.copy_(torch.tensor([0.0, -2.5]))
    return model


def test_exact_jacobi_is_bit_identical_to_sequential_discrete():
    model = _sharp_made()
    noise = draw_noise(model, 32, torch.Generator().manual_seed(0))
    seq = sample(model, "sequential", noise=noise)
    jac = sample(model, "jacobi", noise=noise)
    assert torch.equal(seq.x, jac.x)
    assert seq.calls.tolist() == [64] * 32 and seq.iterations == 64
    assert 1 <= jac.calls.min() and jac.calls.max() <= 64
    assert jac.iterations == int(jac.calls.max())
    assert jac.mean_calls < 64  # the fixed point is reached early
    prior = PriorPredictor(64, model.family, (16,)).eval()
    jp = sample(model, "jacobi", noise=noise, prior=prior)
    assert torch.equal(seq.x, jp.x) and jp.prior_calls == 1
    fixed = sample(model, "jacobi", noise=noise, compact=False)  # finished samples stay in the batch
    assert torch.equal(fixed.x, seq.x) and torch.equal(fixed.calls, jac.calls) and fixed.iterations == jac.iterations


def test_exact_jacobi_is_bit_identical_to_sequential_continuous_with_prefix():
    model = _gaussian_conv()
    noise = draw_noise(model, 8, torch.Generator().manual_seed(1))
    ctx = torch.randn(8, 10, generator=torch.Generator().manual_seed(2))
    seq = sample(model, "sequential", noise=noise, context=ctx)
    jac = sample(model, "jacobi", noise=noise, context=ctx, compact=False)  # fixed batch shape: same kernels
    assert torch.equal(seq.x, jac.x)
    assert torch.equal(seq.x[:, :10], ctx)
    assert seq.calls.tolist() == [22] * 8 and jac.calls.max() <= 22
    compact = sample(model, "jacobi", noise=noise, context=ctx, compact=True)
    assert torch.allclose(compact.x, seq.x, atol=1e-5) and torch.equal(compact.calls, jac.calls)
    tol = sample(model, "tolerance", noise=noise, context=ctx, tol=1e-3)
    assert tol.mean_calls <= jac.mean_calls
    assert (tol.x - seq.x).abs().max() < 0.1


def test_categorical_exact_jacobi():
    model = CategoricalAR(BigramCategorical(4), 20, 4)
    noise = draw_noise(model, 16, torch.Generator().manual_seed(3))
    seq = sample(model, "sequential", noise=noise)
    jac = sample(model, "jacobi", noise=noise, check_causal=True)
    assert torch.equal(seq.x, jac.x)
    assert set(seq.x.unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}


def test_worst_case_nara_equals_sequential_in_calls_and_output():
    model = BernoulliAR(AlternatingNet(), 12)
    noise = draw_noise(model, 3, torch.Generator().manual_seed(0))
    seq = sample(model, "sequential", noise=noise)
    assert seq.x[0].tolist() == [1.0, 0.0] * 6
    never = ConstantConfidence(-50.0)
    res = sample(model, "nara", noise=noise, confidence=never, threshold=1.0)
    assert res.calls.tolist() == [12, 12, 12]  # one position per call: exactly sequential, never more
    assert res.iterations == 12 and res.confidence_calls == 12
    assert torch.equal(res.x, seq.x)
    jac = sample(model, "jacobi", noise=noise)
    assert jac.calls.tolist() == [12, 12, 12] and torch.equal(jac.x, seq.x)
    # an over-confident predictor accepts everything in one call: fast and wrong (approximate mode)
    always = sample(model, "nara", noise=noise, confidence=ConstantConfidence(50.0), threshold=0.5)
    assert always.calls.tolist() == [1, 1, 1]
    assert always.x[0].tolist() == [1.0] * 12


def test_per_sample_convergence_matches_running_each_sample_alone():
    model = _sharp_made(1)
    noise = draw_noise(model, 6, torch.Generator().manual_seed(4))
    batch = sample(model, "jacobi", noise=noise)
    alone = [int(sample(model, "jacobi", noise=noise[i:i + 1]).calls[0]) for i in range(6)]
    assert batch.calls.tolist() == alone
    assert len(set(alone)) > 1  # samples really do finish at different times
    assert batch.iterations == max(alone)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), prefix=st.integers(0, 15), tau=st.floats(0.01, 1.0))
def test_parallel_samplers_never_need_more_calls_than_sequential(seed, prefix, tau):
    torch.manual_seed(seed)
    model = nara_made(16, (24,))
    g = torch.Generator().manual_seed(seed)
    noise = draw_noise(model, 4, g)
    ctx = torch.randint(0, 2, (4, prefix), generator=g).float()
    conf = ConstantConfidence(float(torch.randn(1, generator=g)) * 3)
    seq = sample(model, "sequential", noise=noise, context=ctx)
    for method in ("jacobi", "nara"):
        res = sample(model, method, noise=noise, context=ctx, confidence=conf, threshold=tau)
        assert res.calls.max() <= 16 - prefix and res.calls.min() >= (1 if prefix < 16 else 0)
        assert torch.equal(res.x[:, :prefix], ctx)  # the observed prefix never changes
        if method == "jacobi":
            assert torch.equal(res.x, seq.x)


def test_prefix_never_changes_with_reprior_and_speedup_property():
    model = _sharp_made(2, 16)
    prior = PriorPredictor(16, model.family, (8,)).eval()
    noise = draw_noise(model, 5, torch.Generator().manual_seed(5))
    ctx = torch.ones(5, 6)
    res = sample(model, "nara", noise=noise, context=ctx, prior=prior, confidence=ConstantConfidence(-9.0),
                 threshold=0.9, rejected="reprior")
    assert torch.equal(res.x[:, :6], ctx)
    assert res.prior_calls >= 1
    assert res.speedup == pytest.approx(10 / res.mean_calls)
    seq = sample(model, "sequential", noise=noise, context=ctx)
    assert torch.equal(res.x, seq.x)  # a never-confident C keeps NARA exact


def test_bad_inputs_raise_clear_errors():
    model = nara_made(8, (8,))
    conf = ConstantConfidence(0.0)
    for bad in (0.0, -0.1, 1.01, 2.0):
        with pytest.raises(ConfigError, match=r"threshold must lie in \(0, 1\]"):
            sample(model, "nara", batch=2, confidence=conf, threshold=bad)
    sample(model, "nara", batch=2, confidence=conf, threshold=1.0)  # 1 is allowed
    with pytest.raises(ConfigError, match="needs a trained confidence predictor"):
        sample(model, "nara", batch=2)
    with pytest.raises(ConfigError, match="unknown sampling method 'greedy'"):
        sample(model, "greedy", batch=2)
    with pytest.raises(DataError, match="context has 9 positions"):
        sample(model, "jacobi", context=torch.zeros(2, 9))
    with pytest.raises(ConfigError, match=r"noise must have shape \(2, 8\)"):
        sample(model, "jacobi", batch=2, noise=torch.zeros(2, 7))
    with pytest.raises(ConfigError, match="reprior' needs a prior"):
        sample(model, "nara", batch=2, confidence=conf, rejected="reprior")

    class Empty:
        length = 0
        family = model.family

        def conditionals(self, x):
            return x

    with pytest.raises(DataError, match="sequences of length >= 1"):
        sample(Empty(), "sequential", batch=1)


def test_full_context_needs_no_calls():
    model = nara_made(8, (8,))
    ctx = torch.ones(2, 8)
    res = sample(model, "jacobi", context=ctx)
    assert res.calls.tolist() == [0, 0] and torch.equal(res.x, ctx)


def test_confidence_band_gives_the_same_samples_as_scoring_every_position():
    from reprozoo.nara import LocalConfidence

    model = _sharp_made(3)
    torch.manual_seed(3)
    conf = LocalConfidence(64, model.family, (8,)).eval()
    with torch.no_grad():
        conf.net[-1].bias.fill_(1.5)  # accepts a fair share of positions
    prior = PriorPredictor(64, model.family, (16,)).eval()
    noise = draw_noise(model, 16, torch.Generator().manual_seed(6))
    full = sample(model, "nara", noise=noise, prior=prior, confidence=conf, threshold=0.7, window=0)
    band = sample(model, "nara", noise=noise, prior=prior, confidence=conf, threshold=0.7, window=64)
    assert torch.equal(full.x, band.x) and torch.equal(full.calls, band.calls)
    narrow = sample(model, "nara", noise=noise, prior=prior, confidence=conf, threshold=0.7, window=2)
    assert narrow.mean_calls >= band.mean_calls  # a narrow band can only accept less per call
    jac = sample(model, "jacobi", noise=noise, prior=prior)
    assert band.mean_calls < jac.mean_calls


def test_local_confidence_inputs_on_a_hand_made_state():
    from reprozoo.nara import LocalConfidence, step_change

    model = nara_made(6, (8,))
    conf = LocalConfidence(6, model.family, (4,), window=2)
    x_prev = torch.tensor([[1.0, 0, 0, 1, 0, 0]])
    x_new = torch.tensor([[1.0, 0, 1, 1, 1, 0]])
    change, d = step_change(x_prev, x_new)
    assert change.tolist() == [[0, 0, 1, 0, 1, 0]] and d.tolist() == [[0, 0, 0, 1, 1, 2]]
    params = torch.zeros(1, 6, 1)  # p = 0.5 everywhere
    u = torch.full((1, 6), 0.5)
    inp = conf.inputs(x_prev, x_new, params, torch.tensor([2]), code=model.family.noise_code(u))
    assert inp.shape == (1, 6, 6)
    assert torch.allclose(inp[0, :, 0], torch.full((6,), 0.5))  # p
    assert torch.allclose(inp[0, :, 1], torch.zeros(6), atol=1e-6)  # logit(u) - logit(p) = 0
    log2 = torch.log1p(torch.tensor(1.0))
    assert torch.allclose(inp[0, :, 2], change[0] * log2)  # own change
    assert torch.allclose(inp[0, :, 3], torch.log1p(d[0]))  # D_t
    # change over the last 2 positions: D_t - D_{t-2} = [0, 0, 0, 1, 1, 1]
    assert torch.allclose(inp[0, :, 4], torch.tensor([0, 0, 0, 1.0, 1, 1]) * log2)
    assert torch.allclose(inp[0, :, 5], (torch.arange(6) - 2) / 6.0)
    idx = torch.tensor([[3, 5]])
    band = conf.inputs(x_prev, x_new, params, torch.tensor([2]), code=model.family.noise_code(u), index=idx)
    assert torch.allclose(band[0], inp[0, [3, 5]])
