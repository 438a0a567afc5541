import pytest

from reprozoo.runtime.registry import get_benchmark


def test_benchmark_is_registered():
    spec = get_benchmark("rainbow")
    assert "reservoir" in spec.description


@pytest.mark.slow
def test_benchmark_quick_reports_ratios():
    out = get_benchmark("rainbow").run(quick=True)
    assert set(out["ratios"]) == {"rm_update_over_reservoir", "batched_speedup_vs_per_copy",
                                  "batched_speedup_vs_per_candidate"}
    assert out["ratios"]["rm_update_over_reservoir"] > 1  # scoring costs more than random draws
    assert len(out["rows"]) == 5 and isinstance(out["met"], bool)
