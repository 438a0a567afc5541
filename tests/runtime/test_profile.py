import torch
from torch import nn

from reprozoo.runtime.profile import count_macs, count_params, latency_ratio, measure_latency


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
    r = latency_ratio(lambda: x @ x, lambda: x @ x, rounds=1, warmup=1, repeats=3)
    assert r["ratio"] == r["method_ms"] / r["baseline_ms"]
