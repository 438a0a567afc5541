"""Temporal sentence grounding data: a vocabulary builder and readers for Charades-STA and
ActivityNet Captions annotations with pre-extracted clip features.

* :class:`Vocabulary` -- the top-V words of the training queries, frozen word vectors (seeded
  random ones, or user-provided ones from a ``word v1 v2 ...`` text file / dict: nothing is
  downloaded), and the content-word masking prior (weight 2 for content words, 1 for function
  words; a POS tagger is not needed).
* :func:`read_charades_sta` -- ``vid start end##sentence`` lines (the original release) or the
  JSON rows ``[vid, duration, [start, end], sentence]`` of CPL/PPS; durations from the row, a
  ``{vid: duration}`` mapping, or the features' length.
* :func:`read_activitynet_captions` -- ``{vid: {duration, timestamps, sentences}}`` JSON.
* :class:`FeatureStore` -- one ``<vid>.npy`` per video in a folder, or one HDF5 file with a
  dataset (or a group holding one dataset) per video; :func:`resample_clips` mean-pools a
  (N, D) feature sequence into exactly T contiguous chunks.

Readers skip bad rows (missing features, timestamps outside the video or start >= end, queries
without known words) and report how many they skipped and why.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reprozoo.errors import DataError
from reprozoo.runtime.checks import finite_array, integer
from reprozoo.runtime.extras import require

FUNCTION_WORDS = frozenset(
    "a an the and or but then of to in on at by for with from into onto up down out off over under "
    "is are was were be been being am he she it they them his her its their this that these those "
    "who whom which while as so than too very can will just again also".split())
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(sentence: str) -> list[str]:
    """Lower-cased word tokens (letters/digits, with an optional 's-style suffix)."""
    return _TOKEN.findall(sentence.lower())


@dataclass
class Vocabulary:
    """Words with ids 1..V (0 is pad / end of sentence), their frozen vectors and masking weights."""

    words: list[str]
    vectors: np.ndarray  # (V + 1, dim); row 0 is zeros
    weights: np.ndarray  # (V + 1,) masking prior per id
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        self.index = {w: i + 1 for i, w in enumerate(self.words)}
        if self.vectors.shape[0] != len(self.words) + 1 or self.weights.shape != (len(self.words) + 1,):
            raise DataError(f"vocabulary of {len(self.words)} words needs {len(self.words) + 1} vector and "
                            f"weight rows, got {self.vectors.shape[0]} and {self.weights.shape[0]}")

    def __len__(self) -> int:
        return len(self.words)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def encode(self, sentence: str | Sequence[str], max_words: int = 20) -> list[int]:
        """Ids of the known words (unknown ones are dropped), at most ``max_words``."""
        toks = tokenize(sentence) if isinstance(sentence, str) else list(sentence)
        return [self.index[t] for t in toks if t in self.index][:max_words]

    def encode_checked(self, sentence: str, max_words: int = 20, name: str = "query") -> list[int]:
        ids = self.encode(sentence, max_words)
        if not ids:
            raise DataError(f"{name} {sentence!r} has no word of the model's {len(self)}-word vocabulary "
                            f"(known words include: {', '.join(self.words[:8])})")
        return ids

    @classmethod
    def build(cls, sentences: Iterable[str], max_size: int = 1111, dim: int = 300, seed: int = 0,
              vectors: Mapping[str, Sequence[float]] | str | Path | None = None,
              content_weight: float = 2.0, function_weight: float = 1.0,
              content_words: Iterable[str] | None = None, min_count: int = 1) -> Vocabulary:
        """The ``max_size`` most frequent words of ``sentences`` (ties broken alphabetically).

        ``vectors``: a ``{word: vector}`` mapping or a GloVe-style text file; words without a
        vector (and everything when none is given) get seeded random N(0, 1/dim) vectors.
        ``content_words`` (e.g. from a POS tagger) overrides the built-in function-word list."""
        counts = Counter(t for s in sentences for t in tokenize(s))
        ranked = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))[:max_size]
        if not ranked:
            raise DataError("no words in the training queries: cannot build a vocabulary")
        given = _load_vectors(vectors, set(ranked)) if vectors is not None else {}
        if given:
            dim = len(next(iter(given.values())))
        rng = np.random.default_rng(seed)
        table = np.zeros((len(ranked) + 1, dim), np.float32)
        for i, w in enumerate(ranked):
            v = rng.normal(0.0, 1.0 / np.sqrt(dim), dim)
            table[i + 1] = given.get(w, v)
        content = set(content_words) if content_words is not None else None
        weights = np.ones(len(ranked) + 1, np.float32)
        for i, w in enumerate(ranked):
            is_content = (w in content) if content is not None else (w not in FUNCTION_WORDS)
            weights[i + 1] = content_weight if is_content else function_weight
        return cls(ranked, table, weights)

    def to_dict(self) -> dict:
        return {"words": list(self.words), "weights": self.weights.tolist()}


def _load_vectors(source, wanted: set[str]) -> dict[str, np.ndarray]:
    if isinstance(source, Mapping):
        out = {w: np.asarray(v, np.float32) for w, v in source.items() if w in wanted}
    else:
        path = Path(source)
        if not path.is_file():
            raise DataError(f"word-vector file {path} does not exist")
        out = {}
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                parts = line.rstrip().split(" ")
                if len(parts) < 2:
                    continue
                if parts[0] in wanted:
                    try:
                        out[parts[0]] = np.asarray([float(x) for x in parts[1:]], np.float32)
                    except ValueError as err:
                        raise DataError(f"{path}:{n}: not a 'word v1 v2 ...' line") from err
    dims = {v.shape for v in out.values()}
    if len(dims) > 1:
        raise DataError(f"word vectors have different lengths: {sorted(d[0] for d in dims)}")
    return out


# ---------------------------------------------------------------- features
def resample_clips(features: np.ndarray, clips: int) -> np.ndarray:
    """(N, D) -> (clips, D): boundaries round(j N / clips); each chunk is mean-pooled, an empty
    chunk takes the single feature at its start (so short videos are stretched, never padded)."""
    feats = np.asarray(features)
    if feats.ndim != 2 or feats.shape[0] == 0:
        raise DataError(f"features must be a non-empty (N, D) array, got shape {feats.shape}")
    feats = finite_array("features", feats, dtype=np.float32)
    clips = integer("clips", clips, lo=1)
    n = feats.shape[0]
    bounds = np.round(np.arange(clips + 1) * n / clips).astype(int)
    out = np.empty((clips, feats.shape[1]), np.float32)
    for j in range(clips):
        s, e = bounds[j], bounds[j + 1]
        out[j] = feats[min(s, n - 1)] if e <= s else feats[s:e].mean(0)
    return out


class FeatureStore:
    """Per-video (N, D) features from a folder of ``<vid>.npy`` files or one HDF5 file."""

    def __init__(self, path: str | Path, key: str | None = None):
        self.path = Path(path)
        self.key = key
        self._h5 = None
        if not self.path.exists():
            raise DataError(f"feature path {self.path} does not exist (a folder of <video>.npy or an .hdf5 file)")

    def _file(self):
        if self._h5 is None:
            h5py = require("h5py", what="reading HDF5 feature files")
            self._h5 = h5py.File(self.path, "r")
        return self._h5

    def has(self, vid: str) -> bool:
        if self.path.is_dir():
            return (self.path / f"{vid}.npy").is_file()
        return vid in self._file()

    def get(self, vid: str) -> np.ndarray:
        if self.path.is_dir():
            f = self.path / f"{vid}.npy"
            if not f.is_file():
                raise DataError(f"video {vid!r}: no feature file {f}")
            arr = np.load(f, allow_pickle=False)
        else:
            h5 = self._file()
            if vid not in h5:
                raise DataError(f"video {vid!r}: not in {self.path}")
            node = h5[vid]
            if hasattr(node, "keys"):
                keys = [self.key] if self.key else list(node.keys())
                if len(keys) != 1 or keys[0] not in node:
                    raise DataError(f"video {vid!r} in {self.path} is a group with {sorted(node.keys())}; "
                                    "pass key= to pick the feature dataset")
                node = node[keys[0]]
            arr = np.asarray(node)
        arr = np.asarray(arr, np.float32)
        if arr.ndim != 2 or arr.shape[0] == 0:
            raise DataError(f"video {vid!r}: features must be a non-empty (N, D) array, got shape {arr.shape}")
        return arr


# ---------------------------------------------------------------- annotations
@dataclass
class GroundingSample:
    vid: str
    duration: float
    start: float
    end: float
    sentence: str


@dataclass
class ReadReport:
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, example: str) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, example)

    def summary(self) -> str:
        total = sum(self.skipped.values())
        if not total:
            return f"kept {self.kept} samples, skipped none"
        parts = ", ".join(f"{n} {r} (e.g. {self.examples[r]})" for r, n in self.skipped.most_common())
        return f"kept {self.kept} samples, skipped {total}: {parts}"


def check_sample(s: GroundingSample, clip_end: bool = False) -> str | None:
    """The reason a sample is unusable, or None."""
    if not np.isfinite(s.duration) or s.duration <= 0:
        return "non-positive duration"
    if not (np.isfinite(s.start) and np.isfinite(s.end)) or s.start >= s.end:
        return "start >= end"
    if s.start < 0 or (s.end > s.duration and not clip_end) or s.start >= s.duration:
        return "timestamps outside the video"
    if not s.sentence.strip():
        return "empty sentence"
    return None


def read_charades_sta(path: str | Path, durations: Mapping[str, float] | None = None) -> list[GroundingSample]:
    """Charades-STA: ``vid start end##sentence`` lines, or a JSON list of
    ``[vid, duration, [start, end], sentence]`` rows. Returns the raw rows (check them with
    :func:`build_samples`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"annotation file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    out = []
    if path.suffix == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path} is not valid JSON: {err}") from err
        for i, row in enumerate(rows):
            try:
                vid, duration, (start, end), sentence = row
            except (TypeError, ValueError) as err:
                raise DataError(f"{path} row {i}: expected [vid, duration, [start, end], sentence], got {row!r}") from err
            out.append(GroundingSample(str(vid), float(duration), float(start), float(end), str(sentence)))
        return out
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        head, sep, sentence = line.partition("##")
        parts = head.split()
        if not sep or len(parts) != 3:
            raise DataError(f"{path}:{n}: expected 'vid start end##sentence', got {line!r}")
        vid = parts[0]
        duration = float(durations[vid]) if durations and vid in durations else float("nan")
        out.append(GroundingSample(vid, duration, float(parts[1]), float(parts[2]), sentence.strip()))
    return out


def read_activitynet_captions(path: str | Path) -> list[GroundingSample]:
    """ActivityNet Captions: ``{vid: {"duration": d, "timestamps": [[s, e], ...], "sentences": [...]}}``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"annotation file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON: {err}") from err
    out = []
    for vid, item in data.items():
        try:
            stamps, sentences, duration = item["timestamps"], item["sentences"], float(item["duration"])
        except (KeyError, TypeError) as err:
            raise DataError(f"{path}: video {vid!r} needs 'duration', 'timestamps' and 'sentences'") from err
        if len(stamps) != len(sentences):
            raise DataError(f"{path}: video {vid!r} has {len(stamps)} timestamps but {len(sentences)} sentences")
        for (s, e), sent in zip(stamps, sentences):
            out.append(GroundingSample(str(vid), duration, float(s), float(e), str(sent)))
    return out


@dataclass
class GroundingData:
    """Samples ready for a model: features (N, T, D), word ids, normalised GT (N, 2)."""

    features: np.ndarray
    words: list[list[int]]
    gt: np.ndarray
    durations: np.ndarray
    vids: list[str]
    sentences: list[str]
    types: list[str]
    report: ReadReport | None = None


def build_samples(samples: Sequence[GroundingSample], store: FeatureStore, vocab: Vocabulary, clips: int = 200,
                  max_words: int = 20, feature_dim: int | None = None, fps_duration: bool = False,
                  clip_end: bool = False) -> GroundingData:
    """Check every row, load and resample its features; bad rows are skipped and counted.
    ``fps_duration``: a row without a duration takes the number of feature rows as its length.
    ``clip_end``: GT ends beyond the duration are accepted (normalised without clipping)."""
    report = ReadReport()
    feats, words, gt, durs, vids, sents = [], [], [], [], [], []
    cache: dict[str, np.ndarray] = {}
    for i, s in enumerate(samples):
        name = f"row {i} ({s.vid})"
        if s.vid not in cache:
            if not store.has(s.vid):
                report.skip("missing features", name)
                continue
            try:
                raw = store.get(s.vid)
            except DataError as err:
                report.skip("unreadable features", f"{name}: {err}")
                continue
            if feature_dim is not None and raw.shape[1] != feature_dim:
                report.skip("wrong feature dimension", f"{name}: {raw.shape[1]} != {feature_dim}")
                continue
            cache[s.vid] = (resample_clips(raw, clips), raw.shape[0])
        arr, n_rows = cache[s.vid]
        if not np.isfinite(s.duration) and fps_duration:
            s = GroundingSample(s.vid, float(n_rows), s.start, s.end, s.sentence)
        reason = check_sample(s, clip_end)
        if reason:
            report.skip(reason, name)
            continue
        ids = vocab.encode(s.sentence, max_words)
        if not ids:
            report.skip("no known words", f"{name}: {s.sentence!r}")
            continue
        feats.append(arr)
        words.append(ids)
        gt.append((s.start / s.duration, s.end / s.duration))
        durs.append(s.duration)
        vids.append(s.vid)
        sents.append(s.sentence)
    report.kept = len(feats)
    if not feats:
        raise DataError(f"no usable sample: {report.summary()}")
    return GroundingData(np.stack(feats), words, np.asarray(gt, np.float32), np.asarray(durs, np.float32), vids,
                         sents, ["real"] * len(feats), report)
