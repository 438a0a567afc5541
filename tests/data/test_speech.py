import json

import numpy as np
import pytest
import soundfile as sf

from reprozoo.data.speech import load_audio, read_librispeech, read_manifest, resample
from reprozoo.errors import DataError


def _tone(sr, seconds=0.5, f=440.0):
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_stereo_44k_is_mixed_down_and_resampled(tmp_path):
    left = _tone(44100)
    sf.write(tmp_path / "s.wav", np.stack([left, 0.5 * left], 1), 44100)
    wave = load_audio(tmp_path / "s.wav")
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert wave.size == 8000  # 0.5 s at 16 kHz
    assert abs(np.abs(wave).max() - 0.75 * 0.5) < 0.01  # mean of the channels


def test_resample_lengths():
    assert resample(np.zeros(22050), 22050, 16000).size == 16000
    assert resample(np.ones(100), 16000, 16000).size == 100
    with pytest.raises(DataError, match="positive"):
        resample(np.ones(10), 0, 16000)


def test_bad_audio_files_are_named(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros((0,), np.float32), 16000)
    with pytest.raises(DataError, match="empty.wav.*no samples"):
        load_audio(tmp_path / "empty.wav")
    sf.write(tmp_path / "silent.wav", np.zeros(1600, np.float32), 16000)
    with pytest.raises(DataError, match="silent.wav.*silent"):
        load_audio(tmp_path / "silent.wav")
    assert load_audio(tmp_path / "silent.wav", allow_silent=True).size == 1600
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(DataError, match="text.wav: cannot read audio"):
        load_audio(tmp_path / "text.wav")
    with pytest.raises(DataError, match="missing.wav: no such audio file"):
        load_audio(tmp_path / "missing.wav")


def test_librispeech_folder(tmp_path):
    chap = tmp_path / "19" / "198"
    chap.mkdir(parents=True)
    for i in range(2):
        sf.write(chap / f"19-198-000{i}.flac", _tone(16000, 0.25 * (i + 1)), 16000)
    (chap / "19-198.trans.txt").write_text("19-198-0000 HELLO WORLD\n19-198-0001 CALL ANNA\n")
    items = read_librispeech(tmp_path)
    assert [it["text"] for it in items] == ["HELLO WORLD", "CALL ANNA"]
    assert [round(it["duration"], 3) for it in items] == [0.25, 0.5]
    (chap / "19-198.trans.txt").write_text("19-198-0009 MISSING\n")
    with pytest.raises(DataError, match="19-198.trans.txt:1: no audio file 19-198-0009"):
        read_librispeech(tmp_path)


def test_manifest_relative_paths_missing_files_and_bad_lines(tmp_path):
    sf.write(tmp_path / "a.wav", _tone(8000), 8000)
    lines = [{"audio": "a.wav", "text": "play jazz music"}, {"audio": "gone.wav", "text": "x", "duration": 1.0}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(DataError, match="m.jsonl:2: audio file .*gone.wav does not exist"):
        read_manifest(tmp_path / "m.jsonl")
    items, skipped = read_manifest(tmp_path / "m.jsonl", missing="skip")
    assert skipped == 1 and len(items) == 1
    assert items[0]["id"] == "a" and items[0]["duration"] == pytest.approx(0.5)
    (tmp_path / "bad.jsonl").write_text('{"audio": "a.wav"}\n')
    with pytest.raises(DataError, match="bad.jsonl:1: each line needs 'audio' and 'text'"):
        read_manifest(tmp_path / "bad.jsonl")
