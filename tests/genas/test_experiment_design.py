"""The redesigned GeNAS experiments: grouped stand-alone training (same numbers as one at a time),
the plans and the presets they size, the positive controls and the mechanism gate."""

import numpy as np
import pytest
import torch
from scipy import stats

from reprozoo.genas.data import digits_splits
from reprozoo.genas.evolution import NB201Space
from reprozoo.genas.experiment import FULL_SEEDS as CORR_FULL_SEEDS
from reprozoo.genas.experiment import (
    MECH_MAX_TAU,
    PROXIES,
    TARGETS,
    TAU_MARGIN,
    TAU_PLAN,
    CorrelationConfig,
    decide,
    mechanism,
)
from reprozoo.genas.grouped import group_networks, train_copies
from reprozoo.genas.models import NB201Network
from reprozoo.genas.search_experiment import ACC_MARGIN, ACC_PLAN, SearchConfig
from reprozoo.genas.search_experiment import FULL_SEEDS as SEARCH_FULL_SEEDS
from reprozoo.genas.search_experiment import decide as search_decide
from reprozoo.genas.spaces import NB201Genotype
from reprozoo.genas.supernet import SupernetConfig, batches_of
from reprozoo.runtime.power import seeds_for_power

CELL = NB201Genotype.from_string("|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")


def _build():
    return NB201Network(CELL, layout="tiny", C=4, cells_per_stage=1, num_classes=10, in_chans=1)


def test_grouped_network_computes_each_copy():
    nets = []
    for s in range(3):
        torch.manual_seed(s)
        nets.append(_build().train())
    x = torch.rand(5, 1, 8, 8)
    grouped = group_networks(nets).train()
    out = grouped(x.repeat(1, 3, 1, 1)).reshape(5, 3, 10)
    for k, net in enumerate(nets):
        assert torch.allclose(out[:, k], net(x), atol=1e-5)


def test_grouped_training_gives_the_numbers_of_one_at_a_time():
    data = digits_splits(n_train=60, n_val=30)
    cfg = SupernetConfig(epochs=3, batch_size=16)
    kw = dict(init_seeds=[3, 5], order_seeds=[4, 6], evals={"test": batches_of(data.test, 256)})
    grouped = train_copies(_build, data.train.x, data.train.y, cfg, grouped=True, **kw)["test"]
    alone = train_copies(_build, data.train.x, data.train.y, cfg, grouped=False, **kw)["test"]
    assert len(grouped) == 2 and grouped[0] != grouped[1]  # two different copies
    for (lg, ag), (ls, as_) in zip(grouped, alone):
        assert lg == pytest.approx(ls, abs=1e-4)
        assert ag == pytest.approx(as_, abs=2 / len(data.test.y))  # at most a couple of flipped argmaxes


def test_plans_give_the_full_presets_their_seeds():
    n = seeds_for_power(TAU_PLAN.sesoi, TAU_PLAN.pilot_sd, bound=TAU_PLAN.margin)
    # rule 2: the strongest alternative's pilot SD (0.024) at its 80% upper confidence limit (2 df)
    assert TAU_PLAN.pilot_sd == pytest.approx(0.024 * (2 / stats.chi2.ppf(0.2, 2)) ** 0.5, abs=5e-5)
    assert TAU_PLAN.planned_n == n == 8 and TAU_PLAN.sesoi > TAU_MARGIN
    assert len(CorrelationConfig.from_preset("full").seeds) == min(n, CORR_FULL_SEEDS) == 8
    m = seeds_for_power(ACC_PLAN.sesoi, ACC_PLAN.pilot_sd, bound=ACC_PLAN.margin)
    assert ACC_PLAN.pilot_sd == pytest.approx(0.022 * (2 / stats.chi2.ppf(0.2, 2)) ** 0.5, abs=5e-5)  # rule 2
    assert ACC_PLAN.planned_n == m == 136 and ACC_PLAN.sesoi > ACC_MARGIN  # out of reach: full stays at 8
    assert len(SearchConfig.from_preset("full").seeds) == min(m, SEARCH_FULL_SEEDS)
    assert set(CorrelationConfig.from_preset("full").seeds).isdisjoint(range(100, 103))  # not the pilot's seeds


def test_mechanism_gate_reads_the_flatness_val_loss_rank_agreement():
    assert mechanism([0.97, 0.99, 0.95]).verdict == "not held"  # the score ranks like the loss
    assert mechanism([0.5, 0.7, 0.6]).verdict == "held"
    assert mechanism([MECH_MAX_TAU]).verdict == "held"


def _taus(oracle, rand=(0.0, 0.01, -0.01)):
    base = {p: [0.0, 0.0, 0.0] for p in PROXIES}
    base.update({"flatness": [0.5, 0.55, 0.6], "val_acc": [0.1, 0.15, 0.2], "val_loss": [0.3, 0.32, 0.35],
                 "random": list(rand), "oracle": list(oracle)})
    return {t: {p: list(v) for p, v in base.items()} for t in TARGETS}


def test_correlation_positive_control_is_the_oracle_against_the_random_score():
    ci = {t: (-0.1, 0.1) for t in TARGETS}
    head, _ = decide(_taus([0.6, 0.62, 0.65]), ci, [0.5, 0.5, 0.5])
    assert head.verdict == "held"
    assert [g.verdict for g in head.gates["positive_control"]] == ["held", "held"]
    head, _ = decide(_taus([0.0, 0.02, -0.01]), ci, [0.5, 0.5, 0.5])  # the oracle no better than random
    assert head.verdict == "inconclusive" and "no power" in head.evidence
    head, _ = decide(_taus([0.6, 0.62, 0.65]), ci, [0.98, 0.97, 0.99])  # flatness ranks like the loss
    assert head.verdict == "inconclusive" and "mechanism inactive" in head.evidence


def test_search_positive_control_and_calibration_run():
    base = [0.80, 0.82, 0.81]
    per = {t: {"oracle": list(np.add(base, 0.08)), "random": base} for t in ("test", "shift")}
    head, claims = search_decide(per)  # a calibration run: control scores only
    assert head.verdict == "held" and claims[0]["claim"].startswith("calibration run")
    per = {t: {"flatness": list(np.add(base, 0.05)), "val_acc": base, "val_loss": base,
               "random": list(np.add(base, -0.04)), "oracle": list(np.add(base, -0.04))} for t in ("test", "shift")}
    head, _ = search_decide(per)  # flatness wins but the oracle does not beat random: no power
    assert head.verdict == "inconclusive" and "no power" in head.evidence


def test_connected_only_space_never_yields_a_dead_cell():
    space, rng = NB201Space(connected_only=True), np.random.default_rng(0)
    cells = [space.sample(rng) for _ in range(200)]
    assert all(c.connected for c in cells)
    assert all(space.mutate(c, 0.5, rng).connected for c in cells[:50])
    assert all(space.crossover(a, b, rng).connected for a, b in zip(cells[:50], cells[50:100]))


def test_benchmark_reports_runs_per_cpu_second_both_ways():
    from reprozoo.genas.benchmark_trials import trial_throughput

    out = trial_throughput(genotypes=1, copies=2, epochs=1)
    rows = {r["mode"]: r for r in out["rows"]}
    assert set(rows) == {"one_at_a_time", "grouped"} and all(r["cpu_s"] > 0 for r in rows.values())
    ratio = out["ratios"]["stand-alone runs/cpu-s grouped/one_at_a_time"]
    assert ratio > 0 and ratio == pytest.approx(rows["grouped"]["ratio_vs_one_at_a_time"], abs=1e-3)
