"""The redesigned rule of ``tvq-vae``: plan and seeds, the positive control's arm and wiring, the
mechanism gate's measurement, and the shared-corpus trials giving the same numbers as before."""

import json

import numpy as np
import pytest
import torch

from reprozoo.runtime.power import mde, seeds_for_power
from reprozoo.runtime.trials import Trial
from reprozoo.tvqvae import baselines
from reprozoo.tvqvae import experiment as ex
from reprozoo.tvqvae.experiment_rule import (
    PLANTED_WORDS,
    TQ_MARGIN,
    TQ_PLAN,
    USAGE_MIN,
    code_perplexity,
    decide,
    mechanism_gate,
    positive_control,
)
from reprozoo.tvqvae.models import VQAutoEncoder
from reprozoo.tvqvae.training import code_histograms


def test_plan_seeds_come_from_the_power_function_and_the_full_preset_runs_them():
    n = seeds_for_power(TQ_PLAN.sesoi, TQ_PLAN.pilot_sd, bound=TQ_MARGIN, target=0.8)
    assert TQ_PLAN.planned_n == n and TQ_PLAN.margin == TQ_MARGIN and TQ_PLAN.sesoi > TQ_MARGIN
    assert TQ_PLAN.power_at(n) >= 0.8 > TQ_PLAN.power_at(n - 1)
    assert mde(TQ_PLAN.pilot_sd, n, bound=TQ_MARGIN) <= TQ_PLAN.sesoi  # the planned run can see the SESOI
    full = ex.TVQConfig.from_preset("full")
    quick = ex.TVQConfig.from_preset("quick")
    assert full.seeds == list(range(n)) and "planted" in full.arms
    # the full preset changes nothing but the seeds: the same benchmark at the planned power
    same = {f: getattr(quick, f) for f in ex._CORPUS_KEYS + ("vq_epochs", "topic_epochs", "arms", "lda_passes")}
    assert same == {f: getattr(full, f) for f in same}


def test_code_perplexity_measures_codebook_usage_on_tiny_cases():
    assert code_perplexity(np.ones((3, 8))) == pytest.approx(1.0)  # every code equally used
    one = np.zeros((4, 8))
    one[:, 2] = 5
    assert code_perplexity(one) == pytest.approx(1 / 8)  # one code takes every assignment
    two = np.zeros((2, 10))
    two[0, 0], two[1, 1] = 3, 1  # p = (3/4, 1/4): perplexity 4 / 3^(3/4) = 1.7548
    assert code_perplexity(two) == pytest.approx(4 / 3 ** 0.75 / 10)
    assert np.isnan(code_perplexity(np.zeros((2, 3))))
    # on a real (tiny) VQ autoencoder: a codebook whose other codes moved far away gives every token
    # the same n = 2 codes (share n / N), a spread codebook more
    torch.manual_seed(0)
    vq = VQAutoEncoder(6, (8,), code_dim=3, n_codes=12, n_neighbors=2)
    vectors, doc = torch.randn(200, 6), np.repeat(np.arange(20), 10)
    with torch.no_grad():
        vq.codebook.copy_(torch.nn.functional.normalize(torch.randn(12, 3), dim=-1))  # codes on the sphere
    spread = code_perplexity(code_histograms(vq, vectors, doc, 20, torch.device("cpu")).numpy())
    with torch.no_grad():
        vq.codebook[2:] = 100.0  # only codes 0 and 1 stay near the unit sphere
    collapsed = code_perplexity(code_histograms(vq, vectors, doc, 20, torch.device("cpu")).numpy())
    assert collapsed == pytest.approx(2 / 12, rel=1e-6) and spread > 1.5 * collapsed
    assert mechanism_gate([0.9, 0.8, None]).verdict == "held"
    assert mechanism_gate([0.09]).verdict == "not held" and mechanism_gate([]).verdict == "not held"
    assert USAGE_MIN == 0.25


def _data():
    cfg = ex.TVQConfig.from_preset("smoke")
    return cfg, ex.shared_corpus(cfg)[0]


def test_planted_arm_replaces_the_last_npmi_words_of_an_independent_clustering():
    cfg, data = _data()
    k = cfg.topics[0]
    topics, theta = baselines.planted_topics(data, k, 0, n_planted=2)
    other, _ = baselines.embedding_clusters(data, k, 0 + 7919)
    assert theta.shape == (len(data.texts), k) and len(topics) == k
    for planted, intact in zip(topics, other):
        assert planted[:8] == intact[:8] and planted[10:] == intact[10:]  # only ranks 9 and 10 change
        assert all(w not in intact for w in planted[8:10]) and all(w in data.vocab for w in planted[8:10])
    again, _ = baselines.planted_topics(data, k, 0, n_planted=2)
    assert again == topics  # seeded
    assert PLANTED_WORDS >= 1


def _vals(**arms):
    return {a: {"tq_best50": np.asarray(v, float), "tq_all": np.asarray(v, float)} for a, v in arms.items()}


def test_positive_control_and_mechanism_gate_the_headline():
    tvq, lda, ctrl = [0.30, 0.31, 0.30], [0.10, 0.11, 0.10], [-0.4, -0.4, -0.41]
    good = _vals(tvq=tvq, lda=lda, cluster=[0.09, 0.10, 0.09], planted=[0.0, 0.01, 0.0], random=ctrl)
    head, _ = decide(good, ["lda", "cluster"], usage=[0.6, 0.7])
    assert head.verdict == "held" and head.gates["positive_control"][0].verdict == "held"
    assert head.gates["mechanism"][0].verdict == "held"
    pc = positive_control(good)
    assert pc.estimate == pytest.approx(0.09) and "planted" in pc.evidence
    # the planted copy is not detected (it ties the intact baseline): no power -> inconclusive
    blind = _vals(tvq=tvq, lda=lda, cluster=[0.09, 0.10, 0.09], planted=[0.09, 0.10, 0.095], random=ctrl)
    head, _ = decide(blind, ["lda", "cluster"], usage=[0.6])
    assert head.verdict == "inconclusive" and "no power" in head.evidence
    # a collapsed codebook: mechanism inactive -> inconclusive, even with a clear gain
    head, _ = decide(good, ["lda", "cluster"], usage=[0.05, 0.08])
    assert head.verdict == "inconclusive" and "mechanism inactive" in head.evidence
    # the arms are wired as named: cluster is the intact side, planted the weaker one
    flipped = _vals(tvq=tvq, lda=lda, cluster=[0.0, 0.01, 0.0], planted=[0.09, 0.10, 0.09], random=ctrl)
    assert positive_control(flipped).verdict == "not held"


def test_shared_corpus_trials_give_the_numbers_of_per_trial_preparation():
    cfg, _ = _data()
    ctx = type("Ctx", (), {"config": cfg})()
    trials = [Trial(a, s) for s in (0, 1) for a in ("planted", "cluster", "random")]
    ex._SHARED.clear()
    shared = [ex.run_one(t, ctx) for t in trials]
    alone = []
    for t in trials:
        ex._SHARED.clear()
        alone.append(ex.run_one(t, ctx))
    assert json.dumps(shared, sort_keys=True) == json.dumps(alone, sort_keys=True)
    assert len(ex._SHARED) == 1
    planted = {r["seed"]: r["by_k"][str(cfg.topics[0])] for r in shared if r["arm"] == "planted"}
    intact = {r["seed"]: r["by_k"][str(cfg.topics[0])] for r in shared if r["arm"] == "cluster"}
    assert planted[0]["topics"] != intact[0]["topics"]
