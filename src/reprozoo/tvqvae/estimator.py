"""scikit-learn-style TVQ-VAE: ``TVQVAE(n_topics=20).fit(docs)``, ``transform``, ``topics_``,
``get_topic``, ``generate``, ``save`` / ``load`` (safetensors + JSON, no pickle).

Pipeline (stages of the released document-analysis code): token embeddings of the content words
from a frozen encoder (A), a VQ autoencoder over them (B), per-document histograms over the
codebook -- the "conceptual bag of words" (C), and a ProdLDA-style topic model on the histograms
whose word decoder maps each topic's codebook embedding to the vocabulary (D).
"""

from __future__ import annotations

import logging
import numbers
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from reprozoo.errors import CheckpointError, ConfigError, DataError
from reprozoo.runtime.accel import resolve_device
from reprozoo.runtime.checks import finite_array, integer
from reprozoo.tvqvae.corpus import PreparedCorpus, _as_texts, prepare_corpus
from reprozoo.tvqvae.embeddings import POOLINGS, TokenEncoder
from reprozoo.tvqvae.models import TopicEncoder, TopicModel, TVQDecoder, VQAutoEncoder
from reprozoo.tvqvae.preprocess import Vocabulary
from reprozoo.tvqvae.training import code_histograms, train_topic_model, train_vq

logger = logging.getLogger(__name__)
# ``NotFittedError`` and ``check_is_fitted`` are scikit-learn's (re-exported for old imports)
__all__ = ["TVQVAE", "NotFittedError", "PreparedCorpus", "check_is_fitted", "prepare_corpus", "seed_from"]


def seed_from(random_state: Any) -> int:
    """An integer seed from a scikit-learn ``random_state``: an int is used as is; ``None`` or a
    ``numpy.random.RandomState`` draws one (so ``None`` gives a different model on every fit)."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if not 0 <= int(random_state) < 2**63:
            raise ConfigError(f"random_state must be >= 0, got {random_state}")
        return int(random_state)
    try:
        return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    except ValueError:
        raise ConfigError(f"random_state must be an int, None or a numpy RandomState, got {random_state!r:.40}") from None


# ------------------------------------------------------------------ the estimator
class TVQVAE(TransformerMixin, BaseEstimator):
    """Topic-VQ-VAE topic model over contextual token embeddings (text branch).

    Defaults follow the released code: 300 codes of dimension 100, 5 nearest codes per token
    (summed), VQ autoencoder 500-500-1000 trained with AdamW 5e-4, topic model with AdamW 1e-3,
    batch 256 documents, loss = word reconstruction + KL (``w_code=0``), alpha = the released tanh
    MLP D-100-100-V (``alpha_hidden=1``, the released default; 2 adds a layer; 0 is the paper-time
    linear map, which the released code does not have). The paper trains 1000 VQ epochs and 500
    topic epochs; the defaults here are CPU-sized (``vq_epochs=30``, ``topic_epochs=300``).
    ``TVQVAE.from_official(weights, words)`` wraps a model trained by the released code.

    A scikit-learn estimator: ``get_params`` / ``set_params`` / ``clone`` work, arguments are
    checked in ``fit``, ``random_state`` takes an int, ``None`` or a ``RandomState``, and methods
    called before ``fit`` raise scikit-learn's ``NotFittedError``. Its input is a list of strings,
    not a numeric array (``__sklearn_tags__``: ``input_tags.string``).
    """

    def __init__(self, n_topics: int = 20, *, encoder: str | None = None, max_len: int = 256,
                 pooling: str = "whole", min_len: int = 3, min_df: int = 2, max_df: float = 0.5,
                 n_codes: int = 300, code_dim: int = 100, n_neighbors: int = 5,
                 vq_hidden: tuple[int, ...] = (500, 500, 1000), quantize: str = "sum", codebook_init: str = "data",
                 standardize: bool = True, restart_dead: bool = True, vq_epochs: int = 30,
                 vq_lr: float = 5e-4, vq_max_tokens: int = 0, topic_epochs: int = 300, lr: float = 1e-3,
                 batch_size: int = 256, alpha_hidden: int = 1, w_code: float = 0.0, w_word: float = 1.0,
                 w_kl: float = 1.0, prior_mean: float | None = None, device: str = "auto",
                 random_state: int | np.random.RandomState | None = 0, verbose: bool | None = False):
        self.n_topics, self.encoder, self.max_len, self.pooling = n_topics, encoder, max_len, pooling
        self.min_len, self.min_df, self.max_df = min_len, min_df, max_df
        self.n_codes, self.code_dim, self.n_neighbors = n_codes, code_dim, n_neighbors
        self.codebook_init, self.standardize, self.restart_dead = codebook_init, standardize, restart_dead
        self.vq_hidden, self.quantize, self.vq_epochs, self.vq_lr = vq_hidden, quantize, vq_epochs, vq_lr
        self.vq_max_tokens, self.topic_epochs, self.lr, self.batch_size = vq_max_tokens, topic_epochs, lr, batch_size
        self.alpha_hidden, self.w_code, self.w_word, self.w_kl = alpha_hidden, w_code, w_word, w_kl
        self.prior_mean, self.device, self.random_state, self.verbose = prior_mean, device, random_state, verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # documents (strings), not a numeric 2-D array
        tags.input_tags.two_d_array = False
        tags.transformer_tags.preserves_dtype = []  # outputs float32 mixtures whatever the input
        return tags

    # -------------------------------------------------------------- params
    def _validate(self) -> None:
        def is_int(v: Any) -> bool:
            return isinstance(v, numbers.Integral) and not isinstance(v, bool)

        ints = ("n_topics", "max_len", "min_len", "min_df", "n_codes", "code_dim", "n_neighbors", "vq_epochs",
                "vq_max_tokens", "topic_epochs", "batch_size", "alpha_hidden")
        bad = [k for k in ints if not is_int(getattr(self, k))]
        if bad:
            raise ConfigError(f"{bad[0]} must be an integer, got {getattr(self, bad[0])!r:.40}")
        try:
            hidden = tuple(self.vq_hidden)
        except TypeError:
            hidden = ()
        if not hidden or not all(is_int(h) and h >= 1 for h in hidden):
            raise ConfigError(f"vq_hidden must be a sequence of positive widths, got {self.vq_hidden!r:.40}")
        rs = self.random_state
        if not (rs is None or isinstance(rs, np.random.RandomState) or (is_int(rs) and 0 <= rs < 2**63)):
            raise ConfigError(f"random_state must be an int >= 0, None or a numpy RandomState, got {rs!r:.40}")
        checks = [
            (self.n_topics >= 2, f"n_topics must be an integer >= 2, got {self.n_topics}"),
            (self.pooling in POOLINGS, f"pooling must be one of {POOLINGS}, got '{self.pooling}'"),
            (1 <= self.n_neighbors <= self.n_codes, f"n_neighbors must be in 1..n_codes ({self.n_codes}), got {self.n_neighbors}"),
            (self.code_dim >= 1 and self.n_codes >= 2, "code_dim must be >= 1 and n_codes >= 2"),
            (self.quantize in ("sum", "mean"), f"quantize must be 'sum' or 'mean', got '{self.quantize}'"),
            (self.codebook_init in ("data", "uniform"),
             f"codebook_init must be 'data' or 'uniform', got '{self.codebook_init}'"),
            (self.vq_epochs >= 0 and self.topic_epochs >= 1, "vq_epochs must be >= 0 and topic_epochs >= 1"),
            (self.lr > 0 and self.vq_lr > 0, "learning rates must be > 0"),
            (self.batch_size >= 2, f"batch_size must be >= 2 (BatchNorm), got {self.batch_size}"),
            (self.alpha_hidden in (0, 1, 2), f"alpha_hidden must be 0, 1 or 2, got {self.alpha_hidden}"),
            (min(self.w_code, self.w_word, self.w_kl) >= 0 and self.w_code + self.w_word > 0,
             "loss weights must be >= 0 with w_code + w_word > 0"),
            (self.vq_max_tokens >= 0, "vq_max_tokens must be >= 0 (0 = all tokens)"),
            (self.min_df >= 1 and 0 < self.max_df <= 1, f"min_df must be >= 1 and max_df in (0, 1], got "
                                                          f"{self.min_df}, {self.max_df}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)

    def _token_encoder(self) -> TokenEncoder:
        return TokenEncoder(self.encoder, max_len=self.max_len, pooling=self.pooling, min_len=self.min_len,
                            device=self.device, progress=self.verbose)

    # -------------------------------------------------------------- fit
    def fit(self, docs: Any, y: Any = None) -> TVQVAE:
        """Fit on documents (a list of strings or a :class:`TextCorpus`); returns ``self``."""
        self._validate()
        resolve_device(self.device)  # a name no device has, or a device this machine lacks: ConfigError
        prepared = prepare_corpus(docs, self._token_encoder(), min_df=self.min_df, max_df=self.max_df,
                                  min_len=self.min_len)
        logger.info("prepared %d documents (%d skipped: no vocabulary word), %d words, %d token vectors",
                    len(prepared.texts), prepared.n_skipped, len(prepared.vocab), len(prepared.encoded.words))
        return self.fit_prepared(prepared)

    def fit_prepared(self, data: PreparedCorpus, vq: VQAutoEncoder | None = None) -> TVQVAE:
        """Fit on an already prepared corpus (shares encodings and vocabulary with other models);
        ``vq``: an already trained VQ autoencoder (stage B is then skipped)."""
        self._validate()
        n_docs, n_words = data.bow.shape
        if self.n_topics > n_docs or self.n_topics > n_words:
            raise DataError(f"n_topics={self.n_topics} is larger than the number of documents ({n_docs}) or "
                            f"the vocabulary ({n_words}); use fewer topics or a larger corpus")
        if data.encoded.vectors.shape[0] < self.n_codes:
            raise DataError(f"only {data.encoded.vectors.shape[0]} token vectors for {self.n_codes} codes; use a "
                            "larger corpus or fewer codes (n_codes)")
        device = torch.device(resolve_device(self.device))
        seed = seed_from(self.random_state)
        gen = torch.Generator().manual_seed(seed)
        vectors = torch.from_numpy(data.encoded.vectors)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # parameter initialisation, without touching the caller's RNG
            if vq is None:
                logger.info("stage B: VQ autoencoder, %d codes, %d epochs on %d token vectors", self.n_codes,
                            self.vq_epochs, len(vectors))
                vq = VQAutoEncoder(data.encoded.dim, tuple(self.vq_hidden), self.code_dim, self.n_codes, self.n_neighbors,
                                   quantize=self.quantize)
                self.vq_history_ = train_vq(vq, vectors, data.encoded.doc, epochs=self.vq_epochs, lr=self.vq_lr,
                                            batch_docs=self.batch_size, max_tokens=self.vq_max_tokens, gen=gen,
                                            device=device, init=self.codebook_init, standardize=self.standardize,
                                            restart_dead=self.restart_dead, progress=self.verbose)
            else:
                if vq.input_dim != data.encoded.dim or vq.n_codes != self.n_codes:
                    raise ConfigError("the given VQ autoencoder does not match the corpus dimension or n_codes")
                self.vq_history_ = []
            vq = vq.to(device)
            x = code_histograms(vq, vectors, data.encoded.doc, n_docs, device)
            logger.info("stage D: topic model, K=%d, %d epochs on %d documents", self.n_topics, self.topic_epochs,
                        n_docs)
            model = TopicModel(TopicEncoder(self.n_codes, self.n_topics, prior_mean=self.prior_mean),
                               TVQDecoder(self.n_topics, vq.codebook.detach().cpu(), n_words, self.alpha_hidden),
                               w_code=self.w_code, w_word=self.w_word, w_kl=self.w_kl)
            self.history_ = train_topic_model(model, x, torch.from_numpy(data.bow), epochs=self.topic_epochs,
                                              lr=self.lr, batch_size=self.batch_size, gen=gen, device=device,
                                              progress=self.verbose, name="TVQ-VAE topics")
        self.vq_, self.model_, self.vocab_ = vq.cpu(), model.cpu(), data.vocab
        self.input_dim_ = data.encoded.dim
        self.code_counts_ = x
        self.n_skipped_ = data.n_skipped
        self.codebook_usage_ = float((x.sum(0) > 0).float().mean())
        self._set_topics()
        logger.info("fitted: codebook usage %.3f", self.codebook_usage_)
        return self

    def _set_topics(self) -> None:
        with torch.no_grad():
            self.topics_ = self.model_.decoder.topic_word().cpu().numpy()
            self.topic_embeddings_ = self.model_.decoder.tau().cpu().numpy()

    # -------------------------------------------------------------- inference
    def code_counts(self, docs: Any) -> torch.Tensor:
        """Codebook histograms (the conceptual bag of words) of new documents."""
        check_is_fitted(self)
        texts, _ = _as_texts(docs)
        if not texts:
            raise DataError("transform needs at least one document")
        enc = self._token_encoder().encode(texts)
        keep = np.asarray([w in self.vocab_.index for w in enc.words], dtype=bool)
        return code_histograms(self.vq_, torch.from_numpy(enc.vectors[keep]), enc.doc[keep], len(texts),
                               torch.device("cpu"))

    def transform(self, docs: Any) -> np.ndarray:
        """Topic mixtures ``(n_docs, n_topics)``: softmax of the posterior mean (deterministic)."""
        return self.transform_counts(self.code_counts(docs))

    def transform_counts(self, x: torch.Tensor) -> np.ndarray:
        """Topic mixtures of codebook histograms ``(n_docs, n_codes)`` (finite counts >= 0)."""
        check_is_fitted(self)
        x = torch.as_tensor(finite_array("code counts", x, dtype=np.float32, ndim=2))
        if x.shape[1] != self.n_codes or bool((x < 0).any()):
            raise DataError(f"code counts must be (n_docs, {self.n_codes}) histograms >= 0, got shape {tuple(x.shape)}")
        self.model_.eval()
        out = []
        for i in range(0, len(x), 4096):
            out.append(self.model_.theta(x[i:i + 4096]))
        return torch.cat(out).numpy()

    def fit_transform(self, docs: Any, y: Any = None) -> np.ndarray:
        """``fit(docs).transform(docs)``: one row per given document (also those that ``fit``
        skipped for having no vocabulary word; their row is the mixture of an empty histogram)."""
        return self.fit(docs, y).transform(docs)

    # -------------------------------------------------------------- topics
    def get_topic(self, k: int, top_n: int = 10) -> list[tuple[str, float]]:
        """The ``top_n`` words of topic ``k`` with their standardised scores."""
        check_is_fitted(self)
        if not 0 <= k < self.n_topics:
            raise DataError(f"topic {k} does not exist; this model has topics 0..{self.n_topics - 1}")
        row = self.topics_[k]
        order = np.argsort(-row, kind="stable")[:top_n]
        return [(self.vocab_.words[i], float(row[i])) for i in order]

    def get_topics(self, top_n: int = 10) -> list[list[str]]:
        return [[w for w, _ in self.get_topic(k, top_n)] for k in range(self.n_topics)]

    def generate(self, topic_mixture: Any, n_words: int = 20, random_state: int | None = None) -> list[str]:
        """Sample ``n_words`` words from ``softmax(theta A)`` for a topic mixture (length K, or a
        topic index for a one-hot mixture)."""
        check_is_fitted(self)
        n_words = integer("n_words", n_words, lo=1)
        if isinstance(topic_mixture, (int, np.integer)) and not isinstance(topic_mixture, bool):
            if not 0 <= topic_mixture < self.n_topics:
                raise DataError(f"topic {topic_mixture} does not exist; this model has topics 0..{self.n_topics - 1}")
            theta = np.eye(self.n_topics)[int(topic_mixture)]
        else:
            theta = finite_array("topic_mixture", topic_mixture)
        if theta.shape != (self.n_topics,) or (theta < 0).any() or not np.isclose(theta.sum(), 1.0):
            raise DataError(f"topic_mixture must be {self.n_topics} non-negative weights summing to 1 (or a topic index)")
        logits = theta @ self.topics_.astype(np.float64)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        rng = np.random.default_rng(seed_from(self.random_state if random_state is None else random_state))
        return [self.vocab_.words[i] for i in rng.choice(len(p), size=n_words, p=p)]

    # -------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Write the fitted model as one library checkpoint (``reprozoo.checkpoint/1``: safetensors
        weights + JSON metadata with the parameters, the library version and the vocabulary); a
        ``path`` without the ``.safetensors`` ending gets it. Returns the file written."""
        from reprozoo.tvqvae.persistence import save

        return save(self, path)

    @classmethod
    def from_official(cls, weights: Any, words: list[str], *, n_neighbors: int = 5, encoder: str | None = None,
                      **params: Any) -> TVQVAE:
        """A fitted estimator from a state dict (or file) of the released code and its output
        vocabulary ``words`` (the gensim dictionary's words in id order). The VQ takes raw token
        vectors (``standardize=False``); ``encoder`` names the local model folder whose token vectors
        it was trained on (the released code: bert-base-uncased)."""
        from reprozoo.tvqvae.official import load_official_weights

        vq, model = load_official_weights(weights, n_neighbors=n_neighbors)
        n_words = model.decoder.word_bn.num_features
        if len(words) != n_words:
            raise CheckpointError(f"the checkpoint has {n_words} output words but {len(words)} words were given")
        hidden = tuple(m.out_features for m in vq.encoder if isinstance(m, torch.nn.Linear))[:-1]
        n_alpha = sum(isinstance(m, torch.nn.Linear) for m in model.decoder.alpha.modules()) - 2
        est = cls(model.encoder.n_topics, encoder=encoder, n_codes=vq.n_codes, code_dim=vq.code_dim,
                  n_neighbors=n_neighbors, vq_hidden=hidden, codebook_init="uniform", standardize=False,
                  restart_dead=False, alpha_hidden=n_alpha, **params)
        est.vq_, est.model_, est.vocab_, est.input_dim_ = vq, model, Vocabulary(list(words)), vq.input_dim
        est._set_topics()
        return est

    @classmethod
    def load(cls, path: str | Path) -> TVQVAE:
        """A fitted estimator from a file written by :meth:`save` (or the folder of a save made
        before the library checkpoint format: ``weights.safetensors`` + ``config.json``)."""
        from reprozoo.tvqvae.persistence import load

        return load(cls, path)
