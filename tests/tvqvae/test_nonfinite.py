"""TVQ-VAE misuse: corrupt saves, impossible topics, string labels, non-finite numbers."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from reprozoo.errors import CheckpointError, ConfigError, DataError
from reprozoo.tvqvae.estimator import TVQVAE
from reprozoo.tvqvae.metrics import best_half, clustering_scores, purity, top_words

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tvqvae"
WORDS = [f"w{i:02d}" for i in range(60)]


@pytest.fixture(scope="module")
def est():
    return TVQVAE.from_official(FIXTURES / "weights.safetensors", WORDS)


def test_generate_refuses_missing_topics_and_nan_mixtures(est):
    with pytest.raises(DataError, match=r"^topic 99 does not exist; this model has topics 0..5$"):
        est.generate(99)  # used to be a numpy IndexError
    with pytest.raises(DataError, match=r"^topic -1 does not exist"):
        est.generate(-1)
    with pytest.raises(DataError, match=r"^topic_mixture must be finite; index 0 is nan"):
        est.generate([math.nan] + [0.2] * 5)
    with pytest.raises(ConfigError, match=r"^n_words must be >= 1, got 0$"):
        est.generate(0, n_words=0)
    assert len(est.generate(2, n_words=7, random_state=0)) == 7


@pytest.mark.parametrize("config, weights, message", [
    (b"{not json", None, r"^cannot read .*config.json: JSONDecodeError: "),
    (b"\xff\xfe\x00garbage", None, r"^cannot read .*config.json: UnicodeDecodeError: "),
    (b"[1, 2]", None, r"config.json is not a TVQVAE save of format 1$"),
    (None, b"\x00" * 64, r"^cannot read .*weights.safetensors: "),
    (None, b"", r"^cannot read .*weights.safetensors: "),
])
def test_load_of_corrupt_files_is_a_checkpoint_error(est, tmp_path, config, weights, message):
    est.save(tmp_path / "m")
    if config is not None:
        (tmp_path / "m" / "config.json").write_bytes(config)
    if weights is not None:
        (tmp_path / "m" / "weights.safetensors").write_bytes(weights)
    with pytest.raises(CheckpointError, match=message) as info:
        TVQVAE.load(tmp_path / "m")
    assert "\n" not in str(info.value)


def test_load_with_bad_params(est, tmp_path):
    est.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    meta["params"]["no_such_param"] = 1
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="config.json has invalid parameters"):
        TVQVAE.load(tmp_path / "m")


def test_purity_on_string_labels_and_checks():
    # string labels used to raise TypeError inside np.bincount
    assert purity(["a", "a", "b", "b", "b"], [0, 0, 0, 1, 1]) == pytest.approx(0.8)
    assert purity([0, 0, 1, 1, 1], ["x", "x", "x", "y", "y"]) == pytest.approx(0.8)
    with pytest.raises(DataError, match=r"^3 labels but 2 cluster assignments$"):
        purity([1, 2, 3], [1, 2])
    with pytest.raises(DataError, match=r"^labels must not hold NaN or inf; index 1 does$"):
        purity([1.0, math.nan], [0, 1])
    with pytest.raises(DataError, match=r"^theta must be finite; index \(1, 0\) is inf"):
        clustering_scores(np.array([[0.5, 0.5], [math.inf, 0.0]]), [0, 1], 2)
    with pytest.raises(DataError, match=r"^scores must be finite"):
        best_half([0.1, math.nan])
    with pytest.raises(DataError, match=r"^topic_word must be finite"):
        top_words(np.array([[math.nan, 1.0]]), ["a", "b"])


def test_transform_counts_checks_histograms(est):
    with pytest.raises(DataError, match=r"^code counts must be finite; index \(0, 1\) is nan"):
        est.transform_counts(np.array([[0.0, math.nan] + [0.0] * (est.n_codes - 2)]))
    with pytest.raises(DataError, match=rf"^code counts must be \(n_docs, {est.n_codes}\) histograms >= 0"):
        est.transform_counts(np.ones((2, 3)))
    theta = est.transform_counts(np.ones((2, est.n_codes)))
    assert theta.shape == (2, 6) and np.allclose(theta.sum(1), 1, atol=1e-6)
