"""A spoken-command corpus synthesised offline with espeak-ng (voice-assistant style requests).

Sentences come from a small grammar (about 60 words: "turn on the lights in the kitchen", "set
the fan to seventy five percent", "play jazz music", "call anna", "what is the weather in
paris"). Each utterance gets an English accent and a voice variant, a speaking rate and pitch,
a random gain, leading/trailing silence and additive white or pink noise at a random SNR, and is
written as a 16 kHz 16-bit mono WAV plus one line of a JSON-lines manifest.

Splits: ``pool`` (the active-learning pool) and ``dev`` share accents, variants and sentences;
``test`` uses held-out accents, held-out variants and sentences that never occur in pool or dev
(sentences are assigned to a side by a hash of their text).

The corpus is a pure function of :class:`CommandCorpusConfig` and the synthesiser version; it is
cached under ``$REPROZOO_CACHE/spoken_commands/<content hash>/`` (default ``~/.cache/reprozoo``),
built into a temporary folder and renamed into place, so an interrupted build leaves no partial
corpus. Delete the folder to rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from reprozoo.errors import ConfigError, DataError
from reprozoo.runtime.progress import progress_bar

GENERATOR_VERSION = 1
SPLITS = ("pool", "dev", "test")

DEVICES = ("lights", "fan", "heater", "radio", "television", "lamp", "oven", "speaker")
ROOMS = ("kitchen", "bedroom", "living room", "bathroom", "garage", "office")
GENRES = ("jazz", "rock", "classical", "pop", "blues", "country")
NAMES = ("anna", "david", "maria", "peter", "sophie", "james", "laura", "mike")
CITIES = ("paris", "london", "tokyo", "berlin", "madrid", "boston", "seoul", "rome")
_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_words(n: int) -> str:
    """0..100 as English words ("seventy five", "one hundred")."""
    if not 0 <= n <= 100:
        raise ValueError(f"number_words covers 0..100, got {n}")
    if n == 100:
        return "one hundred"
    if n < 20:
        return _ONES[n]
    return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])


def sentences_by_template() -> dict[str, list[str]]:
    """Every sentence of the grammar, grouped by template."""
    return {
        "switch": [f"turn {s} the {d} in the {r}" for s in ("on", "off") for d in DEVICES for r in ROOMS],
        "set": [f"set the {d} to {number_words(n)} percent" for d in DEVICES for n in range(101)],
        "play": [f"play {g} music" for g in GENRES],
        "call": [f"call {n}" for n in NAMES],
        "weather": [f"what is the weather in {c}" for c in CITIES],
    }


def sentence_side(text: str, test_fraction: float) -> str:
    """'test' or 'pool' for a sentence, by a stable hash of its text."""
    h = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test_fraction else "pool"


@dataclass
class CommandCorpusConfig:
    """Everything that determines the corpus (its hash is the cache key)."""

    n_pool: int = 3000
    n_dev: int = 300
    n_test: int = 500
    seed: int = 0
    pool_accents: list[str] = field(default_factory=lambda: ["en-us", "en", "en-gb-x-rp", "en-029", "en-us-nyc"])
    test_accents: list[str] = field(default_factory=lambda: ["en-gb-scotland", "en-gb-x-gbclan"])
    pool_variants: list[str] = field(default_factory=lambda: ["m1", "m2", "m3", "m4", "f1", "f2", "f3", "klatt"])
    test_variants: list[str] = field(default_factory=lambda: ["m7", "f4", "f5"])
    test_sentence_fraction: float = 0.25
    rate_wpm: tuple[int, int] = (130, 190)
    pitch: tuple[int, int] = (25, 75)
    gain_db: tuple[float, float] = (-6.0, 0.0)
    pad_ms: tuple[int, int] = (0, 300)  # leading and trailing silence, each drawn in this range
    snr_db: tuple[float, float] = (10.0, 30.0)
    noise_kinds: list[str] = field(default_factory=lambda: ["white", "pink"])
    sample_rate: int = 16000

    def validate(self) -> None:
        for name in ("n_pool", "n_dev", "n_test"):
            if getattr(self, name) < 1:
                raise ConfigError(f"corpus {name} must be >= 1, got {getattr(self, name)}")
        if not self.pool_accents or not self.test_accents or not self.pool_variants or not self.test_variants:
            raise ConfigError("corpus accents and variants lists must be non-empty")
        shared = (set(self.pool_accents) & set(self.test_accents)) | (set(self.pool_variants) & set(self.test_variants))
        if shared:
            raise ConfigError(f"test accents/variants must not occur in the pool: {sorted(shared)}")
        if not 0.05 <= self.test_sentence_fraction <= 0.95:
            raise ConfigError(f"corpus test_sentence_fraction must be in [0.05, 0.95], got {self.test_sentence_fraction}")
        for name in ("rate_wpm", "pitch", "gain_db", "pad_ms", "snr_db"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ConfigError(f"corpus {name} range must be (low, high) with low <= high, got {(lo, hi)}")
        if self.rate_wpm[0] < 80 or self.rate_wpm[1] > 450:
            raise ConfigError(f"corpus rate_wpm must lie in [80, 450], got {self.rate_wpm}")
        if self.pitch[0] < 0 or self.pitch[1] > 99:
            raise ConfigError(f"corpus pitch must lie in [0, 99], got {self.pitch}")
        if self.pad_ms[0] < 0:
            raise ConfigError(f"corpus pad_ms must be >= 0, got {self.pad_ms}")
        bad = [k for k in self.noise_kinds if k not in ("white", "pink", "none")]
        if bad or not self.noise_kinds:
            raise ConfigError(f"corpus noise_kinds must be drawn from white, pink, none; got {self.noise_kinds}")
        if self.sample_rate < 8000:
            raise ConfigError(f"corpus sample_rate must be >= 8000, got {self.sample_rate}")

    def key(self, synth_version: str) -> str:
        payload = json.dumps({"cfg": asdict(self), "synth": synth_version, "gen": GENERATOR_VERSION},
                             sort_keys=True, default=list)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cache_root() -> Path:
    return Path(os.environ.get("REPROZOO_CACHE", Path.home() / ".cache" / "reprozoo")) / "spoken_commands"


def _noise(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind != "pink":
        return white
    spec = np.fft.rfft(white)
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spec / np.sqrt(f), n)


def _plan(cfg: CommandCorpusConfig) -> list[dict]:
    """The per-utterance recipe (sentence, voice, rate, ...) of every split, deterministically."""
    groups = sentences_by_template()
    sides = {side: {t: [s for s in ss if sentence_side(s, cfg.test_sentence_fraction) == side]
                    for t, ss in groups.items()} for side in ("pool", "test")}
    plan = []
    for split, n in (("pool", cfg.n_pool), ("dev", cfg.n_dev), ("test", cfg.n_test)):
        side = "test" if split == "test" else "pool"
        templates = [t for t in groups if sides[side][t]]
        accents = cfg.test_accents if split == "test" else cfg.pool_accents
        variants = cfg.test_variants if split == "test" else cfg.pool_variants
        rng = np.random.default_rng([cfg.seed, SPLITS.index(split)])
        for i in range(n):
            t = templates[rng.integers(len(templates))]
            text = sides[side][t][rng.integers(len(sides[side][t]))]
            plan.append({
                "id": f"{split}-{i:05d}", "split": split, "text": text, "template": t,
                "accent": accents[rng.integers(len(accents))], "variant": variants[rng.integers(len(variants))],
                "rate": int(rng.integers(cfg.rate_wpm[0], cfg.rate_wpm[1] + 1)),
                "pitch": int(rng.integers(cfg.pitch[0], cfg.pitch[1] + 1)),
                "gain_db": float(rng.uniform(*cfg.gain_db)),
                "pad": [int(rng.integers(cfg.pad_ms[0], cfg.pad_ms[1] + 1)) for _ in range(2)],
                "snr_db": float(rng.uniform(*cfg.snr_db)),
                "noise": cfg.noise_kinds[rng.integers(len(cfg.noise_kinds))],
                "noise_seed": int(rng.integers(2**31)),
            })
    return plan


def render(item: dict, tts, sample_rate: int = 16000) -> np.ndarray:
    """Synthesise one planned utterance: speech, resample, gain, padding, noise (float32 mono)."""
    from reprozoo.data.speech import resample

    wave, sr = tts.synthesize(item["text"], f"{item['accent']}+{item['variant']}", item["rate"], item["pitch"])
    wave = resample(wave, sr, sample_rate).astype(np.float64)
    peak = np.abs(wave).max()
    wave = wave / max(peak, 1e-6) * 0.7 * 10 ** (item["gain_db"] / 20)
    speech_power = float(np.mean(wave**2))
    lead, trail = (int(p * sample_rate / 1000) for p in item["pad"])
    wave = np.concatenate([np.zeros(lead), wave, np.zeros(trail)])
    if item["noise"] != "none":
        noise = _noise(np.random.default_rng(item["noise_seed"]), wave.size, item["noise"])
        noise *= np.sqrt(speech_power / 10 ** (item["snr_db"] / 10) / max(float(np.mean(noise**2)), 1e-12))
        wave = wave + noise
    return np.clip(wave, -1.0, 1.0).astype(np.float32)


def build_command_corpus(cfg: CommandCorpusConfig | None = None, *, root: str | Path | None = None,
                         backend: str = "auto", progress: bool | None = None) -> Path:
    """Synthesise the corpus (or reuse the cached copy); returns its folder, which holds
    ``manifest.jsonl`` (one line per utterance, with a ``split`` key), ``wav/`` and ``info.json``."""
    from reprozoo.data.espeak import Espeak
    from reprozoo.data.speech import write_manifest
    from reprozoo.runtime.extras import require

    sf = require("soundfile", what="writing the synthetic speech corpus")

    cfg = cfg or CommandCorpusConfig()
    cfg.validate()
    tts = Espeak(backend)
    root = Path(root) if root is not None else cache_root()
    final = root / cfg.key(tts.version)
    if (final / "manifest.jsonl").exists():
        return final
    plan = _plan(cfg)
    tmp = root / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "wav").mkdir(parents=True)
    items = []
    with progress_bar(len(plan), "synthesising spoken commands", progress) as bar:
        for item in plan:
            wave = render(item, tts, cfg.sample_rate)
            rel = f"wav/{item['id']}.wav"
            sf.write(str(tmp / rel), wave, cfg.sample_rate, subtype="PCM_16")
            items.append({**item, "audio": rel, "duration": round(wave.size / cfg.sample_rate, 4)})
            bar.update()
    write_manifest(tmp / "manifest.jsonl", items)
    (tmp / "info.json").write_text(json.dumps({"config": asdict(cfg), "synthesizer": tts.version,
                                               "generator_version": GENERATOR_VERSION}, indent=1, default=list))
    try:
        tmp.rename(final)
    except OSError:  # another process finished the same corpus first
        shutil.rmtree(tmp, ignore_errors=True)
        if not (final / "manifest.jsonl").exists():
            raise
    return final


def load_command_corpus(cfg: CommandCorpusConfig | None = None, **kw) -> dict[str, list[dict]]:
    """``{"pool": [...], "dev": [...], "test": [...]}`` of manifest items with absolute audio paths."""
    from reprozoo.data.speech import read_manifest

    folder = build_command_corpus(cfg, **kw)
    items, _ = read_manifest(folder / "manifest.jsonl")
    out: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for it in items:
        if it.get("split") not in out:
            raise DataError(f"{folder / 'manifest.jsonl'}: item {it['id']} has no valid split")
        out[it["split"]].append(it)
    return out


__all__ = ["CommandCorpusConfig", "build_command_corpus", "load_command_corpus", "number_words",
           "sentences_by_template", "sentence_side", "render", "SPLITS"]
