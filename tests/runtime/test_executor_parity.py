"""Results do not depend on the executor, and the arms of one seed share their random streams
(common random numbers)."""

import json
from pathlib import Path

import pytest
import torch

import tests.runtime.lock_toy  # noqa: F401  (the module-level trial functions)
from reprozoo.runtime.runner import run_experiment
from reprozoo.runtime.trials import ExecutorConfig, Trial, run_trials
from tests.runtime.lock_toy import LockToyConfig, draws

_TIMING_KEYS = {"provenance", "runtime_s", "environment", "overrides"}  # overrides: the executor


def _numbers(obj):
    """metrics.json without what measures time: provenance, run time, and the latency rows (their
    values, and the texts that quote them)."""
    if isinstance(obj, dict):
        if "latency" in str(obj.get("name", "")):
            return "<timing>"
        out = {k: _numbers(v) for k, v in obj.items() if k not in _TIMING_KEYS and "latency" not in k}
        if "parts" in obj:  # a several-part headline: which part decides can depend on a latency part
            out.update({k: "<from parts>" for k in ("test", "reasons", "verdict", "evidence") if k in out})
        return out
    if isinstance(obj, list):
        return [_numbers(v) for v in obj]
    if isinstance(obj, str) and "latency" in obj:
        return "<timing>"
    return obj


@pytest.fixture
def two_torch_threads():
    """The parent has two intra-op threads, as on an idle 2-core machine: a trial that inherited them
    (instead of getting config.threads) would round its float sums differently."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_pflayer_ops_smoke_is_byte_identical_under_serial_and_local(tmp_path, two_torch_threads):
    runs = {}
    for kind, extra in (("serial", []), ("local", ["executor.workers=2"])):
        out, data = run_experiment("pflayer-ops", "smoke", overrides=[f"executor.kind={kind}", *extra],
                                   out_dir=tmp_path / kind)
        runs[kind] = (out, data)
    (s_out, s_data), (l_out, _) = runs["serial"], runs["local"]
    s_trials = sorted(p.name for p in (s_out / "trials").glob("*.json"))
    assert len(s_trials) == 8 and s_trials == sorted(p.name for p in (l_out / "trials").glob("*.json"))
    for name in s_trials:  # every trial's result, training loss included, bit for bit
        assert (s_out / "trials" / name).read_bytes() == (l_out / "trials" / name).read_bytes(), name
    assert _numbers(json.loads((s_out / "metrics.json").read_text())) == \
        _numbers(json.loads((l_out / "metrics.json").read_text()))
    assert any(k.endswith("_acc") for k in s_data["metrics"])


def _draws(tmp: Path, kind: str, trials):
    config = LockToyConfig()
    ex = ExecutorConfig(kind=kind, workers=2 if kind == "local" else 0)
    return run_trials(draws, trials, config=config, run_dir=tmp / kind, executor=ex)


def test_arms_of_one_seed_share_their_random_streams_under_every_executor(tmp_path):
    trials = [Trial("a", 0), Trial("b", 0), Trial("a", 1), Trial("b", 1), Trial("a", 0, k=2)]
    serial = _draws(tmp_path, "serial", trials)
    local = _draws(tmp_path, "local", trials)
    assert serial == local
    strip = [{k: v for k, v in r.items() if k != "arm"} for r in serial]
    a0, b0, a1, b1, a0k2 = strip
    assert a0 == b0 and a1 == b1  # same seed and settings: the same torch / numpy / python draws
    for stream in ("torch", "numpy", "python", "dropout"):
        assert a0[stream] != a1[stream], stream  # another seed: other draws
        assert a0[stream] != a0k2[stream], stream  # other settings: other draws
