"""Topic-quality and clustering metrics.

- NPMI coherence: gensim's ``CoherenceModel(coherence="c_npmi", topn=10)`` with the corpus itself
  as the reference texts (boolean sliding window of 10; a shorter document is one window).
  Reported two ways: the mean over **all** topics (what OCTIS / gensim users report) and the
  TVQ-VAE paper's protocol, the mean over the **best 50%** of topics. For odd K the released
  evaluation code (``utils.measurement``) computes ``2 (c_1 + ... + c_m) / K`` with m = K // 2
  best topics, i.e. (K - 1)/K x the mean of the best m; ours is the plain mean of the best m
  (``best50="mean"``, the default) and ``best50="released"`` reproduces the released number. Both
  agree for even K.
- C_V coherence (gensim ``c_v``), diversity@25 (unique words / (25 x topics)), TQ = NPMI x diversity
  (under each protocol, diversity over the same topics).
- NMI and purity of document clusters against labels: k-means (k = K) on theta, and argmax theta.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from reprozoo.errors import DataError
from reprozoo.runtime.checks import finite_array, integer


def _dictionary(texts: Sequence[Sequence[str]]):
    from reprozoo.runtime.extras import require

    return require("gensim.corpora", what="topic coherence").Dictionary(texts)


def coherence_per_topic(topics: Sequence[Sequence[str]], texts: Sequence[Sequence[str]], measure: str = "c_npmi",
                        topn: int = 10, dictionary=None) -> np.ndarray:
    """Per-topic coherence of the first ``topn`` words of each topic against ``texts``."""
    from reprozoo.runtime.extras import require

    CoherenceModel = require("gensim.models", what="topic coherence").CoherenceModel  # noqa: N806
    if not topics:
        raise DataError("no topics to score")
    dictionary = dictionary if dictionary is not None else _dictionary(texts)
    known = dictionary.token2id
    cut = [[w for w in t[:topn]] for t in topics]
    missing = sorted({w for t in cut for w in t if w not in known})
    if missing:
        raise DataError(f"topic words not in the reference corpus: {missing[:5]}")
    if any(len(t) < 2 for t in cut):
        raise DataError("every topic needs at least 2 words for coherence")
    cm = CoherenceModel(topics=cut, texts=[list(t) for t in texts], dictionary=dictionary, coherence=measure,
                        topn=topn, processes=1)
    return np.asarray(cm.get_coherence_per_topic(), dtype=np.float64)


BEST50_RULES = ("mean", "released")


def top_words(topic_word: np.ndarray, words: Sequence[str], topn: int = 25) -> list[list[str]]:
    """The ``topn`` highest-scoring words of each row of a K x V topic-word matrix, best first."""
    scores = np.asarray(topic_word)
    if scores.ndim != 2 or scores.shape[1] != len(words):
        raise DataError(f"topic_word must be K x {len(words)} (one column per word), got shape {scores.shape}")
    scores = finite_array("topic_word", scores)
    topn = integer("topn", topn, lo=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :topn]
    return [[words[i] for i in row] for row in order]


def best_half(scores: np.ndarray) -> np.ndarray:
    """Indices of the best 50% of topics by score (at least one), best first."""
    scores = finite_array("scores", scores, ndim=1, allow_empty=False)
    n = max(1, len(scores) // 2)
    return np.argsort(-scores, kind="stable")[:n]


def diversity(topics: Sequence[Sequence[str]], topn: int = 25) -> float:
    """Unique words among the top ``topn`` of all topics / (topn x number of topics)."""
    if not topics:
        raise DataError("no topics")
    words = [w for t in topics for w in t[:topn]]
    return len(set(words)) / float(topn * len(topics))


def topic_quality(topics: Sequence[Sequence[str]], texts: Sequence[Sequence[str]], *, npmi_topn: int = 10,
                  div_topn: int = 25, with_cv: bool = True, dictionary=None,
                  best50: str = "mean") -> dict[str, float | list[float]]:
    """NPMI (all / best-50%), diversity and TQ under both protocols, and C_V (all topics).
    ``best50``: ``"mean"`` (the mean NPMI of the best K // 2 topics) or ``"released"`` (the
    released code's ``2 (c_1 + ... + c_m) / K``; differs for odd K)."""
    if best50 not in BEST50_RULES:
        raise DataError(f"best50 must be one of {', '.join(BEST50_RULES)}, got {best50!r}")
    if best50 == "released" and len(topics) < 2:
        raise DataError("best50='released' needs at least 2 topics (the released code divides by K // 2)")
    dictionary = dictionary if dictionary is not None else _dictionary(texts)
    npmi = coherence_per_topic(topics, texts, "c_npmi", npmi_topn, dictionary)
    best = best_half(npmi)
    npmi_best = float(npmi[best].mean()) if best50 == "mean" else float(2.0 * npmi[best].sum() / len(npmi))
    div_all = diversity(topics, div_topn)
    div_best = diversity([topics[i] for i in best], div_topn)
    out: dict[str, float | list[float]] = {
        "npmi_all": float(npmi.mean()), "npmi_best50": npmi_best,
        "diversity_all": div_all, "diversity_best50": div_best,
        "tq_all": float(npmi.mean()) * div_all, "tq_best50": npmi_best * div_best,
        "npmi_per_topic": npmi.tolist(),
    }
    if with_cv:
        out["cv_all"] = float(coherence_per_topic(topics, texts, "c_v", npmi_topn, dictionary).mean())
    return out


def _labels(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1 or arr.size == 0:
        raise DataError(f"{name} must be a non-empty 1-D sequence (one per document), got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataError(f"{name} must not hold NaN or inf; index {int(np.flatnonzero(~np.isfinite(arr))[0])} does")
    if arr.dtype == object and any(v is None for v in arr):
        raise DataError(f"{name} must not hold None")
    return arr


def purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Share of documents whose cluster's majority label is their own label (labels and clusters
    of any hashable kind: ints, strings, ...)."""
    from sklearn.metrics.cluster import contingency_matrix

    labels, clusters = _labels(labels, "labels"), _labels(clusters, "clusters")
    if len(labels) != len(clusters):
        raise DataError(f"{len(labels)} labels but {len(clusters)} cluster assignments")
    table = contingency_matrix(labels, clusters)  # classes x clusters
    return float(table.max(axis=0).sum() / len(labels))


def clustering_scores(theta: np.ndarray, labels: np.ndarray, n_clusters: int, seed: int = 0) -> dict[str, float]:
    """NMI and purity of k-means(theta) (k = ``n_clusters``) and of argmax theta against labels."""
    theta = finite_array("theta", theta, ndim=2, allow_empty=False)
    labels = _labels(labels, "labels")
    n_clusters = integer("n_clusters", n_clusters, lo=1)
    if len(theta) != len(labels):
        raise DataError(f"{len(theta)} documents but {len(labels)} labels")
    km = KMeans(n_clusters=min(n_clusters, len(np.unique(theta, axis=0))), n_init=10,
                random_state=seed).fit_predict(theta)
    am = theta.argmax(1)
    return {"nmi_kmeans": float(normalized_mutual_info_score(labels, km)), "purity_kmeans": purity(labels, km),
            "nmi_argmax": float(normalized_mutual_info_score(labels, am)), "purity_argmax": purity(labels, am)}


def npmi_pair(p_i: float, p_j: float, p_ij: float, eps: float = 1e-12) -> float:
    """NPMI of one word pair from window probabilities (gensim's formula, with its epsilon)."""
    return math.log((p_ij + eps) / (p_i * p_j)) / -math.log(p_ij + eps)
