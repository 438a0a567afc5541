"""Data readers: non-UTF-8 manifests, bad values and non-finite signals give one-line DataErrors."""

import json
import math

import numpy as np
import pytest

from reprozoo.data import fas_videos, speech
from reprozoo.errors import ConfigError, DataError


def test_fas_manifest_not_utf8(tmp_path):
    p = tmp_path / "m.csv"
    p.write_bytes(b"path,label\nvid\xff\xfe.mp4,live\n")
    with pytest.raises(DataError, match=r"m.csv: not UTF-8 text \(byte 0xff on line 2\); save the manifest as UTF-8$"):
        fas_videos.read_manifest(p)


def test_fas_manifest_with_bom_and_late_bad_byte(tmp_path):
    p = tmp_path / "m.csv"
    p.write_bytes("\ufeffpath,label\nv1.mp4,live\n".encode())
    assert [it.label for it in fas_videos.read_manifest(p)] == [1]  # a BOM is not part of 'path'
    p.write_bytes(b"path,label\nv1.mp4,live\nv2.mp4,\xc3(\n")
    with pytest.raises(DataError, match=r"m.csv: not UTF-8 text \(byte 0xc3 on line 3\)"):
        fas_videos.read_manifest(p)


def test_speech_manifest_not_utf8_and_bad_values(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_bytes(b'{"audio": "a\xe9.wav", "text": "hi"}\n')
    with pytest.raises(DataError, match=r"m.jsonl: not UTF-8 text \(byte 0xe9 on line 1\)"):
        speech.read_manifest(p)
    (tmp_path / "a.wav").write_bytes(b"")
    for rec, message in [({"audio": 3, "text": "hi"}, "'audio' must be a non-empty path string"),
                         ({"audio": "a.wav", "text": None}, "'audio' must be a non-empty path string and 'text' a string"),
                         ({"audio": "a.wav", "text": "hi", "duration": "long"}, "'duration' must be a positive"),
                         ({"audio": "a.wav", "text": "hi", "duration": -1}, "'duration' must be a positive")]:
        p.write_text(json.dumps(rec) + "\n")
        with pytest.raises(DataError, match=rf"m.jsonl:1: {message}"):
            speech.read_manifest(p)
    p.write_text('{"audio": "a.wav", "text": "hi", "duration": NaN}\n')
    with pytest.raises(DataError, match=r"'duration' must be a positive number of seconds, got nan"):
        speech.read_manifest(p)
    p.write_text('{"audio": "a.wav", "text": "hi", "duration": 1.5}\n')
    assert speech.read_manifest(p)[0][0]["duration"] == 1.5


def test_resample_refuses_nan_signal_and_rates():
    with pytest.raises(DataError, match=r"^wave must be finite; index 1 is nan"):
        speech.resample(np.array([0.0, math.nan, 0.1]), 8000, 16000)
    with pytest.raises(DataError, match=r"^sample rates must be positive, got nan -> 16000$"):
        speech.resample(np.zeros(4), math.nan, 16000)
    with pytest.raises(ConfigError, match=r"^target_sr must be an integer, got 16000.5$"):
        speech.resample(np.zeros(4), 8000, 16000.5)
    assert speech.resample(np.zeros(80), 8000, 16000).shape == (160,)
