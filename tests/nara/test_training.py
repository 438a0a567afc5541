import torch

from reprozoo.nara import (
    ConfidencePredictor,
    FitConfig,
    LocalConfidence,
    PriorPredictor,
    confidence_states,
    fit_confidence,
    fit_mother,
    fit_prior,
    nara_made,
    sample,
)
from reprozoo.nara.data import digits_sequences
from reprozoo.nara.metrics import sample_nll
from reprozoo.nara.training import confidence_step


def test_mother_prior_and_confidence_training_on_digits():
    torch.manual_seed(0)
    train, test = digits_sequences(0)
    model = nara_made(64, (64,))
    before = float(sample_nll(model, test).mean())
    fit_mother(model, train, FitConfig(epochs=4, batch_size=100, lr=3e-3))
    after = float(sample_nll(model, test).mean())
    assert before > 40 and after < 0.8 * before  # 64*log2 = 44.4 nats at init

    prior = PriorPredictor(64, model.family, (64,))

    def prior_nll():  # held-out NLL per position of the unconditional prior (m = 0)
        with torch.no_grad():
            return float(-prior.family.log_prob(test, prior(test, torch.zeros(len(test), dtype=torch.long))).mean())

    prior_before = prior_nll()
    hist = fit_prior(prior, train, FitConfig(epochs=2, batch_size=100))
    assert len(hist) == 2 and hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert prior_nll() < prior_before  # training lowers the held-out NLL
    x = test[:4].clone()
    m = torch.tensor([0, 10, 40, 63])
    noise = torch.rand(4, 64)
    prop = prior.propose(x, m, noise)
    for i in range(4):  # the confirmed prefix is kept, the rest is a fresh draw
        assert torch.equal(prop[i, : m[i]], x[i, : m[i]])

    states = confidence_states(model, prior, 96, sweeps=2, generator=torch.Generator().manual_seed(0))
    x_prev, x_new, params, mm, code, label, weight = states.tensors
    assert code.shape == (96, 64) and torch.isfinite(code).all()  # logit of the shared uniform noise
    assert x_prev.shape == (96, 64) and params.shape == (96, 64, 1) and mm.shape == (96,)
    pos = torch.arange(64)[None]
    assert weight[pos <= mm[:, None]].sum() == 0  # only positions after the boundary are trained
    assert torch.equal(x_new[pos < mm[:, None]], x_prev[pos < mm[:, None]])
    # the position at the boundary has an exact context: always matches the sequential sample
    assert label[torch.arange(96), mm.clamp_max(63)].eq(1).all()
    assert 0.0 < states.positive_rate < 1.0

    for conf in (ConfidencePredictor(64, model.family, (32,)), LocalConfidence(64, model.family, (8,))):
        with torch.no_grad():
            bce_before = float(confidence_step(conf, states.tensors)["loss"])
        fit_confidence(conf, states, FitConfig(epochs=2, batch_size=32))
        with torch.no_grad():
            bce_after = float(confidence_step(conf, states.tensors)["loss"])
        assert bce_after < bce_before  # the weighted BCE on the states goes down
        res = sample(model, "nara", batch=8, prior=prior, confidence=conf, threshold=0.9,
                     generator=torch.Generator().manual_seed(0))
        assert res.calls.max() <= 64 and res.confidence_calls == res.iterations


def test_prior_distillation_option_and_bad_value():
    import pytest

    from reprozoo.errors import ConfigError
    from reprozoo.nara.tasks import TaskConfig, build_task

    cfg = TaskConfig(kind="sine", n_train=32, n_test=8, length=12, observed=4, channels=4, dilations=(1,),
                     prior_hidden=(8,), confidence_hidden=(8,), confidence_states=16, prior_targets="mother",
                     mother=FitConfig(epochs=1), prior=FitConfig(epochs=1), confidence=FitConfig(epochs=1))
    task = build_task(cfg)
    assert task.start == 4 and task.context(3).shape == (3, 4)
    assert torch.equal(task.context(3), task.test[:3, :4])
    cfg.prior_targets = "labels"
    with pytest.raises(ConfigError, match="prior_targets must be"):
        build_task(cfg)
