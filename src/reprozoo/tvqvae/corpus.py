"""Corpus preparation shared by every topic model: the kept documents, their content words, the
output vocabulary, word counts and the token embeddings of in-vocabulary words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reprozoo.data.textcorpora import TextCorpus
from reprozoo.errors import DataError
from reprozoo.tvqvae.embeddings import EncodedCorpus, TokenEncoder
from reprozoo.tvqvae.preprocess import Vocabulary, tokenize

__all__ = ["PreparedCorpus", "prepare_corpus"]


@dataclass
class PreparedCorpus:
    """A corpus ready for every topic model: kept documents, their content words, the output
    vocabulary, word counts and the token embeddings of in-vocabulary words."""

    texts: list[str]
    tokens: list[list[str]]
    labels: np.ndarray | None
    label_names: list[str]
    vocab: Vocabulary
    bow: np.ndarray  # (N, V) float32
    encoded: EncodedCorpus  # tokens restricted to the vocabulary, doc ids into the kept documents
    n_skipped: int  # documents dropped: no content word, or none in the vocabulary

    def token_ids(self) -> np.ndarray:
        return np.asarray([self.vocab.index[w] for w in self.encoded.words], dtype=np.int64)


def _as_texts(docs: Any) -> tuple[list[str], list[str] | None]:
    if isinstance(docs, TextCorpus):
        return list(docs.texts), docs.labels
    if isinstance(docs, str):
        raise DataError("docs must be a list of documents, not one string")
    texts = list(docs)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise DataError(f"docs must be strings; item {bad[0]} is {type(texts[bad[0]]).__name__}")
    return texts, None


def prepare_corpus(docs: Any, encoder: TokenEncoder, *, labels: list[str] | None = None, min_df: int = 2,
                   max_df: float = 0.5, min_len: int = 3, vocab: Vocabulary | None = None,
                   max_topics: int | None = None) -> PreparedCorpus:
    texts, own_labels = _as_texts(docs)
    labels = labels if labels is not None else own_labels
    if not texts:
        raise DataError("the corpus is empty; pass at least one document")
    if labels is not None and len(labels) != len(texts):
        raise DataError(f"{len(labels)} labels for {len(texts)} documents")
    tokens = [tokenize(t, min_len) for t in texts]
    nonempty = [i for i, t in enumerate(tokens) if t]
    if not nonempty:
        raise DataError(f"all {len(texts)} documents are empty after preprocessing (no content words of "
                        f">= {min_len} letters outside the stop words)")
    if vocab is None:
        allowed = encoder.whole_word_vocab() if encoder.pooling == "whole" else None
        vocab = Vocabulary.build([tokens[i] for i in nonempty], min_df=min_df, max_df=max_df, allowed=allowed)
    keep = [i for i in nonempty if any(w in vocab for w in tokens[i])]
    if not keep:
        raise DataError("no document holds a vocabulary word; use more documents or a lower min_df")
    if max_topics is not None and max_topics > min(len(keep), len(vocab.words)):
        raise DataError(f"K={max_topics} is larger than the number of documents ({len(keep)}) or the vocabulary "
                        f"({len(vocab.words)} words); use fewer topics or a larger corpus")
    enc = encoder.encode([texts[i] for i in keep])
    in_vocab = np.asarray([w in vocab.index for w in enc.words], dtype=bool)
    enc = EncodedCorpus(enc.vectors[in_vocab], enc.doc[in_vocab], enc.words[in_vocab], enc.sentence)
    kept_tokens = [[w for w in tokens[i] if w in vocab] for i in keep]
    names = sorted(set(labels)) if labels is not None else []
    lab = (np.asarray([names.index(labels[i]) for i in keep], dtype=np.int64) if labels is not None else None)
    return PreparedCorpus([texts[i] for i in keep], kept_tokens, lab, names, vocab, vocab.bow(kept_tokens), enc,
                          len(texts) - len(keep))
