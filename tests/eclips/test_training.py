"""eclips.training: the device of ``fit`` and ``score_frames``."""

import pytest
import torch

from reprozoo import create_model
from reprozoo.eclips.training import FitSettings, fit, score_frames
from reprozoo.errors import ConfigError


def _data():
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8, generator=g)
    return frames, torch.arange(16) % 2, torch.arange(16) // 8


def test_fit_defaults_to_auto_and_equals_an_explicit_resolved_device():
    """``auto`` is resolved by runtime.accel (the CPU here): the default run and a run with the
    resolved device named are the same run."""
    from reprozoo.runtime.accel import resolve_device

    frames, labels, domains = _data()
    runs = []
    for kw in ({}, {"device": resolve_device("auto")}):
        torch.manual_seed(0)
        model = create_model("eclips_cnn_small", width=4, embed_dim=8)
        hist = fit(model, frames, labels, domains, FitSettings(iters=3, n_per_bucket=2),
                   generator=torch.Generator().manual_seed(0), **kw)
        runs.append((hist["loss"], [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    assert next(model.parameters()).device.type == resolve_device("auto")
    # scoring follows the model's device unless told otherwise
    out = score_frames(model, frames[:4], generator=torch.Generator().manual_seed(1))
    assert out["prob"].shape == (4,)


def test_a_device_name_that_is_no_device_is_a_config_error():
    frames, labels, domains = _data()
    model = create_model("eclips_cnn_small", width=4, embed_dim=8)
    with pytest.raises(ConfigError, match="device must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"):
        fit(model, frames, labels, domains, FitSettings(iters=1, n_per_bucket=2),
            generator=torch.Generator().manual_seed(0), device="gpu")
    with pytest.raises(ConfigError, match="got 'gpu'"):
        score_frames(model, frames[:2], device="gpu")


def _ensemble(seed=0):
    torch.manual_seed(seed)
    return create_model("eclips_cnn_ensemble", k=2, width=4, embed_dim=8)


RESUMABLE = FitSettings(iters=8, n_per_bucket=1, uncertainty_sampling=True, refresh_every=3, mc_samples=2,
                        subset=4)


def test_an_interrupted_fit_resumes_bit_for_bit(tmp_path, monkeypatch):
    """Stopped in iteration 7 (last state after iteration 6 of save_every=3), resumed with fresh weights
    and another global RNG state: the same weights and history as a run never stopped."""
    import reprozoo.eclips.training as T

    frames, labels, domains = _data()
    straight = _ensemble()
    full = fit(straight, frames, labels, domains, RESUMABLE, generator=torch.Generator().manual_seed(0),
               device="cpu", out_dir=tmp_path / "a", save_every=3)
    calls, augment = [], T.augment

    def stop_in_the_seventh_iteration(x, generator):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return augment(x, generator)

    monkeypatch.setattr(T, "augment", stop_in_the_seventh_iteration)
    with pytest.raises(KeyboardInterrupt):
        fit(_ensemble(), frames, labels, domains, RESUMABLE, generator=torch.Generator().manual_seed(0),
            device="cpu", out_dir=tmp_path / "b", save_every=3)
    calls.clear()
    monkeypatch.setattr(T, "augment", augment)
    torch.manual_seed(123)
    resumed = _ensemble(seed=5)
    again = fit(resumed, frames, labels, domains, RESUMABLE, generator=torch.Generator().manual_seed(0),
                device="cpu", out_dir=tmp_path / "b", save_every=3, resume=True)
    assert again == full and full["refreshes"] == 2
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_fit_refuses_a_run_without_resume_and_names_a_changed_setting(tmp_path):
    from reprozoo.errors import OutputExistsError

    frames, labels, domains = _data()
    one = FitSettings(iters=2, n_per_bucket=2)
    run = tmp_path / "run"
    fit(_ensemble(), frames, labels, domains, one, generator=torch.Generator().manual_seed(0), out_dir=run)
    with pytest.raises(OutputExistsError, match=r"run already holds an ECLIPS training run \(checkpoints/last.pt\); "
                                                "pass resume=True to continue it, or a new out_dir$"):
        fit(_ensemble(), frames, labels, domains, one, generator=torch.Generator().manual_seed(0), out_dir=run)
    with pytest.raises(ConfigError, match=r"^resume=True but lr differs from the run in .*: 0.001 there, 0.01 now"):
        fit(_ensemble(), frames, labels, domains, FitSettings(iters=2, n_per_bucket=2, lr=1e-2),
            generator=torch.Generator().manual_seed(0), out_dir=run, resume=True)
    with pytest.raises(ConfigError, match="^resume=True but generator differs"):
        fit(_ensemble(), frames, labels, domains, one, generator=torch.Generator().manual_seed(1), out_dir=run,
            resume=True)
    with pytest.raises(ConfigError, match="^resume=True but data differs"):
        fit(_ensemble(), frames.flip(0), labels, domains, one, generator=torch.Generator().manual_seed(0),
            out_dir=run, resume=True)
    with pytest.raises(ConfigError, match="^resume=True needs the out_dir"):
        fit(_ensemble(), frames, labels, domains, one, generator=torch.Generator().manual_seed(0), resume=True)
