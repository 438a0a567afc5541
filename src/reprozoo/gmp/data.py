"""A seeded synthetic grounding benchmark with three event shapes, and the dataset/collate
that turn :class:`~reprozoo.data.grounding.GroundingData` into model batches.

The benchmark tests the paper's premise offline: a query-relevant moment need not look like one
Gaussian. Each video (T clips of D-d features) holds one query event and 1-2 distractor actions:

* ``single`` -- one block, text "person v o";
* ``two-part`` -- two blocks with a gap of idle clips or a non-query action, text
  "person v1 o then v2 o" (the ground truth is the full span);
* ``ramp`` -- an action whose intensity rises linearly from 0.15 to 1, text "person slowly v o".

Action clips are verb prototype + noun prototype + a per-video scene vector + noise; a third of
the distractors share the query's verb or noun (hard distractors). Word vectors are fixed random
vectors (a stand-in for GloVe); content words get masking weight 2, fillers 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from reprozoo.data.grounding import GroundingData, Vocabulary
from reprozoo.errors import ConfigError

EVENT_TYPES = ("single", "two-part", "ramp")
FILLERS = ("person", "the", "a", "then", "slowly", "and")


@dataclass
class ToyConfig:
    verbs: int = 8
    nouns: int = 8
    clips: int = 64  # T
    dim: int = 32  # D (video features and word vectors)
    proto_scale: float = 2.0  # prototypes ~ N(0, I / D) * scale
    scene_scale: float = 1.0
    noise: float = 0.5  # clip noise ~ N(0, noise^2 / D I)
    mix: list[float] = field(default_factory=lambda: [0.4, 0.4, 0.2])  # single / two-part / ramp
    single_len: list[float] = field(default_factory=lambda: [0.15, 0.40])
    part_len: list[float] = field(default_factory=lambda: [0.10, 0.20])
    gap_len: list[float] = field(default_factory=lambda: [0.08, 0.20])
    gap_action: float = 0.5  # probability that the gap holds a non-query action instead of idle clips
    ramp_len: list[float] = field(default_factory=lambda: [0.25, 0.45])
    distractors: list[int] = field(default_factory=lambda: [1, 2])
    distractor_len: list[float] = field(default_factory=lambda: [0.10, 0.25])
    hard: float = 0.3  # probability that a distractor shares the query's verb or noun

    def validate(self) -> None:
        if self.verbs < 2 or self.nouns < 2:
            raise ConfigError(f"data.verbs and data.nouns must be >= 2, got {self.verbs}, {self.nouns}")
        if self.clips < 16 or self.dim < 2:
            raise ConfigError(f"data.clips must be >= 16 and data.dim >= 2, got {self.clips}, {self.dim}")
        if len(self.mix) != 3 or any(p < 0 for p in self.mix) or not sum(self.mix) > 0:
            raise ConfigError(f"data.mix must be 3 non-negative weights (single, two-part, ramp), got {self.mix}")
        for name in ("single_len", "part_len", "gap_len", "ramp_len", "distractor_len"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi < 1:
                raise ConfigError(f"data.{name} must be [lo, hi] with 0 < lo <= hi < 1, got {getattr(self, name)}")
        if 2 * self.part_len[1] + self.gap_len[1] >= 1:
            raise ConfigError("data.part_len and data.gap_len are too long for a two-part event to fit the video")
        if not (0 <= self.distractors[0] <= self.distractors[1]):
            raise ConfigError(f"data.distractors must be [lo, hi] with 0 <= lo <= hi, got {self.distractors}")
        for name in ("gap_action", "hard"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"data.{name} must be a probability, got {getattr(self, name)}")
        if min(self.noise, self.scene_scale, self.proto_scale) < 0:
            raise ConfigError("data.noise, data.scene_scale and data.proto_scale must be >= 0")


@dataclass
class ToyWorld:
    """The fixed parts of the benchmark: prototypes and the vocabulary (one per world seed)."""

    config: ToyConfig
    verbs: np.ndarray
    nouns: np.ndarray
    idle: np.ndarray
    vocab: Vocabulary

    @property
    def verb_words(self) -> list[str]:
        return [f"v{i}" for i in range(self.config.verbs)]

    @property
    def noun_words(self) -> list[str]:
        return [f"o{i}" for i in range(self.config.nouns)]


def make_world(config: ToyConfig, seed: int = 0) -> ToyWorld:
    config.validate()
    rng = np.random.default_rng([seed, 1])
    d = config.dim
    verbs = rng.normal(0, 1 / np.sqrt(d), (config.verbs, d)) * config.proto_scale
    nouns = rng.normal(0, 1 / np.sqrt(d), (config.nouns, d)) * config.proto_scale
    idle = rng.normal(0, 1 / np.sqrt(d), d) * config.proto_scale
    words = list(FILLERS) + [f"v{i}" for i in range(config.verbs)] + [f"o{i}" for i in range(config.nouns)]
    vectors = np.zeros((len(words) + 1, d), np.float32)
    vectors[1:] = rng.normal(0, 1 / np.sqrt(d), (len(words), d))
    weights = np.ones(len(words) + 1, np.float32)
    weights[1 + len(FILLERS):] = 2.0
    return ToyWorld(config, verbs, nouns, idle, Vocabulary(words, vectors, weights))


def _place(rng, free: list[tuple[int, int]], length: int) -> tuple[int, int] | None:
    spans = [(a, b) for a, b in free if b - a >= length]
    if not spans:
        return None
    a, b = spans[rng.integers(len(spans))]
    s = int(rng.integers(a, b - length + 1))
    return s, s + length


def _cut(free, s, e):
    out = []
    for a, b in free:
        if e <= a or s >= b:
            out.append((a, b))
        else:
            if a < s:
                out.append((a, s))
            if e < b:
                out.append((e, b))
    return out


def make_split(world: ToyWorld, n: int, seed: int) -> GroundingData:
    """``n`` videos with one query each; the same (world, n, seed) gives the same data."""
    c = world.config
    rng = np.random.default_rng([seed, 2])
    t, d = c.clips, c.dim
    mix = np.asarray(c.mix, float) / sum(c.mix)
    feats = np.empty((n, t, d), np.float32)
    words, gt, types, sents = [], [], [], []
    for i in range(n):
        kind = EVENT_TYPES[rng.choice(3, p=mix)]
        scene = rng.normal(0, 1 / np.sqrt(d), d) * c.scene_scale
        intensity = np.zeros(t)
        content = np.tile(world.idle, (t, 1))
        v, o = int(rng.integers(c.verbs)), int(rng.integers(c.nouns))

        def length(lohi):
            return max(int(round(rng.uniform(*lohi) * t)), 1)

        def action(vi, oi):
            return world.verbs[vi] + world.nouns[oi]

        used = [(v, o)]
        if kind == "single":
            ln = length(c.single_len)
            s = int(rng.integers(0, t - ln + 1))
            content[s:s + ln] = action(v, o)
            span = (s, s + ln)
            text = f"person v{v} o{o}"
        elif kind == "two-part":
            v2 = int((v + 1 + rng.integers(c.verbs - 1)) % c.verbs)
            l1, gap, l2 = length(c.part_len), length(c.gap_len), length(c.part_len)
            s = int(rng.integers(0, t - (l1 + gap + l2) + 1))
            content[s:s + l1] = action(v, o)
            content[s + l1 + gap:s + l1 + gap + l2] = action(v2, o)
            if rng.random() < c.gap_action:
                gv = int(rng.integers(c.verbs))
                go = int((o + 1 + rng.integers(c.nouns - 1)) % c.nouns)
                content[s + l1:s + l1 + gap] = action(gv, go)
            span = (s, s + l1 + gap + l2)
            used.append((v2, o))
            text = f"person v{v} o{o} then v{v2} o{o}"
        else:
            ln = length(c.ramp_len)
            s = int(rng.integers(0, t - ln + 1))
            r = np.linspace(0.15, 1.0, ln)[:, None]
            content[s:s + ln] = r * action(v, o) + (1 - r) * world.idle
            span = (s, s + ln)
            text = f"person slowly v{v} o{o}"
        free = _cut([(0, t)], *span)
        for _ in range(int(rng.integers(c.distractors[0], c.distractors[1] + 1))):
            place = _place(rng, free, length(c.distractor_len))
            if place is None:
                break
            while True:
                if rng.random() < c.hard:
                    dv, do = (v, int(rng.integers(c.nouns))) if rng.random() < 0.5 else (int(rng.integers(c.verbs)), o)
                else:
                    dv, do = int(rng.integers(c.verbs)), int(rng.integers(c.nouns))
                if (dv, do) not in used:
                    break
            content[place[0]:place[1]] = action(dv, do)
            free = _cut(free, *place)
        del intensity
        noise = rng.normal(0, c.noise / np.sqrt(d), (t, d))
        feats[i] = content + scene + noise
        words.append(world.vocab.encode(text))
        gt.append((span[0] / t, span[1] / t))
        types.append(kind)
        sents.append(text)
    return GroundingData(feats, words, np.asarray(gt, np.float32), np.full(n, float(t), np.float32),
                         [f"toy{seed}_{i}" for i in range(n)], sents, types)


# ---------------------------------------------------------------- batches
class GroundingDataset(torch.utils.data.Dataset):
    """Items of a :class:`GroundingData` with their masking weights (from the vocabulary)."""

    def __init__(self, data: GroundingData, vocab: Vocabulary, seed_offset: int = 0):
        self.data, self.weights, self.seed_offset = data, torch.as_tensor(vocab.weights), seed_offset
        self.features = torch.as_tensor(data.features)

    def __len__(self) -> int:
        return len(self.data.words)

    def __getitem__(self, i: int) -> dict:
        ids = torch.as_tensor(self.data.words[i], dtype=torch.long)
        return {"video": self.features[i], "words": ids, "weights": self.weights[ids],
                "gt": torch.as_tensor(self.data.gt[i]), "index": i, "mask_seed": self.seed_offset + i}


def collate(items: list[dict]) -> dict:
    n = max(len(it["words"]) for it in items)
    words = torch.zeros(len(items), n, dtype=torch.long)
    weights = torch.zeros(len(items), n)
    for b, it in enumerate(items):
        words[b, :len(it["words"])] = it["words"]
        weights[b, :len(it["words"])] = it["weights"]
    return {"video": torch.stack([it["video"] for it in items]), "words": words, "weights": weights,
            "lengths": torch.as_tensor([len(it["words"]) for it in items]),
            "gt": torch.stack([it["gt"] for it in items]),
            "index": torch.as_tensor([it["index"] for it in items]),
            "mask_seed": torch.as_tensor([it["mask_seed"] for it in items], dtype=torch.long)}
