import json
import re

import numpy as np
import pytest
import soundfile as sf

from reprozoo.data.espeak import Espeak
from reprozoo.data.spoken_commands import (
    CommandCorpusConfig,
    _plan,
    build_command_corpus,
    load_command_corpus,
    number_words,
    sentences_by_template,
)
from reprozoo.errors import ConfigError, DataError


def test_number_words():
    assert [number_words(n) for n in (0, 13, 20, 21, 75, 100)] == [
        "zero", "thirteen", "twenty", "twenty one", "seventy five", "one hundred"]


def test_grammar_is_in_the_ctc_alphabet():
    groups = sentences_by_template()
    assert len(groups["switch"]) == 96 and len(groups["set"]) == 808
    words = {w for ss in groups.values() for s in ss for w in s.split()}
    assert 60 <= len(words) <= 80
    assert all(re.fullmatch(r"[a-z']+( [a-z']+)*", s) for ss in groups.values() for s in ss)


def test_test_split_holds_out_sentences_accents_and_variants():
    cfg = CommandCorpusConfig(n_pool=400, n_dev=50, n_test=100)
    plan = _plan(cfg)
    pool = [p for p in plan if p["split"] != "test"]
    test = [p for p in plan if p["split"] == "test"]
    assert not {p["text"] for p in pool} & {p["text"] for p in test}
    assert {p["accent"] for p in test} <= set(cfg.test_accents)
    assert not {p["variant"] for p in pool} & {p["variant"] for p in test}
    assert plan == _plan(cfg)  # deterministic


def test_espeak_library_synthesises_and_rejects_unknown_voices():
    tts = Espeak()
    wave, sr = tts.synthesize("call anna", "en-gb-scotland+f2")
    assert tts.backend == "library" and sr == 22050 and wave.dtype == np.float32
    assert 0.3 < wave.size / sr < 2.0
    with pytest.raises(DataError, match="no voice 'xx-nope'"):
        tts.synthesize("call anna", "xx-nope")


def test_corpus_is_written_cached_and_keyed_by_content(tmp_path):
    cfg = CommandCorpusConfig(n_pool=4, n_dev=1, n_test=2, seed=3)
    folder = build_command_corpus(cfg, root=tmp_path)
    lines = [json.loads(x) for x in (folder / "manifest.jsonl").read_text().splitlines()]
    assert [x["split"] for x in lines] == ["pool"] * 4 + ["dev"] + ["test"] * 2
    wave, sr = sf.read(folder / lines[0]["audio"])
    assert sr == 16000 and wave.ndim == 1 and abs(wave.size / sr - lines[0]["duration"]) < 1e-3
    stamp = (folder / "manifest.jsonl").stat().st_mtime_ns
    assert build_command_corpus(cfg, root=tmp_path) == folder  # cached: not rebuilt
    assert (folder / "manifest.jsonl").stat().st_mtime_ns == stamp
    other = build_command_corpus(CommandCorpusConfig(n_pool=4, n_dev=1, n_test=2, seed=4), root=tmp_path)
    assert other != folder
    splits = load_command_corpus(cfg, root=tmp_path)
    assert {k: len(v) for k, v in splits.items()} == {"pool": 4, "dev": 1, "test": 2}
    assert not list(tmp_path.glob(".*tmp*"))


def test_corpus_config_checks():
    with pytest.raises(ConfigError, match="must not occur in the pool"):
        CommandCorpusConfig(test_accents=["en-us"]).validate()
    with pytest.raises(ConfigError, match="n_pool"):
        CommandCorpusConfig(n_pool=0).validate()
    with pytest.raises(ConfigError, match="noise_kinds"):
        CommandCorpusConfig(noise_kinds=["brown"]).validate()
