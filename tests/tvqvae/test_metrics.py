import math

import numpy as np
import pytest

from reprozoo.errors import DataError
from reprozoo.tvqvae.metrics import (
    best_half,
    clustering_scores,
    coherence_per_topic,
    diversity,
    npmi_pair,
    purity,
    topic_quality,
)

# four documents shorter than gensim's window of 10: each document is one window
TEXTS = [["apple", "banana"], ["apple", "banana"], ["apple", "cherry"], ["date"]]


def test_npmi_matches_hand_computed_values():
    # P(apple)=3/4, P(banana)=2/4, P(apple,banana)=2/4 -> log(0.5/0.375)/-log(0.5) = 0.41504
    by_hand_1 = math.log(0.5 / (0.75 * 0.5)) / -math.log(0.5)
    assert by_hand_1 == pytest.approx(0.4150375, abs=1e-7)
    # apple-cherry co-occur once; date never co-occurs (NPMI -> -1 up to gensim's epsilon)
    ac = math.log(0.25 / (0.75 * 0.25)) / -math.log(0.25)
    ad = math.log(1e-12 / (0.75 * 0.25)) / -math.log(1e-12)
    cd = math.log(1e-12 / (0.25 * 0.25)) / -math.log(1e-12)
    by_hand_2 = (ac + ad + cd) / 3
    assert by_hand_2 == pytest.approx(-0.5438516, abs=1e-7)
    got = coherence_per_topic([["apple", "banana"], ["apple", "cherry", "date"]], TEXTS)
    assert got == pytest.approx([by_hand_1, by_hand_2], abs=1e-9)
    assert npmi_pair(0.75, 0.5, 0.5) == pytest.approx(by_hand_1)


def test_best_half_diversity_and_tq_protocols():
    assert best_half(np.array([0.1, 0.5, -0.2, 0.3])).tolist() == [1, 3]
    assert best_half(np.array([0.2, 0.1, 0.3])).tolist() == [2]  # floor(3 / 2) = 1 topic
    assert diversity([["a", "b"], ["b", "c"]], topn=2) == 0.75
    assert diversity([["a", "b", "x"], ["c", "d", "x"]], topn=2) == 1.0  # only the top-n count
    q = topic_quality([["apple", "banana"], ["apple", "cherry", "date"]], TEXTS, div_topn=2, with_cv=False)
    assert q["npmi_best50"] == pytest.approx(0.4150375, abs=1e-7)
    assert q["npmi_all"] == pytest.approx((0.4150375 - 0.5438516) / 2, abs=1e-6)
    assert q["diversity_all"] == 0.75 and q["diversity_best50"] == 1.0
    assert q["tq_all"] == pytest.approx(q["npmi_all"] * 0.75)
    assert q["tq_best50"] == pytest.approx(q["npmi_best50"])


def test_cv_is_reported_and_bad_topics_are_refused():
    texts = [["apple", "banana", "cherry"], ["apple", "banana"], ["cherry", "date"], ["date", "apple"]] * 3
    q = topic_quality([["apple", "banana"], ["cherry", "date"]], texts)
    assert -1.0 <= q["cv_all"] <= 1.0
    with pytest.raises(DataError, match="not in the reference corpus"):
        coherence_per_topic([["apple", "zebra"]], TEXTS)
    with pytest.raises(DataError, match="at least 2 words"):
        coherence_per_topic([["apple"]], TEXTS)


def test_purity_and_nmi_on_hand_cases():
    labels = np.array([0, 0, 0, 1, 1, 2])
    assert purity(labels, np.array([0, 0, 1, 1, 1, 1])) == pytest.approx((2 + 2) / 6)
    theta = np.eye(3)[labels] * 0.9 + 0.1 / 3
    s = clustering_scores(theta, labels, 3)
    assert s["nmi_argmax"] == pytest.approx(1.0) and s["purity_argmax"] == 1.0
    assert s["nmi_kmeans"] == pytest.approx(1.0) and s["purity_kmeans"] == 1.0
    flat = clustering_scores(np.full((6, 3), 1 / 3), labels, 3)
    assert flat["nmi_argmax"] == pytest.approx(0.0, abs=1e-12) and flat["purity_argmax"] == pytest.approx(0.5)
