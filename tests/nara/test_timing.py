"""The wall-clock timing of the nara experiment and benchmark goes through runtime.profile."""

from __future__ import annotations

from reprozoo.nara import evaluation
from reprozoo.nara.evaluation import interleaved_ms


def test_interleaved_ms_times_every_function_each_round_through_profile(monkeypatch):
    seen = []

    def fake_latency(fn, *, warmup, repeats):
        fn()
        seen.append((warmup, repeats))
        return {"median_ms": float(len(seen))}

    monkeypatch.setattr(evaluation, "measure_latency", fake_latency)
    calls = {"a": 0, "b": 0}
    runs = {name: (lambda name=name: calls.__setitem__(name, calls[name] + 1)) for name in calls}
    ms = interleaved_ms(runs, rounds=3, warmup=1, repeats=2)
    assert calls == {"a": 3, "b": 3}
    assert seen == [(1, 2)] * 6
    assert ms == {"a": 3.0, "b": 4.0}  # medians of rounds a: 1, 3, 5 and b: 2, 4, 6 (interleaved a, b, a, b, ...)


def test_interleaved_ms_measures_real_time():
    ms = interleaved_ms({"sum": lambda: sum(range(1000))}, rounds=2)
    assert ms["sum"] > 0
