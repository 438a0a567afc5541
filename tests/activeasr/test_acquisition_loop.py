import math

import numpy as np
import pytest
import torch

from reprozoo.activeasr.acquisition import (
    frame_entropy,
    least_confidence,
    mc_dropout_mode,
    mean_pairwise_cer,
    select_top,
)
from reprozoo.activeasr.consistency import frame_confidence, pseudo_labels, ramp_weight
from reprozoo.activeasr.loop import ALConfig, LabelLedger, Oracle, run_active_learning
from reprozoo.activeasr.text import SYMBOLS, VOCAB_SIZE
from reprozoo.activeasr.training import CTCTrainer, SpeechSet, TrainSettings
from reprozoo.errors import ConfigError, DataError
from reprozoo.runtime.registry import create_model


def _posteriors(paths, p_best):
    """(T, B, V) log-posteriors whose frame t of utterance b puts p_best[b] on paths[b][t]."""
    T, B = max(len(p) for p in paths), len(paths)
    probs = torch.zeros(T, B, VOCAB_SIZE)
    for b, (path, p) in enumerate(zip(paths, p_best)):
        for t in range(T):
            s = path[t] if t < len(path) else 0
            probs[t, b] = (1 - p) / (VOCAB_SIZE - 1)
            probs[t, b, s] = p
    return probs.log(), torch.tensor([len(p) for p in paths])


def test_least_confidence_orders_uncertain_first_and_is_length_normalised():
    a = SYMBOLS.index("a")
    lp, n = _posteriors([[a, 0, a, 0], [a, 0, a, 0]], [0.99, 0.6])
    lc = least_confidence(lp, n)
    assert lc[1] > lc[0]
    assert lc[0].item() == pytest.approx(-4 * math.log(0.99) / 2)  # 4 frames, 2 characters
    # a long confident utterance is not favoured over a short uncertain one
    lp2, n2 = _posteriors([[a, 0] * 20, [a, 0]], [0.95, 0.7])
    s = least_confidence(lp2, n2)
    assert s[1] > s[0]
    assert least_confidence(lp2, n2, norm="frames")[1] > least_confidence(lp2, n2, norm="frames")[0]


def test_frame_entropy_of_uniform_and_peaked_frames():
    lp = torch.full((3, 1, VOCAB_SIZE), -math.log(VOCAB_SIZE))
    assert frame_entropy(lp, torch.tensor([3])).item() == pytest.approx(math.log(VOCAB_SIZE), rel=1e-5)
    lp2, n2 = _posteriors([[1, 1, 1]], [0.999])
    assert frame_entropy(lp2, n2).item() < 0.02


def test_mean_pairwise_cer():
    assert mean_pairwise_cer(["abc", "abc", "abc"]) == 0.0
    assert mean_pairwise_cer(["ab", "ab", "ba"]) == pytest.approx(2 / 3)


def test_select_top_breaks_ties_with_the_rng_and_respects_budgets():
    scores = [0.1, 0.9, 0.5, 0.5, 0.5]
    first = select_top(scores, 2, rng=np.random.default_rng(0))
    assert first[0] == 1 and first[1] in (2, 3, 4)
    picks = {tuple(select_top(scores, 2, rng=np.random.default_rng(s))) for s in range(20)}
    assert len(picks) > 1  # ties resolved differently for different seeds
    assert select_top(scores, 2, rng=np.random.default_rng(0)) == first
    costs = [1.0, 3.0, 2.0, 2.0, 1.5]
    chosen = select_top(scores, 4.0, costs=costs, rng=np.random.default_rng(0))
    assert chosen[0] == 1 and sum(costs[i] for i in chosen) <= 4.0 and 0 in chosen


def test_oracle_and_ledger_refuse_double_labels():
    oracle = Oracle(["a", "b", "c"], [1.0, 2.0, 3.0])
    assert oracle.label([0, 2]) == ["a", "c"] and oracle.seconds == 4.0
    with pytest.raises(DataError, match=r"\[2\] were already labelled"):
        oracle.label([2, 1])
    ledger = LabelLedger(3)
    ledger.add([0], [1.0, 2.0, 3.0])
    with pytest.raises(DataError, match="labelled twice"):
        ledger.add([0, 1], [1.0, 2.0, 3.0])
    assert ledger.unlabelled == [1, 2]


def test_ramp_and_confidence_filter():
    assert ramp_weight(0, lambda_max=1.0, ramp_steps=10) == pytest.approx(math.exp(-5))
    assert ramp_weight(5, lambda_max=2.0, ramp_steps=10) == pytest.approx(2 * math.exp(-1.25))
    assert ramp_weight(10, lambda_max=1.0, ramp_steps=10) == 1.0
    assert ramp_weight(3, lambda_max=1.0, ramp_steps=10, start_step=5) == 0.0
    a = SYMBOLS.index("a")
    lp, n = _posteriors([[a, 0, a], [a, 0, a], [0, 0, 0]], [0.95, 0.5, 0.99])
    assert frame_confidence(lp, n)[0].item() == pytest.approx(0.95, rel=1e-5)
    labels, conf, keep = pseudo_labels(lp, n, tau=0.9)
    assert labels[0] == [a, a] and keep.tolist() == [True, False, False]  # low confidence / empty dropped


def test_mc_dropout_mode_enables_only_dropout():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2), torch.nn.Dropout(0.5))
    model.train()
    with mc_dropout_mode(model):
        assert model[2].training and not model[1].training
    assert model[1].training


def _toy_set(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    waves = [0.1 * torch.randn(int(1600 + 800 * (i % 3)), generator=g) for i in range(n)]
    texts = ["call anna" if i % 2 else "play jazz" for i in range(n)]
    return SpeechSet(waves, texts, [str(i) for i in range(n)], [w.numel() / 16000 for w in waves])


@pytest.mark.parametrize("acq,unsup,unit", [("least_confidence", "cr", "utterances"), ("mc_dropout", "pl", "seconds"),
                                            ("frame_entropy", "none", "utterances")])
def test_loop_bookkeeping(acq, unsup, unit):
    torch.manual_seed(0)
    pool, test = _toy_set(12), _toy_set(3, seed=1)
    per_round = 3 if unit == "utterances" else 0.5
    cfg = ALConfig(acquisition=acq, unsup=unsup, initial=3, per_round=per_round, rounds=2, budget_unit=unit,
                   steps_per_round=2, mc_samples=2)
    trainer = CTCTrainer(create_model("ctc_tcn_tiny"), TrainSettings(batch_size=2, mu=1, tau=0.0), total_steps=6,
                         generator=torch.Generator().manual_seed(0))
    out = run_active_learning(trainer, pool, test, cfg, rng=np.random.default_rng(0), keep_examples=2)
    labelled = out["labelled"]
    assert len(set(labelled)) == len(labelled)
    assert [p["step"] for p in out["points"]] == [2, 4, 6]
    if unit == "utterances":
        assert [p["labelled"] for p in out["points"]] == [3, 6, 9]
    else:
        assert all(r["seconds"] <= 0.5 + 1e-9 for r in out["rounds"][1:])
    assert out["oracle_seconds"] == pytest.approx(sum(pool.durations[i] for i in labelled))
    assert all(0 <= p["cer"] for p in out["points"]) and len(out["points"][-1]["examples"]) == 2


def test_budget_larger_than_pool_is_refused():
    with pytest.raises(ConfigError, match=r"exceeds the pool \(10\)"):
        ALConfig(initial=5, per_round=3, rounds=2).validate(10)
    with pytest.raises(ConfigError, match="unknown acquisition"):
        ALConfig(acquisition="bald").validate()
