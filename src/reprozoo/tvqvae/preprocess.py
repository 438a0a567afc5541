"""Word-side preprocessing without NLTK downloads: a regex tokenizer, scikit-learn's English stop
words, and a document-frequency-filtered vocabulary with bag-of-words counts from scikit-learn's
``CountVectorizer`` (fed the already tokenized documents).

The released TVQ-VAE code downloads NLTK data (punkt, stopwords, WordNet) at start; here the word
side is ``[a-z]+`` tokens of at least ``min_len`` letters, minus scikit-learn's
``ENGLISH_STOP_WORDS``, without lemmatisation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from reprozoo.errors import DataError

WORD_RE = re.compile(r"[a-z]+")
EXTRA_STOP = frozenset({"br", "don", "doesn", "didn", "isn", "aren", "wasn", "won", "ll", "ve", "re"})


def word_spans(text: str, min_len: int = 3, stop_words: frozenset[str] | None = None) -> list[tuple[int, int, str]]:
    """Content words of ``text`` as ``(start, end, word)`` character spans of the lower-cased text."""
    if not isinstance(text, str):
        raise DataError(f"a document must be a string, got {type(text).__name__} {text!r:.40}")
    stop = ENGLISH_STOP_WORDS | EXTRA_STOP if stop_words is None else stop_words
    return [(m.start(), m.end(), m.group()) for m in WORD_RE.finditer(text.lower())
            if len(m.group()) >= min_len and m.group() not in stop]


def tokenize(text: str, min_len: int = 3, stop_words: frozenset[str] | None = None) -> list[str]:
    """Lower-cased alphabetic content words of ``text`` (stop words and short words dropped)."""
    return [w for _, _, w in word_spans(text, min_len, stop_words)]


def _pretokenized(doc: Sequence[str]) -> Sequence[str]:
    """CountVectorizer's analyzer for documents that are already lists of words."""
    return doc


@dataclass
class Vocabulary:
    """Output vocabulary: ``words[i]`` has id ``i``."""

    words: list[str]

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    @classmethod
    def build(cls, docs: Sequence[Sequence[str]], min_df: int = 2, max_df: float = 0.5,
              allowed: Iterable[str] | None = None) -> Vocabulary:
        """Words in at least ``min_df`` documents and at most a ``max_df`` share of them (and in
        ``allowed`` when given, e.g. the encoder's whole-word tokens), sorted alphabetically."""
        if min_df < 1 or not 0 < max_df <= 1:
            raise DataError(f"min_df must be >= 1 and max_df in (0, 1], got {min_df}, {max_df}")
        # CountVectorizer keeps words with min_df <= df <= max_df * n_docs (an int min_df is a count,
        # a float max_df a share) and sorts them; it refuses a filter that leaves nothing
        vec = CountVectorizer(analyzer=_pretokenized, min_df=int(min_df), max_df=float(max_df))
        try:
            vec.fit(docs)
            words = vec.get_feature_names_out().tolist()
        except ValueError:  # "After pruning, no terms remain" / "empty vocabulary"
            words = []
        if allowed is not None:
            keep = set(allowed)
            words = [w for w in words if w in keep]
        if not words:
            raise DataError(f"the vocabulary is empty after filtering ({len(docs)} documents, min_df={min_df}, "
                            f"max_df={max_df}); use more documents or a lower min_df")
        return cls(words)

    def ids(self, doc: Sequence[str]) -> list[int]:
        return [self.index[w] for w in doc if w in self.index]

    def counts(self, docs: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """Sparse int64 count matrix ``(n_docs, V)`` of tokenized documents (out-of-vocabulary
        words are ignored)."""
        vec = CountVectorizer(analyzer=_pretokenized, vocabulary=self.words, dtype=np.int64)
        return sp.csr_matrix(vec.transform(docs))

    def bow(self, docs: Sequence[Sequence[str]]) -> np.ndarray:
        """Dense float32 count matrix ``(n_docs, V)`` (what the topic networks train on)."""
        return self.counts(docs).toarray().astype(np.float32)

    def to_list(self) -> list[str]:
        return list(self.words)
