"""Baselines on the same prepared corpus (same vocabulary, same K, same seed):

- :class:`ProdLDA`: the same inference network and training loop fed word counts, decoder
  ``softmax(BN(theta beta))`` over words -- TVQ-VAE without the codebook;
- :func:`lda`: gensim's ``LdaModel`` (``alpha="auto"``);
- :func:`embedding_clusters`: what a practitioner reaches for first (BERTopic's recipe without the
  UMAP/HDBSCAN extras): k-means on the same MiniLM sentence embeddings, topic words by
  class-based TF-IDF ``tf(w, c) * log(1 + A / f(w))`` (A = mean words per cluster);
- :func:`random_topics`: the negative control, random word lists from the vocabulary and random
  mixtures;
- :func:`planted_topics`: the positive control's weaker arm, embedding clusters of an independent
  k-means draw whose last NPMI words are replaced by random vocabulary words (a known loss).

Each returns ``(topics, theta)``: ``topics[k]`` the ranked top words, ``theta`` (N, K).
"""

from __future__ import annotations

import logging
import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.utils.validation import check_is_fitted, check_non_negative, validate_data

from reprozoo.errors import ConfigError, DataError
from reprozoo.runtime.accel import resolve_device
from reprozoo.runtime.checks import finite_array, integer, integer_labels
from reprozoo.tvqvae.corpus import PreparedCorpus
from reprozoo.tvqvae.estimator import seed_from
from reprozoo.tvqvae.models import BowDecoder, TopicEncoder, TopicModel
from reprozoo.tvqvae.preprocess import Vocabulary
from reprozoo.tvqvae.training import train_topic_model

logger = logging.getLogger(__name__)


def _top(matrix: np.ndarray, words: list[str], top_n: int) -> list[list[str]]:
    order = np.argsort(-matrix, axis=1, kind="stable")[:, :top_n]
    return [[words[i] for i in row] for row in order]


def _check_k(k: int, data: PreparedCorpus) -> None:
    n, v = data.bow.shape
    if not 2 <= k <= min(n, v):
        raise DataError(f"K={k} must be in 2..min(documents, vocabulary) = {min(n, v)}")


def _one_line(msg: str) -> str:
    """The first sentence of scikit-learn's input-validation message (plus its reshape hint)."""
    first = msg.splitlines()[0] if msg else "invalid input"
    if "contains" in first and ". " in first:  # "Input X contains NaN. <long advice>"
        first = first.split(". ")[0] + "."
    if "Reshape your data" in msg:
        first += " Reshape your data: one row of word counts per document."
    return first


class ProdLDA(TransformerMixin, BaseEstimator):
    """ProdLDA (Srivastava & Sutton, 2017) with TVQ-VAE's inference network, on word counts.

    A scikit-learn transformer: ``fit(X)`` on a bag-of-words count matrix ``(n_docs, V)`` (dense or
    sparse, counts >= 0), ``transform(X)`` gives the topic mixtures ``(n_docs, K)`` (float32, softmax
    of the posterior mean). ``fit_prepared(data)`` fits on a :class:`PreparedCorpus` and keeps its
    vocabulary for :meth:`get_topics`."""

    def __init__(self, n_topics: int = 20, *, epochs: int = 300, lr: float = 1e-3, batch_size: int = 256,
                 hidden: tuple[int, ...] = (100, 100), device: str = "auto",
                 random_state: int | np.random.RandomState | None = 0, verbose: bool | None = False):
        self.n_topics, self.epochs, self.lr, self.batch_size, self.hidden = n_topics, epochs, lr, batch_size, hidden
        self.device, self.random_state, self.verbose = device, random_state, verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True  # counts
        tags.transformer_tags.preserves_dtype = ["float32"]  # mixtures are float32 whatever the input
        return tags

    def _counts(self, X: Any, reset: bool) -> np.ndarray:
        try:
            X = validate_data(self, X, accept_sparse=("csr", "csc", "coo"), dtype=np.float32, reset=reset,
                              ensure_min_samples=2 if reset else 1)
            check_non_negative(X, f"{type(self).__name__} (word counts)")
        except ValueError as err:  # scikit-learn's message, on one line
            raise DataError(_one_line(str(err))) from None
        return np.ascontiguousarray(X.toarray() if sp.issparse(X) else X, dtype=np.float32)

    def fit(self, X: Any, y: Any = None) -> ProdLDA:
        """Fit on word counts ``X`` ``(n_docs, V)``; returns ``self``."""
        if not (isinstance(self.n_topics, numbers.Integral) and isinstance(self.epochs, numbers.Integral)
                and self.epochs >= 1 and self.lr > 0 and isinstance(self.batch_size, numbers.Integral)
                and self.batch_size >= 2):
            raise ConfigError(f"ProdLDA needs an integer n_topics, epochs >= 1, lr > 0 and batch_size >= 2, got "
                              f"{self.n_topics}, {self.epochs}, {self.lr}, {self.batch_size}")
        bow = self._counts(X, reset=True)
        n_docs, n_words = bow.shape
        if not 2 <= self.n_topics <= min(n_docs, n_words):
            raise DataError(f"K={self.n_topics} must be in 2..min(documents, vocabulary) = {min(n_docs, n_words)} "
                            f"(n_samples = {n_docs}, n_features = {n_words})")
        seed = seed_from(self.random_state)
        gen = torch.Generator().manual_seed(seed)
        logger.info("ProdLDA: K=%d, %d epochs on %d documents x %d words", self.n_topics, self.epochs, n_docs,
                    n_words)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = TopicModel(TopicEncoder(n_words, self.n_topics, tuple(self.hidden)),
                               BowDecoder(self.n_topics, n_words))
            counts = torch.from_numpy(bow)
            self.history_ = train_topic_model(model, counts, counts, epochs=self.epochs, lr=self.lr,
                                              batch_size=self.batch_size, gen=gen,
                                              device=torch.device(resolve_device(self.device)), progress=self.verbose,
                                              name="ProdLDA")
        self.model_ = model.cpu()
        self.topics_ = model.decoder.topic_word().numpy()
        names = getattr(self, "feature_names_in_", None)
        self.vocab_ = Vocabulary([str(w) for w in names] if names is not None else [str(i) for i in range(n_words)])
        return self

    def fit_prepared(self, data: PreparedCorpus) -> ProdLDA:
        """Fit on the counts of a prepared corpus, keeping its vocabulary for the topic words."""
        self.fit(data.bow)
        self.vocab_ = data.vocab
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Topic mixtures ``(n_docs, K)`` of word counts."""
        check_is_fitted(self)
        bow = torch.from_numpy(self._counts(X, reset=False))
        self.model_.eval()
        with torch.no_grad():
            return self.model_.theta(bow).numpy()

    def transform_bow(self, bow: np.ndarray) -> np.ndarray:
        return self.transform(bow)

    def get_topics(self, top_n: int = 10) -> list[list[str]]:
        check_is_fitted(self)
        return _top(self.topics_, self.vocab_.words, top_n)


def prodlda(data: PreparedCorpus, k: int, seed: int, *, epochs: int = 300, lr: float = 1e-3, batch_size: int = 256,
            top_n: int = 25, device: str = "auto") -> tuple[list[list[str]], np.ndarray]:
    _check_k(k, data)
    m = ProdLDA(k, epochs=epochs, lr=lr, batch_size=batch_size, device=device, random_state=seed).fit_prepared(data)
    return m.get_topics(top_n), m.transform_bow(data.bow)


def lda(data: PreparedCorpus, k: int, seed: int, *, passes: int = 20, iterations: int = 100,
        top_n: int = 25) -> tuple[list[list[str]], np.ndarray]:
    """gensim LDA with a learned asymmetric document prior (``alpha="auto"``)."""
    from reprozoo.runtime.extras import require

    LdaModel = require("gensim.models", what="the LDA baseline").LdaModel  # noqa: N806
    _check_k(k, data)
    id2word = dict(enumerate(data.vocab.words))
    corpus = [[(int(j), int(c)) for j, c in zip(np.flatnonzero(row), row[row > 0])] for row in data.bow]
    model = LdaModel(corpus, num_topics=k, id2word=id2word, passes=passes, iterations=iterations, alpha="auto",
                     eta="auto", random_state=seed, eval_every=None)
    theta = np.zeros((len(corpus), k))
    for i, doc in enumerate(corpus):
        for t, p in model.get_document_topics(doc, minimum_probability=0.0):
            theta[i, t] = p
    return _top(model.get_topics(), data.vocab.words, top_n), theta


def ctfidf(bow: np.ndarray, clusters: np.ndarray, k: int) -> np.ndarray:
    """Class-based TF-IDF (K x V): ``tf(w, c) * log(1 + A / f(w))``, tf L1-normalised per class."""
    bow, k = finite_array("bow", bow, ndim=2), integer("k", k, lo=1)
    clusters = integer_labels("clusters", clusters, lo=0, hi=k - 1)
    if len(clusters) != len(bow) or (bow < 0).any():
        raise DataError(f"bow must hold counts >= 0 with one cluster per row, got {len(bow)} rows and "
                        f"{len(clusters)} clusters")
    tf = np.zeros((k, bow.shape[1]))
    np.add.at(tf, clusters, bow)
    avg_words = tf.sum() / k
    freq = tf.sum(0)
    idf = np.log(1.0 + avg_words / np.maximum(freq, 1e-12))
    tf = tf / np.maximum(tf.sum(1, keepdims=True), 1e-12)
    return tf * idf


def embedding_clusters(data: PreparedCorpus, k: int, seed: int, *, top_n: int = 25) -> tuple[list[list[str]], np.ndarray]:
    """k-means on the sentence embeddings; one-hot theta; class-TF-IDF topic words."""
    _check_k(k, data)
    clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(data.encoded.sentence)
    theta = np.eye(k)[clusters]
    return _top(ctfidf(data.bow, clusters, k), data.vocab.words, top_n), theta


def random_topics(data: PreparedCorpus, k: int, seed: int, *, top_n: int = 25) -> tuple[list[list[str]], np.ndarray]:
    """Negative control: K random word lists (without replacement) and Dirichlet(1) mixtures."""
    _check_k(k, data)
    rng = np.random.default_rng(seed)
    words = data.vocab.words
    n = min(top_n, len(words))
    topics = [[words[i] for i in rng.choice(len(words), n, replace=False)] for _ in range(k)]
    return topics, rng.dirichlet(np.ones(k), size=data.bow.shape[0])


def planted_topics(data: PreparedCorpus, k: int, seed: int, *, n_planted: int = 1, npmi_topn: int = 10,
                   seed_offset: int = 7919, top_n: int = 25) -> tuple[list[list[str]], np.ndarray]:
    """Positive-control arm: :func:`embedding_clusters` on an independent k-means draw (``seed +
    seed_offset``, so its seed-to-seed noise is as large as the baseline's own), then in every topic
    the words at ranks ``npmi_topn - n_planted + 1 .. npmi_topn`` (the last ones NPMI reads) are
    replaced by random vocabulary words not already in that topic. A random word co-occurs with the
    topic's words no more than chance, so the arm is worse than the intact baseline by construction."""
    if not 1 <= n_planted <= npmi_topn <= top_n:
        raise ConfigError(f"planted words must satisfy 1 <= n_planted ({n_planted}) <= npmi_topn ({npmi_topn}) "
                          f"<= top_n ({top_n})")
    topics, theta = embedding_clusters(data, k, seed + seed_offset, top_n=top_n)
    rng = np.random.default_rng(seed)
    words = data.vocab.words
    planted = []
    for topic in topics:
        topic = list(topic)
        taken = set(topic)
        free = [i for i in range(len(words)) if words[i] not in taken]
        picks = rng.choice(len(free), size=min(n_planted, len(free)), replace=False)
        for pos, j in zip(range(npmi_topn - n_planted, npmi_topn), picks):
            topic[pos] = words[free[int(j)]]
        planted.append(topic)
    return planted, theta
