"""The nara trial's own measurements: CPU time in interleaved rounds, C's and Q's cost in mother calls,
the test draw restricted to the chosen settings (same numbers as the full curve), the plan's seeds."""

from __future__ import annotations

import math

import pytest
import torch

from reprozoo.nara import costs
from reprozoo.nara.config import NaraConfig, task_cfg
from reprozoo.nara.costs import call_costs, interleaved_cpu_ms
from reprozoo.nara.evaluation import evaluate_task
from reprozoo.nara.rules import PLANS, planned_seeds
from reprozoo.nara.samplers import draw_noise
from reprozoo.nara.tasks import build_task
from reprozoo.runtime.power import seeds_for_power


def test_interleaved_cpu_ms_runs_every_function_each_round_and_takes_the_median(monkeypatch):
    order, ticks = [], iter(range(1000))
    monkeypatch.setattr(costs.time, "process_time", lambda: next(ticks) * 0.010)  # every call "costs" 10 ms
    runs = {name: (lambda name=name: order.append(name)) for name in ("a", "b")}
    ms = interleaved_cpu_ms(runs, rounds=3, min_ms=25.0)  # 3 calls reach 25 ms: 30 ms / 3 = 10 ms per call
    assert order == ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3
    assert ms == {"a": pytest.approx(10.0), "b": pytest.approx(10.0)}


@pytest.fixture(scope="module")
def digits_task():
    torch.set_num_threads(1)
    cfg = NaraConfig.from_preset("smoke")
    return cfg, build_task(task_cfg(cfg, "digits"), seed=0, device="cpu")


def test_call_costs_are_measured_in_mother_calls(digits_task):
    cfg, task = digits_task
    noise = draw_noise(task.mother, 24, torch.Generator().manual_seed(0))
    c = call_costs(task, noise, None, rounds=1)
    assert c["batch"] == 24.0
    for k in ("mother_ms", "confidence_ms", "prior_ms"):
        assert math.isfinite(c[k]) and c[k] > 0
    assert c["confidence_over_mother"] == pytest.approx(c["confidence_ms"] / c["mother_ms"])
    assert c["prior_over_mother"] == pytest.approx(c["prior_ms"] / c["mother_ms"])


def test_test_draw_of_the_chosen_settings_equals_the_full_curve(digits_task):
    cfg, task = digits_task
    with torch.no_grad():
        fast = evaluate_task(cfg, task, 0)
        full = evaluate_task(NaraConfig.from_preset("smoke", ["test_curve=true"]), task, 0)
    assert len(full["rows"]["test"]) > len(fast["rows"]["test"]) == len(fast["test"])
    assert fast["chosen"] == full["chosen"] and fast["rows"]["val"] == full["rows"]["val"]
    keys = ("calls", "iterations", "nll", "mmd", "deviation", "nll_gap", "mmd_gap", "equal_quality")
    for fam in fast["test"]:
        assert {k: fast["test"][fam][k] for k in keys} == {k: full["test"][fam][k] for k in keys}
    assert fast["test"]["sequential"]["time_ratio"] == 1.0
    assert fast["test"]["nara"]["eq_calls"] > fast["test"]["nara"]["calls"]  # C and Q priced in


def test_full_preset_carries_the_planned_seeds():
    n = planned_seeds()
    for p in PLANS.values():
        assert p.seeds == seeds_for_power(p.sesoi, p.pilot_sd, bound=p.margin)
    assert n == max(PLANS[("digits", "calls")].seeds, PLANS[("digits", "time")].seeds) == 21
    full = NaraConfig.from_preset("full")
    assert full.seeds == list(range(n)) and full.tasks == ["digits"]
    assert all(PLANS[("digits", part)].power_at(n) >= 0.8 for part in ("calls", "time"))
