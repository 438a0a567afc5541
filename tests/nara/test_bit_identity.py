"""The optimised sampling loop and confidence scoring give the same bits as the frozen originals
(tests/nara/reference.py): every sample, every call count, every iteration count."""

import pytest
import torch

from reprozoo.nara import (
    CategoricalAR,
    LocalConfidence,
    PriorPredictor,
    draw_noise,
    nara_causal_conv,
    nara_made,
    sample,
)
from tests.nara.helpers import BigramCategorical, ConstantConfidence
from tests.nara.reference import reference_local_logits, reference_parallel


def _made(seed, length=32):
    torch.manual_seed(seed)
    model = nara_made(length, (48, 48)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.5)
    return model


def _conv(seed, length=32):
    torch.manual_seed(seed)
    model = nara_causal_conv(length, channels=12, dilations=(1, 2, 4)).eval()
    with torch.no_grad():
        model.net.head.weight.mul_(0.3)
        model.net.head.bias.copy_(torch.tensor([0.0, -2.0]))
    return model


def _helpers(model, seed, bias):
    torch.manual_seed(seed + 100)
    prior = PriorPredictor(model.length, model.family, (16,)).eval()
    conf = LocalConfidence(model.length, model.family, (8,)).eval()
    with torch.no_grad():
        conf.net[-1].bias.fill_(bias)
    return prior, conf


def _same(a, b):
    assert torch.equal(a.x, b.x)
    assert torch.equal(a.calls, b.calls)
    assert (a.iterations, a.prior_calls, a.confidence_calls) == (b.iterations, b.prior_calls, b.confidence_calls)


CASES = [  # (model kind, batch, context length)
    ("made", 1, 0), ("made", 13, 0), ("made", 40, 5), ("conv", 1, 8), ("conv", 17, 8), ("cat", 9, 0)]


@pytest.mark.parametrize("kind,batch,ctx_len", CASES)
def test_every_sampler_matches_the_frozen_loop_bit_for_bit(kind, batch, ctx_len):
    model = {"made": _made, "conv": _conv}.get(kind, lambda s: CategoricalAR(BigramCategorical(4, s), 24, 4))(1)
    n = model.length
    g = torch.Generator().manual_seed(batch)
    noise = draw_noise(model, batch, g)
    ctx = torch.randn(batch, ctx_len, generator=g) if kind == "conv" else \
        torch.randint(0, 2, (batch, ctx_len), generator=g).float()
    ctx = ctx if ctx_len else None
    prior, conf = _helpers(model, batch, 1.0)
    settings = [dict(), dict(prior=prior), dict(tol=0.05), dict(compact=False, prior=prior)]
    for tau in (0.95, 0.6):
        settings += [dict(prior=prior, confidence=conf, threshold=tau),
                     dict(prior=prior, confidence=conf, threshold=tau, window=0),
                     dict(prior=prior, confidence=conf, threshold=tau, window=4, compact=False),
                     dict(confidence=conf, threshold=tau, rejected="reprior", prior=prior),
                     dict(confidence=ConstantConfidence(0.3), threshold=tau)]
    for kw in settings:
        ours = sample(model, "nara" if "confidence" in kw else "jacobi" if not kw.get("tol") else "tolerance",
                      noise=noise, context=ctx, **kw)
        _same(ours, reference_parallel(model, noise=noise, context=ctx, **kw))
        assert ours.calls.max() <= n - (ctx_len or 0)
        assert not ours.x.is_inference() and not ours.calls.is_inference()


def test_band_scoring_matches_the_frozen_scoring():
    for model in (_made(2), _conv(2)):
        n, fam = model.length, model.family
        _, conf = _helpers(model, 3, 0.5)
        g = torch.Generator().manual_seed(4)
        x_prev = torch.randn(6, n, generator=g)
        x_new = x_prev + (torch.rand(6, n, generator=g) < 0.3) * torch.randn(6, n, generator=g)
        params = torch.randn(6, n, fam.param_size, generator=g)
        m = torch.randint(0, n - 1, (6,), generator=g)
        code = fam.noise_code(fam.draw_noise((6, n), generator=g))
        idx = (m[:, None] + 1 + torch.arange(7)[None, :]).clamp_max(n - 1)
        for index in (None, idx):
            assert torch.equal(conf(x_prev, x_new, params, m, code=code, index=index),
                               reference_local_logits(conf, x_prev, x_new, params, m, code=code, index=index))


def test_samples_can_enter_autograd_afterwards():
    model = _made(3, 16)
    res = sample(model, "jacobi", batch=4, generator=torch.Generator().manual_seed(0))
    w = torch.ones(16, requires_grad=True)
    (res.x * w).sum().backward()  # an inference tensor would refuse this
    assert w.grad is not None
