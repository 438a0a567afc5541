import pytest

from reprozoo.runtime.registry import get_benchmark


def test_benchmark_is_registered():
    spec = get_benchmark("rainbow")
    assert "reservoir" in spec.description


@pytest.mark.slow
def test_benchmark_quick_reports_ratios():
    out = get_benchmark("rainbow").run(quick=True)
    assert set(out["ratios"]) == {"rm_update_over_reservoir", "batched_speedup_vs_per_copy",
                                  "trials_per_cpu_s_batched_over_sequential_er",
                                  "trials_per_cpu_s_batched_over_sequential_rm",
                                  "batched_speedup_vs_per_candidate"}
    assert out["ratios"]["rm_update_over_reservoir"] > 1  # scoring costs more than random draws
    assert len(out["rows"]) == 9 and isinstance(out["met"], bool)
    assert all(r["max_abs_diff_A_last"] < 5e-3 for r in out["rows"] if "max_abs_diff_A_last" in r)
