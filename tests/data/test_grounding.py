import json

import h5py
import numpy as np
import pytest

from reprozoo.data.grounding import (
    FeatureStore,
    Vocabulary,
    build_samples,
    read_activitynet_captions,
    read_charades_sta,
    resample_clips,
    tokenize,
)
from reprozoo.errors import DataError


def test_resample_clips_mean_pools_contiguous_chunks():
    x = np.arange(10, dtype=np.float32)[:, None]
    out = resample_clips(x, 4)  # boundaries round(j * 10 / 4) = 0, 2, 5, 8, 10
    assert out[:, 0].tolist() == [0.5, 3.0, 6.0, 8.5]
    short = resample_clips(np.array([[1.0], [3.0]]), 4)  # boundaries 0, 0, 1, 2, 2: empty chunks repeat
    assert short[:, 0].tolist() == [1.0, 1.0, 3.0, 3.0]
    with pytest.raises(DataError, match="non-empty"):
        resample_clips(np.zeros((0, 3)), 4)


def test_vocabulary_top_words_random_or_given_vectors_and_content_weights(tmp_path):
    sents = ["A person opens the door.", "The person closes the door", "person sits"]
    v = Vocabulary.build(sents, max_size=4, dim=5, seed=1)
    assert v.words == ["person", "the", "door", "a"]  # by count, ties alphabetically
    assert v.vectors.shape == (5, 5) and not v.vectors[0].any()
    assert v.weights.tolist() == [1.0, 2.0, 1.0, 2.0, 1.0]  # content words 2, function words 1
    assert v.encode("The door, the PERSON and a cat") == [2, 3, 2, 1, 4]
    assert np.array_equal(Vocabulary.build(sents, max_size=4, dim=5, seed=1).vectors, v.vectors)
    glove = tmp_path / "vec.txt"
    glove.write_text("door 1 2 3\nperson 4 5 6\nzebra 7 8 9\n")
    g = Vocabulary.build(sents, max_size=3, vectors=glove)
    assert g.dim == 3 and g.vectors[1].tolist() == [4, 5, 6] and g.vectors[3].tolist() == [1, 2, 3]
    with pytest.raises(DataError, match="no word of the model"):
        v.encode_checked("zebra zebra")
    assert tokenize("Person's cup-holder") == ["person's", "cup", "holder"]


def _features(tmp_path):
    folder = tmp_path / "feats"
    folder.mkdir()
    np.save(folder / "v1.npy", np.ones((30, 4), np.float32))
    np.save(folder / "v2.npy", np.zeros((7, 4), np.float32))
    np.save(folder / "bad.npy", np.ones((5, 3), np.float32))
    return folder


def test_charades_sta_lines_and_json_with_skips_reported(tmp_path):
    folder = _features(tmp_path)
    ann = tmp_path / "charades_sta_train.txt"
    ann.write_text("v1 1.0 4.0##A person opens a door.\n"
                   "v2 2.0 1.0##person sits down\n"  # start >= end
                   "missing 0 1##person runs\n"  # no feature file
                   "v1 5.0 40.0##person opens door\n"  # end beyond the 30 s video
                   "bad 0 1##person opens door\n"  # wrong dimension
                   "v2 0.5 2.0##zebra\n")  # no known word
    rows = read_charades_sta(ann, durations={"v1": 30.0, "v2": 7.0, "bad": 5.0})
    vocab = Vocabulary.build([r.sentence for r in rows[:1]], dim=4)
    data = build_samples(rows, FeatureStore(folder), vocab, clips=8, feature_dim=4)
    assert data.features.shape == (1, 8, 4) and data.vids == ["v1"]
    assert data.gt[0].tolist() == pytest.approx([1 / 30, 4 / 30])
    rep = data.report
    assert rep.kept == 1 and sum(rep.skipped.values()) == 5
    assert rep.skipped == {"start >= end": 1, "missing features": 1, "timestamps outside the video": 1,
                           "wrong feature dimension": 1, "no known words": 1}
    assert "skipped 5" in rep.summary() and "row 2 (missing)" in rep.summary()
    js = tmp_path / "train.json"
    js.write_text(json.dumps([["v1", 30.0, [1.0, 4.0], "person opens a door"]]))
    assert read_charades_sta(js)[0].duration == 30.0
    with pytest.raises(DataError, match="expected 'vid start end##sentence'"):
        (tmp_path / "broken.txt").write_text("v1 1.0##no end\n")
        read_charades_sta(tmp_path / "broken.txt")


def test_activitynet_captions_with_hdf5_features(tmp_path):
    ann = tmp_path / "val_2.json"
    ann.write_text(json.dumps({"v_a": {"duration": 20.0, "timestamps": [[0, 5], [4, 19]],
                                       "sentences": ["A man jumps.", "He lands on a mat"]}}))
    h5 = tmp_path / "c3d.hdf5"
    with h5py.File(h5, "w") as f:
        f.create_group("v_a").create_dataset("c3d_features", data=np.arange(24, dtype=np.float32).reshape(12, 2))
    rows = read_activitynet_captions(ann)
    assert [(r.start, r.end) for r in rows] == [(0, 5), (4, 19)]
    vocab = Vocabulary.build([r.sentence for r in rows], dim=3)
    data = build_samples(rows, FeatureStore(h5), vocab, clips=4)
    assert data.features.shape == (2, 4, 2) and data.report.kept == 2
    assert data.features[0, 0].tolist() == [2.0, 3.0]  # mean of rows 0..2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"v": {"duration": 3, "timestamps": [[0, 1]], "sentences": []}}))
    with pytest.raises(DataError, match="1 timestamps but 0 sentences"):
        read_activitynet_captions(bad)


def test_no_usable_sample_is_an_error_naming_the_reasons(tmp_path):
    folder = _features(tmp_path)
    ann = tmp_path / "a.txt"
    ann.write_text("gone 0 1##person runs\n")
    vocab = Vocabulary.build(["person runs"], dim=4)
    with pytest.raises(DataError, match="no usable sample: kept 0 samples, skipped 1: 1 missing features"):
        build_samples(read_charades_sta(ann, {"gone": 3.0}), FeatureStore(folder), vocab)
    with pytest.raises(DataError, match="does not exist"):
        FeatureStore(tmp_path / "nope")
