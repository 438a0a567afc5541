"""scikit-learn-style TVQ-VAE: ``TVQVAE(n_topics=20).fit(docs)``, ``transform``, ``topics_``,
``get_topic``, ``generate``, ``save`` / ``load`` (safetensors + JSON, no pickle).

Pipeline (stages of the released document-analysis code): token embeddings of the content words
from a frozen encoder (A), a VQ autoencoder over them (B), per-document histograms over the
codebook -- the "conceptual bag of words" (C), and a ProdLDA-style topic model on the histograms
whose word decoder maps each topic's codebook embedding to the vocabulary (D).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reprozoo.data.textcorpora import TextCorpus
from reprozoo.errors import CheckpointError, ConfigError, DataError, ReproZooError
from reprozoo.runtime.checks import finite_array, integer
from reprozoo.tvqvae.embeddings import POOLINGS, EncodedCorpus, TokenEncoder
from reprozoo.tvqvae.models import TopicEncoder, TopicModel, TVQDecoder, VQAutoEncoder
from reprozoo.tvqvae.preprocess import Vocabulary, tokenize
from reprozoo.tvqvae.training import code_histograms, train_topic_model, train_vq

FORMAT_VERSION = 1


class NotFittedError(ReproZooError, AttributeError):
    """The estimator is used before ``fit``."""


def check_is_fitted(est: Any, attribute: str = "topics_") -> None:
    if getattr(est, attribute, None) is None:
        raise NotFittedError(f"this {type(est).__name__} is not fitted yet; call fit(docs) first")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# ------------------------------------------------------------------ shared corpus preparation
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


# ------------------------------------------------------------------ the estimator
class TVQVAE:
    """Topic-VQ-VAE topic model over contextual token embeddings (text branch).

    Defaults follow the released code: 300 codes of dimension 100, 5 nearest codes per token
    (summed), VQ autoencoder 500-500-1000 trained with AdamW 5e-4, topic model with AdamW 1e-3,
    batch 256 documents, loss = word reconstruction + KL (``w_code=0``), alpha = the released tanh
    MLP D-100-100-V (``alpha_hidden=1``, the released default; 2 adds a layer; 0 is the paper-time
    linear map, which the released code does not have). The paper trains 1000 VQ epochs and 500
    topic epochs; the defaults here are CPU-sized (``vq_epochs=30``, ``topic_epochs=300``).
    ``TVQVAE.from_official(weights, words)`` wraps a model trained by the released code.
    """

    def __init__(self, n_topics: int = 20, *, encoder: str | None = None, max_len: int = 256,
                 pooling: str = "whole", min_len: int = 3, min_df: int = 2, max_df: float = 0.5,
                 n_codes: int = 300, code_dim: int = 100, n_neighbors: int = 5,
                 vq_hidden: tuple[int, ...] = (500, 500, 1000), quantize: str = "sum", codebook_init: str = "data",
                 standardize: bool = True, restart_dead: bool = True, vq_epochs: int = 30,
                 vq_lr: float = 5e-4, vq_max_tokens: int = 0, topic_epochs: int = 300, lr: float = 1e-3,
                 batch_size: int = 256, alpha_hidden: int = 1, w_code: float = 0.0, w_word: float = 1.0,
                 w_kl: float = 1.0, prior_mean: float | None = None, device: str = "auto",
                 random_state: int = 0, verbose: bool | None = False):
        self.n_topics, self.encoder, self.max_len, self.pooling = n_topics, encoder, max_len, pooling
        self.min_len, self.min_df, self.max_df = min_len, min_df, max_df
        self.n_codes, self.code_dim, self.n_neighbors = n_codes, code_dim, n_neighbors
        self.codebook_init, self.standardize, self.restart_dead = codebook_init, standardize, restart_dead
        self.vq_hidden, self.quantize, self.vq_epochs, self.vq_lr = tuple(vq_hidden), quantize, vq_epochs, vq_lr
        self.vq_max_tokens, self.topic_epochs, self.lr, self.batch_size = vq_max_tokens, topic_epochs, lr, batch_size
        self.alpha_hidden, self.w_code, self.w_word, self.w_kl = alpha_hidden, w_code, w_word, w_kl
        self.prior_mean, self.device, self.random_state, self.verbose = prior_mean, device, random_state, verbose
        self.topics_ = None

    # -------------------------------------------------------------- params
    def get_params(self) -> dict[str, Any]:
        keys = ("n_topics", "encoder", "max_len", "pooling", "min_len", "min_df", "max_df", "n_codes", "code_dim",
                "n_neighbors", "vq_hidden", "quantize", "codebook_init", "standardize", "restart_dead", "vq_epochs", "vq_lr", "vq_max_tokens", "topic_epochs",
                "lr", "batch_size", "alpha_hidden", "w_code", "w_word", "w_kl", "prior_mean", "device",
                "random_state")
        return {k: getattr(self, k) for k in keys}

    def _validate(self) -> None:
        checks = [
            (isinstance(self.n_topics, int) and self.n_topics >= 2, f"n_topics must be an integer >= 2, got {self.n_topics}"),
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
        prepared = prepare_corpus(docs, self._token_encoder(), min_df=self.min_df, max_df=self.max_df,
                                  min_len=self.min_len)
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
        device = resolve_device(self.device)
        gen = torch.Generator().manual_seed(int(self.random_state))
        vectors = torch.from_numpy(data.encoded.vectors)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.random_state))  # parameter initialisation, without touching the caller's RNG
            if vq is None:
                vq = VQAutoEncoder(data.encoded.dim, self.vq_hidden, self.code_dim, self.n_codes, self.n_neighbors,
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
        self.fit(docs)
        return self.transform_counts(self.code_counts_)

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
        rng = np.random.default_rng(self.random_state if random_state is None else random_state)
        return [self.vocab_.words[i] for i in rng.choice(len(p), size=n_words, p=p)]

    # -------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Write ``weights.safetensors`` and ``config.json`` into the folder ``path``."""
        from safetensors.torch import save_file

        check_is_fitted(self)
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {f"vq.{k}": v.contiguous() for k, v in self.vq_.state_dict().items()}
        tensors.update({f"topic.{k}": v.contiguous() for k, v in self.model_.state_dict().items()})
        save_file(tensors, str(out / "weights.safetensors"))
        meta = {"format": FORMAT_VERSION, "class": "TVQVAE", "params": self.get_params(),
                "input_dim": self.input_dim_, "vocabulary": self.vocab_.to_list()}
        (out / "config.json").write_text(json.dumps(meta, indent=1))
        return out

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
        from safetensors.torch import load_file

        p = Path(path)
        if not (p / "config.json").is_file() or not (p / "weights.safetensors").is_file():
            raise CheckpointError(f"{p} is not a saved TVQVAE (needs config.json and weights.safetensors)")
        try:
            meta = json.loads((p / "config.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointError(f"cannot read {p}/config.json: {type(err).__name__}: {str(err).splitlines()[0]}") from None
        if (not isinstance(meta, dict) or meta.get("class") != "TVQVAE" or meta.get("format") != FORMAT_VERSION
                or not isinstance(meta.get("params"), dict) or not isinstance(meta.get("vocabulary"), list)
                or not isinstance(meta.get("input_dim"), int)):
            raise CheckpointError(f"{p}/config.json is not a TVQVAE save of format {FORMAT_VERSION}")
        try:
            est = cls(**meta["params"])
            est._validate()
        except (TypeError, ReproZooError) as err:
            raise CheckpointError(f"{p}/config.json has invalid parameters: {str(err).splitlines()[0]}") from None
        vocab = Vocabulary(meta["vocabulary"])
        try:
            tensors = load_file(str(p / "weights.safetensors"))
        except Exception as err:  # noqa: BLE001  (safetensors raises its own SafetensorError)
            raise CheckpointError(f"cannot read {p}/weights.safetensors: {type(err).__name__}: "
                                  f"{str(err).splitlines()[0] if str(err) else 'corrupt file'}") from None
        vq = VQAutoEncoder(meta["input_dim"], tuple(est.vq_hidden), est.code_dim, est.n_codes, est.n_neighbors,
                           quantize=est.quantize)
        model = TopicModel(TopicEncoder(est.n_codes, est.n_topics, prior_mean=est.prior_mean),
                           TVQDecoder(est.n_topics, torch.zeros(est.n_codes, est.code_dim), len(vocab), est.alpha_hidden),
                           w_code=est.w_code, w_word=est.w_word, w_kl=est.w_kl)
        topic_sd = {k[6:]: v for k, v in tensors.items() if k.startswith("topic.")}
        if model.decoder.topic_bn is not None and "decoder.topic_bn.running_mean" not in topic_sd:
            # saves made before the topic BatchNorm held running statistics: start them at 0 / 1
            topic_sd.update({f"decoder.topic_bn.{k}": v for k, v in model.decoder.topic_bn.state_dict().items()})
        try:
            vq.load_state_dict({k[3:]: v for k, v in tensors.items() if k.startswith("vq.")})
            model.load_state_dict(topic_sd)
        except RuntimeError as err:
            raise CheckpointError(f"{p}/weights.safetensors does not match its config: {str(err).splitlines()[0]}") from None
        est.vq_, est.model_, est.vocab_, est.input_dim_ = vq.eval(), model.eval(), vocab, meta["input_dim"]
        est._set_topics()
        return est
