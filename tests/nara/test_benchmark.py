import pytest
import torch

from reprozoo.nara import LocalConfidence, PriorPredictor, nara_causal_conv, nara_made
from reprozoo.nara.benchmark import _goal, goals, measure, per_sample_flops
from reprozoo.nara.tasks import Task
from reprozoo.runtime.profile import count_params


def _task(conf=None):
    torch.manual_seed(0)
    mother = nara_made(16, (16,)).eval()
    prior = PriorPredictor(16, mother.family, (8,)).eval()
    conf = conf or LocalConfidence(16, mother.family, (4,)).eval()
    return Task("digits", mother, prior, conf, torch.zeros(4, 16), torch.zeros(4, 16), 0)


def test_measure_rows_have_calls_time_work_and_peak_fraction():
    task = _task()
    samplers = {"jacobi": {"method": "jacobi"}, "jacobi+prior": {"method": "jacobi", "prior": task.prior},
                "nara": {"method": "nara", "prior": task.prior, "confidence": task.confidence, "threshold": 0.9}}
    flops = per_sample_flops(task)
    rows = measure(task, 3, samplers, flops, peak=1e9, repeats=1, rounds=1)
    assert [r["sampler"] for r in rows] == ["sequential", "jacobi", "jacobi+prior", "nara"]
    seq = rows[0]
    assert seq["calls"] == 16 and seq["flops"] == pytest.approx(3 * 16 * flops["mother"])
    assert flops["confidence_band"] == 2 * 16 * (6 * 4 + 4)  # 16 band positions x (6 x 4 + 4) multiply-adds
    for r in rows[1:]:
        assert r["batch"] == 3 and 1 <= r["calls"] <= 16
        assert r["speedup_vs_sequential"] == pytest.approx(r["sequential_ms"] / r["ms"])
        assert r["ms_per_call"] == pytest.approx(r["ms"] / r["iterations"])
        assert r["limit_fraction"] == pytest.approx(r["flops"] / (r["ms"] / 1000) / 1e9)
    nara = rows[-1]
    assert nara["flops"] == pytest.approx(3 * nara["calls"] * (flops["mother"] + flops["confidence_band"])
                                          + 3 * flops["prior"])


def test_confidence_predictor_is_cheap_next_to_the_mother():
    made = nara_made()  # MADE 64-256-256-64
    conv = nara_causal_conv()
    for mother in (made, conv):
        conf = LocalConfidence(64, mother.family, (16,))
        assert count_params(conf) == 6 * 16 + 16 + 16 + 1  # 6 inputs per position -> 16 -> 1
        task = Task("x", mother.eval(), PriorPredictor(64, mother.family), conf.eval(), torch.zeros(2, 64),
                    torch.zeros(2, 64), 0)
        f = per_sample_flops(task)
        # one C call: 64 positions x (6 x 16 + 16) multiply-adds
        assert f["confidence"] == 2 * 64 * (6 * 16 + 16)
        assert f["confidence"] < 0.15 * f["mother"]
    assert per_sample_flops(Task("d", made.eval(), PriorPredictor(64, made.family), LocalConfidence(64, made.family),
                                 torch.zeros(2, 64), torch.zeros(2, 64), 0))["mother"] == 2 * (64 * 256 + 256 * 256
                                                                                              + 256 * 64)


def test_goal_and_calls_not_time():
    def row(s, calls, ms, sp):
        return {"task": "digits", "batch": 1, "sampler": s, "calls": calls, "ms": ms, "speedup_vs_sequential": sp}
    rows = [row("sequential", 64, 10.0, 1.0), row("jacobi", 6, 1.0, 10.0), row("jacobi+prior", 4.6, 0.9, 11.1),
            row("nara", 4.0, 1.2, 8.3)]
    met, lines, lost = _goal(rows)
    assert not met and len(lines) == 2
    assert lines[0].endswith("-> met") and "sequential" in lines[0]  # 10 ms vs 1.2 ms
    assert "best exact Jacobi (jacobi+prior)" in lines[1] and lines[1].endswith("-> not met")
    assert lost == ["digits b1: 1.15x fewer calls than jacobi+prior but 0.75x its speed"]
    g = goals(rows)
    assert [x["met"] for x in g] == [True, False] and g[1]["speed_ratio"] == pytest.approx(0.9 / 1.2)
    # time per AR call: NARA 1.2 / 4.0 = 0.3 ms against 0.9 / 4.6 ms; a free C would give at most 1.15x
    assert g[1]["per_call_cost_ratio"] == pytest.approx((1.2 / 4.0) / (0.9 / 4.6))
    assert g[1]["free_c_bound"] == pytest.approx(4.6 / 4.0)
    rows[-1]["ms"] = 0.5
    assert _goal(rows)[0]
    rows[-1]["ms"], rows[-1]["calls"] = 1.2, 4.6  # no call saved: the miss is named as such
    assert _goal(rows)[2] == ["digits b1: no calls saved against jacobi+prior (1.00x): even a free C could not "
                              "make NARA faster"]


@pytest.mark.slow
def test_quick_benchmark_runs():
    from reprozoo.nara.benchmark import run

    out = run(quick=True)
    assert {"digits_b1_nara_speedup", "digits_b64_jacobi_speedup", "sine_b64_tolerance_speedup"} <= set(out["ratios"])
    assert out["matmul_peak_gflops"] > 0 and isinstance(out["met"], bool)
    for rate in out["trials_per_cpu_s"].values():  # the same trained task, with and without the test curve
        assert rate["train_cpu_s"] > 0 and rate["eval_cpu_s_after"] > 0
        assert rate["ratio"] == pytest.approx(rate["trials_per_cpu_s_after"] / rate["trials_per_cpu_s_before"])
