"""Offline text corpora: the Debian ``fortunes`` files, generic readers, and a procedural corpus.

- :func:`load_fortunes`: the ``fortunes`` package's category files (``/usr/share/games/fortunes``),
  entries separated by a line holding only ``%``; the label of an entry is its file name.
- :func:`read_corpus`: a text file (one document per line), a folder of ``.txt`` files (one
  document each) or JSON lines with a ``text`` field and an optional ``label`` field.
- :func:`procedural_corpus`: documents sampled from hand-made word lists of real English words
  with a sparse Dirichlet mixture, so the true topics are known (unit tests, smoke runs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reprozoo.errors import DataError, MissingDependencyError

FORTUNES_DIR = "/usr/share/games/fortunes"
FORTUNES_INSTALL = "sudo apt-get install -y fortunes"
# topical categories (stylistic collections such as zippy, platitudes, cookie, wisdom are left out)
FORTUNES_TOPICAL = ("computers", "politics", "science", "art", "linux", "startrek", "drugs", "law",
                    "education", "food", "sports")


@dataclass
class TextCorpus:
    """Documents with optional string labels (``labels[i]`` belongs to ``texts[i]``)."""

    texts: list[str]
    labels: list[str] | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def label_names(self) -> list[str]:
        return sorted(set(self.labels)) if self.labels is not None else []

    def label_ids(self) -> np.ndarray:
        if self.labels is None:
            raise DataError(f"corpus {self.source or '(unnamed)'} has no labels")
        names = {n: i for i, n in enumerate(self.label_names)}
        return np.asarray([names[x] for x in self.labels], dtype=np.int64)

    def subset(self, index) -> TextCorpus:
        index = list(index)
        labels = [self.labels[i] for i in index] if self.labels is not None else None
        return TextCorpus([self.texts[i] for i in index], labels, self.source, list(self.notes))


def _decode(raw: bytes, path: Path, errors: str) -> str:
    try:
        return raw.decode("utf-8", errors=errors)
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line} is not valid UTF-8 (byte {raw[err.start]:#04x}); re-encode the "
                        "file as UTF-8 or pass encoding_errors='replace'") from None


def fortunes_available(root: str | Path = FORTUNES_DIR) -> bool:
    return Path(root).is_dir() and any(Path(root).iterdir())


def load_fortunes(categories: tuple[str, ...] | list[str] | None = FORTUNES_TOPICAL,
                  root: str | Path = FORTUNES_DIR, max_per_category: int = 0, min_words: int = 1,
                  seed: int = 0) -> TextCorpus:
    """Entries of the fortunes files as documents labelled by category (file name).

    ``categories=None`` reads every category file; ``max_per_category > 0`` keeps a seeded random
    subset of that many entries per category (in file order); entries with fewer than ``min_words``
    whitespace-separated words are dropped.
    """
    base = Path(root)
    if not fortunes_available(base):
        raise MissingDependencyError(f"the fortunes corpus is not installed at {base}; install it with: "
                                     f"{FORTUNES_INSTALL} (a Debian/Ubuntu system package; `make fortunes` "
                                     "in a source checkout)")
    if categories is None:
        categories = sorted(p.name for p in base.iterdir()
                            if p.is_file() and not p.suffix and not p.name.startswith("."))
    missing = [c for c in categories if not (base / c).is_file()]
    if missing:
        known = sorted(p.name for p in base.iterdir() if p.is_file() and not p.suffix)
        raise DataError(f"fortunes categories not found in {base}: {missing}; available: {', '.join(known)}")
    texts, labels = [], []
    rng = np.random.default_rng(seed)
    for cat in categories:
        path = base / cat
        raw = _decode(path.read_bytes(), path, "replace")  # a few entries hold Latin-1 bytes
        entries = [" ".join(e.split()) for e in raw.split("\n%\n")]
        entries = [e.strip("% ") for e in entries]
        entries = [e for e in entries if len(e.split()) >= min_words]
        if max_per_category and len(entries) > max_per_category:
            keep = np.sort(rng.choice(len(entries), max_per_category, replace=False))
            entries = [entries[i] for i in keep]
        texts += entries
        labels += [cat] * len(entries)
    return TextCorpus(texts, labels, source=f"fortunes:{base}")


def read_corpus(path: str | Path, encoding_errors: str = "strict") -> TextCorpus:
    """Read a corpus: a folder of ``.txt`` files, a ``.jsonl`` / ``.json`` file of JSON lines
    (``{"text": ..., "label": ...}``), or any other text file with one document per line.

    Blank lines are skipped. Bytes that are not UTF-8 raise a :class:`DataError` naming the file and
    line, unless ``encoding_errors='replace'``.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"corpus {p} does not exist; pass a text file (one document per line), a folder "
                        "of .txt files or a JSON-lines file with a 'text' field")
    if p.is_dir():
        files = sorted(f for f in p.rglob("*.txt") if f.is_file())
        if not files:
            raise DataError(f"folder {p} holds no .txt files")
        texts = [_decode(f.read_bytes(), f, encoding_errors).strip() for f in files]
        keep = [i for i, t in enumerate(texts) if t]
        labels = [files[i].parent.name for i in keep] if any(f.parent != p for f in files) else None
        return TextCorpus([texts[i] for i in keep], labels, source=str(p))
    text = _decode(p.read_bytes(), p, encoding_errors)
    lines = text.splitlines()
    if p.suffix.lower() in (".jsonl", ".json"):
        texts, labels = [], []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{p}: line {n} is not valid JSON ({err.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise DataError(f"{p}: line {n} needs a string field 'text'")
            texts.append(row["text"])
            labels.append(None if row.get("label") is None else str(row["label"]))
        has = [lab is not None for lab in labels]
        if any(has) and not all(has):
            raise DataError(f"{p}: 'label' is set on {sum(has)} of {len(has)} lines; label every line or none")
        return TextCorpus(texts, labels if all(has) and labels else None, source=str(p))
    return TextCorpus([ln.strip() for ln in lines if ln.strip()], None, source=str(p))


# ------------------------------------------------------------------ procedural corpus
PROCEDURAL_TOPICS: dict[str, tuple[str, ...]] = {
    "space": ("planet", "star", "rocket", "orbit", "galaxy", "astronaut", "moon", "telescope", "comet",
              "launch", "gravity", "spacecraft"),
    "food": ("bread", "cheese", "soup", "kitchen", "recipe", "dinner", "butter", "salad", "bake", "sugar",
             "flavor", "chef"),
    "sports": ("football", "team", "coach", "score", "match", "goal", "player", "league", "stadium",
               "season", "champion", "referee"),
    "music": ("guitar", "song", "piano", "band", "concert", "melody", "singer", "album", "rhythm", "drum",
              "orchestra", "lyrics"),
    "law": ("court", "judge", "lawyer", "trial", "jury", "verdict", "contract", "crime", "police", "prison",
            "witness", "statute"),
    "computers": ("software", "computer", "keyboard", "program", "network", "server", "database", "code",
                  "memory", "processor", "internet", "bug"),
}
_FILLER = ("the", "a", "and", "of", "to", "in", "is", "was", "with", "for", "it", "on", "that", "this")


def procedural_corpus(n_docs: int = 200, n_topics: int = 4, words_per_doc: int = 24, alpha: float = 0.1,
                      seed: int = 0) -> TextCorpus:
    """Documents mixing ``n_topics`` of :data:`PROCEDURAL_TOPICS` with Dirichlet(``alpha``) weights,
    stop words interleaved; each document's label is its dominant topic."""
    if not 1 <= n_topics <= len(PROCEDURAL_TOPICS):
        raise DataError(f"n_topics must be in 1..{len(PROCEDURAL_TOPICS)}, got {n_topics}")
    if n_docs < 1 or words_per_doc < 1:
        raise DataError("n_docs and words_per_doc must be >= 1")
    rng = np.random.default_rng(seed)
    names = list(PROCEDURAL_TOPICS)[:n_topics]
    texts, labels = [], []
    for _ in range(n_docs):
        theta = rng.dirichlet([alpha] * n_topics)
        z = rng.choice(n_topics, size=words_per_doc, p=theta)
        words = []
        for k in z:
            vocab = PROCEDURAL_TOPICS[names[k]]
            words.append(vocab[rng.integers(len(vocab))])
            if rng.random() < 0.5:
                words.append(_FILLER[rng.integers(len(_FILLER))])
        texts.append(" ".join(words) + ".")
        labels.append(names[int(np.bincount(z, minlength=n_topics).argmax())])
    return TextCorpus(texts, labels, source=f"procedural:{n_topics}x{n_docs}:seed{seed}")
