import pytest
import torch

from reprozoo.eclips.benchmark import measure


@pytest.fixture(scope="module")
def quick_measure():
    return measure(quick=True, k=2, width=4, embed_dim=8, size=16, batch=8, mc_samples=2, macs=False)


def test_benchmark_reports_ratios(quick_measure):
    out = quick_measure
    assert set(out["ratios"]) == {"ensemble_loop / single (latency)", "ensemble_vmap / ensemble_loop (latency)",
                                  "ensemble_grouped / ensemble_loop (latency)",
                                  "mc_dropout_T2 / deterministic (latency)"}
    assert all(v > 0 for v in out["ratios"].values())
    assert out["rows"][0]["params"] == 1_758 and out["rows"][1]["params"] == 2 * 1_758 + 2


def test_benchmark_reports_flops_and_fraction_of_peak(quick_measure):
    from reprozoo.eclips.models import base_learner
    from reprozoo.runtime.profile import count_flops

    out = quick_measure
    assert out["peak_flops"] > 0 and out["threads"] == torch.get_num_threads()
    base, loop, vmap, grouped, mc = out["rows"]
    # independent count: a fresh base learner of the same size on the same batch shape
    one = count_flops(base_learner(4, 8), torch.zeros(8, 3, 16, 16))
    assert base["flops"] == one > 0
    assert loop["flops"] == vmap["flops"] == grouped["flops"] == 2 * one  # K members, one pass or K
    assert mc["flops"] == 2 * 2 * one  # T passes x K members
    for row in out["rows"]:  # limit_fraction is rounded to 4 digits: compare with abs=1e-4
        achieved = row["flops"] / (row["ms"] / 1000) / out["peak_flops"]
        assert row["limit_fraction"] == pytest.approx(achieved, rel=1e-3, abs=1e-4) and 0 < achieved < 1.5
    for row in (vmap, grouped):
        assert row["loop_limit_fraction_same_pair"] == pytest.approx(
            loop["flops"] / (row["loop_ms_same_pair"] / 1000) / out["peak_flops"], rel=1e-3, abs=1e-4)


def test_trial_rate_reports_trials_per_cpu_second_at_both_thread_counts():
    from reprozoo.eclips.benchmark import trial_rate

    before = torch.get_num_threads()
    out = trial_rate(rounds=1, iters=2, width=4, embed_dim=8, k=2, size=16, n_frames=48, n_score=12, mc_samples=2)
    assert torch.get_num_threads() == before  # the thread count is restored
    assert out["threads"] == [2, 1] and out["iters"] == 2
    for t in ("1", "2"):
        assert out["cpu_s_per_trial"][t] > 0
        assert out["trials_per_cpu_s"][t] == pytest.approx(1.0 / out["cpu_s_per_trial"][t])
    assert out["ratio"] == pytest.approx(out["trials_per_cpu_s"]["1"] / out["trials_per_cpu_s"]["2"])


def test_the_trial_cost_leaves_the_callers_random_state_alone():
    from reprozoo.eclips.benchmark import trial_cost

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    assert trial_cost(1, iters=1, k=2, n_frames=48, n_score=8, mc_samples=2) > 0
    assert torch.equal(torch.rand(3), expected)
