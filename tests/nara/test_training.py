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


def test_fit_config_defaults_to_auto_read_by_the_runtime_resolver():
    import pytest

    from reprozoo.errors import ConfigError

    assert FitConfig().device == "auto"
    data = (torch.rand(20, 8, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    with pytest.raises(ConfigError, match="device must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"):
        fit_mother(nara_made(8, (8,)), data, FitConfig(epochs=1, batch_size=10, device="gpu"))


# ------------------------------------------------------------------ out_dir and resume
def _bits(n=60, length=8, seed=0):
    return (torch.rand(n, length, generator=torch.Generator().manual_seed(seed)) < 0.4).float()


def _mother():
    torch.manual_seed(0)
    return nara_made(8, (16,))


def test_an_interrupted_fit_resumes_bit_for_bit_and_epochs_may_grow(tmp_path, trainer_epochs):
    import pytest


    fit = FitConfig(epochs=3, batch_size=16, lr=1e-2, seed=4)
    straight = _mother()
    full = fit_mother(straight, _bits(), fit, out_dir=tmp_path / "a")
    trainer_epochs(stop_at=2)  # interrupted in the third epoch
    with pytest.raises(KeyboardInterrupt):
        fit_mother(_mother(), _bits(), fit, out_dir=tmp_path / "b")
    trainer_epochs()  # no more interruptions
    resumed = _mother()
    torch.manual_seed(999)  # another global RNG state: the checkpoint restores the run's
    again = fit_mother(resumed, _bits(), fit, out_dir=tmp_path / "b", resume=True)
    assert again == full and len(full) == 3
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))
    # a run of 2 epochs continued to 3 (no schedule depends on the number of epochs) is the 3-epoch run
    short = _mother()
    fit_mother(short, _bits(), FitConfig(epochs=2, batch_size=16, lr=1e-2, seed=4), out_dir=tmp_path / "c")
    longer = fit_mother(short, _bits(), fit, out_dir=tmp_path / "c", resume=True)
    assert longer == full
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), short.state_dict().values()))


def test_without_resume_an_out_dir_with_a_checkpoint_is_refused_and_left_as_it_was(tmp_path):
    import pytest

    from reprozoo.errors import ConfigError, OutputExistsError

    fit = FitConfig(epochs=1, batch_size=16, seed=1)
    fit_mother(_mother(), _bits(), fit, out_dir=tmp_path / "run")
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    before = last.read_bytes()
    with pytest.raises(OutputExistsError, match=r"already holds a training run \(checkpoints/last.pt\); pass "
                                                r"resume=True to continue it, or a new out_dir$") as info:
        fit_mother(_mother(), _bits(), fit, out_dir=tmp_path / "run")
    assert "\n" not in str(info.value) and last.read_bytes() == before
    with pytest.raises(ConfigError, match="resume=True needs the out_dir"):
        fit_mother(_mother(), _bits(), fit, resume=True)
    # resume=True on a folder without a checkpoint starts the run
    assert len(fit_mother(_mother(), _bits(), fit, out_dir=tmp_path / "fresh", resume=True)) == 1


def test_resume_with_a_changed_setting_names_it(tmp_path):
    import pytest

    from reprozoo.errors import ConfigError

    fit = FitConfig(epochs=1, batch_size=16, lr=1e-2, seed=1)
    run = tmp_path / "run"
    fit_mother(_mother(), _bits(), fit, out_dir=run)
    changes = [
        (lambda: fit_mother(_mother(), _bits(), FitConfig(epochs=1, batch_size=16, lr=3e-2, seed=1), out_dir=run,
                            resume=True), "lr"),
        (lambda: fit_mother(_mother(), _bits(), FitConfig(epochs=1, batch_size=8, lr=1e-2, seed=1), out_dir=run,
                            resume=True), "batch_size"),
        (lambda: fit_mother(_mother(), _bits(seed=5), fit, out_dir=run, resume=True), "data"),
        (lambda: fit_mother(nara_made(8, (12,)), _bits(), fit, out_dir=run, resume=True), "model"),
        (lambda: fit_prior(PriorPredictor(8, _mother().family, (16,)), _bits(), fit, out_dir=run, resume=True),
         "call"),
    ]
    for call, name in changes:
        with pytest.raises(ConfigError, match=rf"^resume=True but {name} differs from the run in .*; resume with the "
                                              "run's settings or use a new out_dir$") as info:
            call()
        assert "\n" not in str(info.value)
    # epochs may grow and the device may differ (the checkpoint depends on neither) ...
    assert len(fit_mother(_mother(), _bits(), FitConfig(epochs=2, batch_size=16, lr=1e-2, seed=1, device="cpu"),
                          out_dir=run, resume=True)) == 2
    # ... but a run cannot be resumed to fewer epochs than it has finished
    with pytest.raises(ConfigError, match="has finished 2 epochs, more than epochs=1$"):
        fit_mother(_mother(), _bits(), fit, out_dir=run, resume=True)
