import pytest
import torch

from reprozoo.rexnet import benchmark

pytest.importorskip("timm")


def test_compare_reports_one_row_per_batch_and_layout():
    out = benchmark.compare(quick=True, batches=(1,), image_size=64, channels_last=True)
    (row,) = out["rows"]
    assert (row["model"], row["batch"], row["size"], row["memory_format"]) == ("rexnet_100", 1, 64, "channels_last")
    assert list(out["ratios"]) == ["batch1_channels_last ours/timm"]


def test_goal_is_judged_on_the_worst_contiguous_ratio(monkeypatch):
    def fake(quick=False, channels_last=False, **kw):
        if channels_last:
            return {"rows": [], "ratios": {"batch1_channels_last ours/timm": 2.0}}  # not part of the goal
        return {"rows": [], "ratios": {"batch1 ours/timm": 0.97, "batch32 ours/timm": ratio}}

    ratio = 1.04
    monkeypatch.setattr(benchmark, "compare", fake)
    out = benchmark.run(quick=False, trials=False)
    assert out["met"] is True and "worst measured 1.040x" in out["goal"]
    ratio = 1.06
    out = benchmark.run(quick=False, trials=False)
    assert out["met"] is False and "worst measured 1.060x" in out["goal"]
    assert out["rows"][0]["params"] == 4_796_873 and out["rows"][0]["macs_224"] == 398_370_392


def test_trial_throughput_rows_are_ratios_against_the_former_setting():
    from reprozoo.rexnet.benchmark_trials import SETTINGS, trial_throughput

    out = trial_throughput(steps=1, batch=8, rounds=1)
    rows = {r["setting"]: r for r in out["rows"]}
    assert set(rows) == set(SETTINGS) and rows["former_32px_nchw"]["ratio_vs_former"] == 1.0
    cur, old = rows["redesign2_16px_b256"], rows["former_32px_nchw"]
    assert cur["ratio_vs_former"] == pytest.approx(cur["images_per_cpu_s"] / old["images_per_cpu_s"], rel=1e-2)
    # the second redesign's trial is 23,008 training images (11,504 x 2 epochs), the former one 4,314 (1,438 x 3)
    assert (cur["trial_images"], old["trial_images"]) == (23_008, 4_314)
    assert rows["plateau_16px_b256"]["trial_images"] == 69_024  # the plateau budget: 5,752 x 12 epochs
    assert rows["fresh_16px_b256"]["trial_images"] == 103_536  # the presets: 2,876 fresh images x 36 epochs
    assert cur["trial_ratio_vs_former"] == pytest.approx(cur["ratio_vs_former"] * 4_314 / 23_008, rel=1e-2)
    assert out["ratios"]["trials/cpu-s redesign2_16px_b256/former_32px_nchw"] == pytest.approx(
        cur["trials_per_cpu_s"] / old["trials_per_cpu_s"], rel=1e-2)


def test_trial_throughput_leaves_the_callers_random_state_alone():
    from reprozoo.rexnet.benchmark_trials import trial_throughput

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    trial_throughput(steps=1, batch=4, rounds=1)
    assert torch.equal(torch.rand(3), expected)


def test_seed_batching_reports_batched_against_one_at_a_time_in_one_run():
    from reprozoo.rexnet.benchmark_trials import seed_batching

    out = seed_batching(n_seeds=2, steps=1, batch=4, rounds=1)
    rows = {r["setting"]: r for r in out["rows"]}
    assert set(rows) == {"batched_vmap", "one_at_a_time"} and rows["one_at_a_time"]["ratio_vs_one_at_a_time"] == 1.0
    ratio = out["ratios"]["trials/cpu-s batched_vmap/one_at_a_time"]
    assert ratio > 0 and rows["batched_vmap"]["ratio_vs_one_at_a_time"] == pytest.approx(ratio, abs=1e-3)
    assert rows["batched_vmap"]["images_per_cpu_s"] / rows["one_at_a_time"]["images_per_cpu_s"] == pytest.approx(
        ratio, rel=2e-2)
