import pytest
import torch
from torch import nn

from reprozoo.runtime.profile import (
    compare_table,
    count_call_flops,
    count_macs,
    count_params,
    limit_fraction,
    matmul_peak_flops,
    measure_latency,
    measurement,
)


def test_params_and_macs_match_hand_counts():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                          nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    assert count_params(model) == 3 * 8 * 9 + 16 + 8 * 9 + 8 * 4 + 4
    model[0].weight.requires_grad_(False)
    assert count_params(model) == 16 + 8 * 9 + 36 and count_params(model, trainable_only=False) == 340
    macs = count_macs(model, torch.zeros(1, 3, 16, 16))
    assert macs == 16 * 16 * 8 * 3 * 9 + 16 * 16 * 8 * 9 + 8 * 4  # depthwise conv counted per group


def test_latency_helpers_report_consistent_numbers():
    x = torch.randn(64, 64)
    stats = measure_latency(lambda: x @ x, warmup=1, repeats=5)
    assert stats["repeats"] >= 5 and stats["p10_ms"] <= stats["median_ms"] <= stats["p90_ms"]
    assert stats["threads"] == torch.get_num_threads()
    m = measurement(lambda: x @ x, warmup=1, repeats=4, label="mm", sub_label="64", description="x@x")
    assert len(m.times) >= 4 and m.number_per_run >= 1
    assert "x@x" in compare_table([m]) and "mm" in compare_table([m])


def test_latency_ratio_interleaves_and_takes_medians(monkeypatch):
    from reprozoo.runtime import profile

    calls = []
    fake = {"a": iter([2.0, 4.0, 3.0]), "b": iter([1.0, 1.0, 2.0])}

    def fake_measure(fn, **kw):
        calls.append(fn())
        return {"median_ms": next(fake[calls[-1]])}

    monkeypatch.setattr(profile, "measure_latency", fake_measure)
    r = profile.latency_ratio(lambda: "a", lambda: "b", rounds=3)
    assert calls == ["a", "b", "a", "b", "a", "b"]  # interleaved, so a slow spell hits both
    assert r["method_ms"] == 3.0 and r["baseline_ms"] == 1.0 and r["ratio"] == 3.0


def test_limit_fraction_and_peak():
    # 1 GFLOP in 10 ms = 100 GFLOP/s; against a 400 GFLOP/s peak that is a quarter
    assert limit_fraction(1e9, 10.0, 4e11) == pytest.approx(0.25)
    peak = matmul_peak_flops(size=128, min_time_s=0.01)
    assert 1e7 < peak < 1e15


def test_add_limit_fraction_on_hand_computed_numbers():
    from reprozoo.runtime.profile import add_limit_fraction

    rows = [{"flops": 2e9, "median_ms": 10.0},          # 2e11 FLOP/s of a 1e12 peak -> 0.2
            {"flops": 5e8, "ms": 250.0},                # 2e9 FLOP/s -> 0.002 (custom keys below)
            {"model": "no numbers"}]
    out = add_limit_fraction(rows, 1e12)
    assert out is rows and rows[0]["limit_fraction"] == 0.2
    assert "limit_fraction" not in rows[1] and rows[2] == {"model": "no numbers"}
    add_limit_fraction(rows, 1e12, ms_key="ms", out_key="frac")
    assert rows[1]["frac"] == 0.002


def test_count_call_flops_counts_forward_and_backward_of_a_step():
    lin = torch.nn.Linear(8, 4, bias=False)
    x = torch.randn(5, 8)

    def step():
        lin.zero_grad()
        lin(x).sum().backward()

    # forward 2*5*8*4 = 320; backward: grad wrt weight only (x needs no grad) = 320
    assert count_call_flops(step) == 640
    assert count_call_flops(lambda a, b: a @ b, torch.randn(3, 7), torch.randn(7, 2)) == 2 * 3 * 7 * 2
    assert count_call_flops(lambda: torch.relu(x)) == 0  # elementwise work is not counted
