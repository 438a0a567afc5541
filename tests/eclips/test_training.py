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
