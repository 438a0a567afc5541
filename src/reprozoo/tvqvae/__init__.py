"""TVQ-VAE (Yoo & Choi, AAAI 2024): topic modelling on a VQ codebook of language-model token embeddings.

Library parts: the estimator :class:`TVQVAE` (:mod:`.estimator`, a scikit-learn estimator), corpus
preparation (:mod:`.corpus`), the networks (:mod:`.models`),
offline token embeddings (:mod:`.embeddings`), preprocessing (:mod:`.preprocess`), topic metrics
(:mod:`.metrics`) and baselines on the same corpus (:mod:`.baselines`).
"""

from reprozoo.tvqvae import models  # noqa: F401  (registers the networks)
from reprozoo.tvqvae.corpus import PreparedCorpus, prepare_corpus
from reprozoo.tvqvae.embeddings import EncodedCorpus, TokenEncoder
from reprozoo.tvqvae.estimator import TVQVAE, NotFittedError, check_is_fitted  # scikit-learn's, re-exported
from reprozoo.tvqvae.metrics import clustering_scores, coherence_per_topic, diversity, purity, topic_quality
from reprozoo.tvqvae.preprocess import Vocabulary, tokenize
from reprozoo.tvqvae.training import NonFiniteLossError

__all__ = [
    "TVQVAE", "EncodedCorpus", "NonFiniteLossError", "NotFittedError", "PreparedCorpus", "TokenEncoder",
    "Vocabulary", "check_is_fitted", "clustering_scores", "coherence_per_topic", "diversity", "prepare_corpus",
    "purity", "tokenize", "topic_quality",
]
