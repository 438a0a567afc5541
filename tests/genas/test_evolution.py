import numpy as np
import pytest

from reprozoo.errors import ConfigError
from reprozoo.genas.evolution import NB201_SETTINGS, DartsSpace, EvolutionConfig, NB201Space, evolve
from reprozoo.genas.spaces import DartsGenotype


def test_evolution_finds_the_optimum_and_never_rescores():
    calls = []

    def score(g):
        calls.append(g)
        return float(sum(g.codes))  # all avg_pool_3x3 (code 4) is the unique optimum, 24

    res = evolve(score, NB201Space(), EvolutionConfig(generations=10), np.random.default_rng(0))
    assert res.best_score == 24 and set(res.best.ops) == {"avg_pool_3x3"}
    assert len(calls) == len(set(calls)) == res.n_evaluated <= 50 * 10
    assert [h["best"] for h in res.history] == sorted(h["best"] for h in res.history)  # all-time elite
    again = evolve(score, NB201Space(), EvolutionConfig(generations=10), np.random.default_rng(0))
    assert again.best == res.best and again.n_evaluated == res.n_evaluated


def test_darts_children_are_repaired_and_official_mutation_keeps_the_reduction_cell():
    rng = np.random.default_rng(0)
    space = DartsSpace()
    parent = space.sample(rng)
    for _ in range(50):
        child = space.mutate(parent, 0.5, rng)
        assert child.legal and child.reduce == parent.reduce
        assert space.crossover(parent, space.sample(rng), rng).legal
    changed = [DartsSpace(mutate_reduction=True).mutate(parent, 0.5, rng).reduce != parent.reduce for _ in range(20)]
    assert any(changed)
    res = evolve(lambda g: g.normal.count(4), space, EvolutionConfig(generations=3), rng)
    assert isinstance(res.best, DartsGenotype) and res.best.legal


def test_settings_are_checked():
    assert NB201_SETTINGS["population"] == 100 and NB201_SETTINGS["top_k"] == 30
    with pytest.raises(ConfigError, match="n_mutation"):
        EvolutionConfig(population=10, n_mutation=6, n_crossover=6).validate()
    with pytest.raises(ConfigError, match="p_mutation"):
        EvolutionConfig(p_mutation=1.5).validate()


@pytest.fixture(scope="module")
def quick_bench():
    from reprozoo.genas.benchmark import measure

    return measure(quick=True)


def test_benchmark_reports_a_ratio(quick_bench):
    out = quick_bench
    # a ratio of two times measured in the same run; its size is the benchmark's result, not a test
    # condition (on a loaded machine it has come out below 1): only that it is a real positive number
    ratio = out["ratios"]["flatness/val_acc"]
    assert set(out["ratios"]) == {"flatness/val_acc"} and 0 < ratio < float("inf")
    assert ratio == pytest.approx(out["rows"][0]["ms_per_genotype"] / out["rows"][1]["ms_per_genotype"], rel=1e-2)
    assert out["rows"][2]["supernet_params"] == 21_250


def test_benchmark_flops_are_the_hand_count_and_counting_leaves_the_supernet_unchanged(quick_bench):
    """flops per genotype = (recalibration images + held-out images x passes) x one image's path
    FLOPs, averaged over the timed genotypes; limit_fraction = flops / s / peak of the same row."""
    import torch

    from reprozoo.genas.data import digits_splits
    from reprozoo.genas.models import NB201Network
    from reprozoo.genas.proxies import Flatness, ProxyData
    from reprozoo.genas.spaces import sample_nb201
    from reprozoo.genas.supernet import batches_of
    from reprozoo.runtime.profile import count_call_flops, count_flops

    out = quick_bench
    torch.manual_seed(0)
    data = digits_splits()
    net = NB201Network(None, layout="tiny", C=8, cells_per_stage=1, num_classes=10, in_chans=1)
    genotypes = sample_nb201(out["genotypes_timed"], np.random.default_rng(0), connected_only=True)
    n_recal, n_val = len(data.train), len(data.val)
    per_image = []
    for g in genotypes:
        net.set_genotype(g)
        per_image.append(count_flops(net, torch.zeros(1, 1, 8, 8)))
    flat, acc = out["rows"][0], out["rows"][1]
    assert flat["flops"] == sum((n_recal + 3 * n_val) * f for f in per_image) / len(genotypes)
    assert acc["flops"] == sum((n_recal + n_val) * f for f in per_image) / len(genotypes)
    assert flat["flops"] > acc["flops"] > 0
    for row in (flat, acc):
        expect = row["flops"] / (row["ms_per_genotype"] / 1000) / out["peak_flops"]
        assert row["limit_fraction"] == pytest.approx(expect, abs=1e-4) and 0 < row["limit_fraction"] < 1.5
    assert out["threads"] == out["rows"][2]["threads"] >= 1
    assert out["flops_count_left_supernet_unchanged"] is True
    # independently: counting one flatness score perturbs and restores every parameter and buffer exactly
    pdata = ProxyData(batches_of(data.train, 64), batches_of(data.val, 300), recal_mode="cumulative")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert count_call_flops(Flatness().score, net, genotypes[0], pdata) > 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_search_smoke_preset(tmp_path):
    from reprozoo.runtime.runner import run_experiment

    _, data = run_experiment("genas-search", "smoke", out_dir=tmp_path, overrides=["executor.kind=serial"],
                             progress=False)
    m = data["metrics"]
    assert data["verdict"] == "inconclusive"  # one seed
    assert data["headline"]["negative_control"][0]["kind"] == "superiority" and "plan" in data["headline"]
    assert m.pop("data/supernet_val_acc_mean") > 0  # the calibration gate's measurement
    assert set(m) == {f"{g}/{p}_winner_{t}_acc" for g, p in (("method", "flatness"), ("baseline", "val_acc"),
                                                             ("baseline", "val_loss"), ("control", "random"),
                                                             ("control", "oracle"))
                      for t in ("test", "shift")}
    assert len(data["headline"]["positive_control"]) == 2  # oracle- vs random-score search, test and shifted
    assert all(0 <= v <= 1 for v in m.values())


def test_search_rule_on_crafted_winners():
    from reprozoo.genas.search_experiment import ACC_MARGIN, ACC_PLAN, PAPER_SCALED_GAIN, decide

    def per(flat, acc, loss, rand, oracle=(0.97, 0.98, 0.99)):
        return {t: {"flatness": list(flat), "val_acc": list(acc), "val_loss": list(loss), "random": list(rand),
                    "oracle": list(oracle)} for t in ("test", "shift")}

    base = [0.90, 0.91, 0.92]
    head, claims = decide(per(np.add(base, [0.03, 0.04, 0.035]), base, np.add(base, -0.01), np.add(base, -0.02)))
    # gains over val_acc 0.03, 0.04, 0.035: L = 0.035 - t(0.95, 2) * 0.005 / sqrt(3) = 0.0266 > 0.01
    assert head.verdict == "held" and [c["verdict"] for c in claims] == ["held", "held", "held"]
    assert head.test.lower == pytest.approx(0.035 - 2.919986 * 0.005 / np.sqrt(3), abs=1e-6)
    assert ACC_PLAN.sesoi == 2 * ACC_MARGIN and PAPER_SCALED_GAIN < ACC_MARGIN  # the paper's gain is below the margin
    head, _ = decide(per(np.add(base, 0.03), base, np.add(base, 0.03), np.add(base, -0.02)))
    assert head.verdict == "not held" and "the gain is the loss term's" in head.evidence
    head, _ = decide(per(np.add(base, 0.03), base, np.add(base, -0.01), np.add(base, 0.03)))
    assert head.verdict == "inconclusive" and "cannot separate arms" in head.evidence  # random search does as well
