import pytest
import torch

from reprozoo.nara import PriorPredictor, nara_made
from reprozoo.nara.benchmark import measure
from reprozoo.nara.tasks import Task
from tests.nara.helpers import ConstantConfidence


def test_measure_rows_have_ratios_for_every_sampler():
    torch.manual_seed(0)
    mother = nara_made(16, (16,)).eval()
    prior = PriorPredictor(16, mother.family, (8,)).eval()
    task = Task("digits", mother, prior, ConstantConfidence(-5.0), torch.zeros(4, 16), torch.zeros(4, 16), 0)
    rows = measure(task, 3, repeats=1, rounds=1)
    assert [r["sampler"] for r in rows] == ["jacobi", "nara"]
    for r in rows:
        assert r["batch"] == 3 and 1 <= r["calls"] <= 16 and r["speedup"] > 0
        assert r["speedup"] == pytest.approx(r["sequential_ms"] / r["method_ms"])


@pytest.mark.slow
def test_quick_benchmark_runs():
    from reprozoo.nara.benchmark import run

    out = run(quick=True)
    assert {"digits_b1_nara_speedup", "digits_b64_jacobi_speedup", "sine_b64_tolerance_speedup"} <= set(out["ratios"])
    assert isinstance(out["met"], bool)
