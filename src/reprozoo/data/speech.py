"""Speech audio and corpus readers: any WAV/FLAC/OGG file as 16 kHz mono float32, LibriSpeech-style
folders (``*.trans.txt`` next to ``.flac`` files) and JSON-lines manifests.

An utterance is a plain dict ``{"id", "audio" (path), "text", "duration" (seconds)}``; readers
return lists of them. Audio is read with ``soundfile``, mixed down to mono (mean of channels) and
resampled with ``scipy.signal.resample_poly``. Problems name the file:

- unreadable / not audio, a sample rate <= 0, zero samples: :class:`~reprozoo.errors.DataError`;
- digital silence (peak below ``silence_peak``): DataError unless ``allow_silent=True``;
- a manifest line pointing at a missing file: DataError naming the line, or, with
  ``missing="skip"``, skipped and counted in the returned ``skipped`` number.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from reprozoo.errors import DataError
from reprozoo.runtime.checks import finite_array, integer
from reprozoo.runtime.extras import require

SAMPLE_RATE = 16000
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def resample(wave: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``) of a 1-D float signal."""
    if not (orig_sr > 0 and target_sr > 0):  # NaN fails this too
        raise DataError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    orig_sr, target_sr = integer("orig_sr", orig_sr), integer("target_sr", target_sr)
    wave = finite_array("wave", wave, ndim=1)
    if orig_sr == target_sr:
        return np.asarray(wave, np.float32)
    from scipy.signal import resample_poly

    ratio = Fraction(target_sr, orig_sr).limit_denominator(1000)
    return resample_poly(np.asarray(wave, np.float64), ratio.numerator, ratio.denominator).astype(np.float32)


def load_audio(path: str | Path, target_sr: int = SAMPLE_RATE, *, allow_silent: bool = False,
               silence_peak: float = 1e-4) -> np.ndarray:
    """Read ``path`` as float32 mono at ``target_sr`` (any input rate; channels are averaged)."""
    sf = require("soundfile", what="reading audio files")

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such audio file")
    try:
        wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise DataError(f"{path}: cannot read audio ({err}); expected WAV, FLAC or OGG") from None
    if sr <= 0:
        raise DataError(f"{path}: invalid sample rate {sr}")
    if wave.shape[0] == 0:
        raise DataError(f"{path}: the file holds no samples (empty audio)")
    mono = wave.mean(axis=1)
    if not np.all(np.isfinite(mono)):
        raise DataError(f"{path}: audio contains NaN or infinite samples")
    if not allow_silent and float(np.abs(mono).max()) < silence_peak:
        raise DataError(f"{path}: the audio is silent (peak below {silence_peak:g}); nothing to transcribe")
    return resample(mono, int(sr), target_sr)


def audio_duration(path: str | Path) -> float:
    sf = require("soundfile", what="reading audio files")

    try:
        info = sf.info(str(path))
    except Exception as err:
        raise DataError(f"{path}: cannot read audio header ({err})") from None
    return info.frames / info.samplerate if info.samplerate > 0 else 0.0


def read_librispeech(root: str | Path) -> list[dict]:
    """Every utterance under ``root`` in LibriSpeech layout: ``<spk>/<chapter>/<spk>-<chapter>.trans.txt``
    with lines ``<utt-id> TRANSCRIPT`` and audio ``<utt-id>.flac`` (or .wav) beside it."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected LibriSpeech-style <speaker>/<chapter>/*.trans.txt)")
    items = []
    for trans in sorted(root.rglob("*.trans.txt")):
        for n, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            utt, _, text = line.strip().partition(" ")
            audio = next((trans.parent / f"{utt}{s}" for s in AUDIO_SUFFIXES if (trans.parent / f"{utt}{s}").exists()),
                         None)
            if audio is None:
                raise DataError(f"{trans}:{n}: no audio file {utt}.flac/.wav next to the transcript")
            items.append({"id": utt, "audio": str(audio), "text": text.strip(), "duration": audio_duration(audio)})
    if not items:
        raise DataError(f"{root}: no *.trans.txt transcripts found")
    return items


def read_manifest(path: str | Path, *, missing: str = "error") -> tuple[list[dict], int]:
    """JSON-lines manifest, one ``{"audio": path, "text": ..., "duration": optional, "id": optional}``
    per line; relative audio paths are relative to the manifest's folder. Returns (items, skipped)."""
    if missing not in ("error", "skip"):
        raise DataError(f"missing must be 'error' or 'skip', got '{missing}'")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such manifest")
    items, skipped = [], 0
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} on line "
                        f"{err.object[:err.start].count(10) + 1}); save the manifest as UTF-8") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{n}: not valid JSON ({err.msg})") from None
        if not isinstance(rec, dict) or "audio" not in rec or "text" not in rec:
            raise DataError(f"{path}:{n}: each line needs 'audio' and 'text' keys")
        if not isinstance(rec["audio"], str) or not rec["audio"] or not isinstance(rec["text"], str):
            raise DataError(f"{path}:{n}: 'audio' must be a non-empty path string and 'text' a string")
        audio = Path(rec["audio"])
        audio = audio if audio.is_absolute() else path.parent / audio
        if not audio.is_file():
            if missing == "skip":
                skipped += 1
                continue
            raise DataError(f"{path}:{n}: audio file {audio} does not exist (pass missing='skip' to skip such lines)")
        duration = rec.get("duration")
        if duration is not None and (isinstance(duration, bool) or not isinstance(duration, (int, float))
                                     or not math.isfinite(duration) or duration <= 0):
            raise DataError(f"{path}:{n}: 'duration' must be a positive number of seconds, got {duration!r}")
        items.append({**rec, "id": str(rec.get("id", audio.stem)), "audio": str(audio), "text": str(rec["text"]),
                      "duration": float(duration) if duration is not None else audio_duration(audio)})
    return items, skipped


def write_manifest(path: str | Path, items: list[dict]) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(it) + "\n" for it in items), encoding="utf-8")
    tmp.replace(path)


__all__ = ["SAMPLE_RATE", "load_audio", "resample", "read_librispeech", "read_manifest", "write_manifest",
           "audio_duration"]
