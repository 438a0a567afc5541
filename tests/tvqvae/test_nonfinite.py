"""TVQ-VAE misuse: corrupt saves, impossible topics, string labels, non-finite numbers."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from reprozoo.errors import CheckpointError, ConfigError, DataError
from reprozoo.tvqvae.estimator import TVQVAE
from reprozoo.tvqvae.metrics import best_half, clustering_scores, purity, top_words
from tests.tvqvae.former_save import write_former_save

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
def test_load_of_corrupt_former_saves_is_a_checkpoint_error(est, tmp_path, config, weights, message):
    write_former_save(est, tmp_path / "m")
    if config is not None:
        (tmp_path / "m" / "config.json").write_bytes(config)
    if weights is not None:
        (tmp_path / "m" / "weights.safetensors").write_bytes(weights)
    with pytest.raises(CheckpointError, match=message) as info:
        TVQVAE.load(tmp_path / "m")
    assert "\n" not in str(info.value)


def test_load_with_bad_params(est, tmp_path):
    write_former_save(est, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    meta["params"]["no_such_param"] = 1
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="config.json has invalid parameters"):
        TVQVAE.load(tmp_path / "m")


def test_a_former_save_loads_as_the_same_model_and_saves_in_the_library_format(est, tmp_path):
    from reprozoo.runtime.checkpoint import checkpoint_meta

    old = TVQVAE.load(write_former_save(est, tmp_path / "m"))
    assert np.array_equal(old.topics_, est.topics_) and old.get_params() == est.get_params()
    assert old.vocab_.to_list() == WORDS
    for a, b in ((old.vq_, est.vq_), (old.model_, est.model_)):
        assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    new = old.save(tmp_path / "m.safetensors")
    assert checkpoint_meta(new)["model"] == "TVQVAE"
    assert est.save(tmp_path / "e.safetensors").read_bytes() == new.read_bytes()


def _save_with(est, path, **changes):
    """``est`` saved, then its file rewritten with ``changes`` to the metadata (``None`` drops a field)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    est.save(path)
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    inner = json.loads(meta["reprozoo"])
    for key, value in changes.items():
        where = inner["extra"] if key in ("vocabulary", "input_dim") else inner
        if value is None:
            where.pop(key)
        else:
            where[key] = value
    if "drop_tensor" in inner:
        tensors.pop(inner.pop("drop_tensor"))
    save_file(tensors, str(path), metadata={**meta, "reprozoo": json.dumps(inner)})
    return path


def test_load_of_bad_library_checkpoints_is_a_one_line_checkpoint_error(est, tmp_path):
    cases = [
        (lambda p: p.write_bytes(b"\x00" * 64), r"^cannot read checkpoint .*m.safetensors"),
        (lambda p: p.write_bytes(b""), r"^cannot read checkpoint "),
        (lambda p: _save_with(est, p, model="prodlda"), r"is not a saved TVQVAE: it holds the model 'prodlda'$"),
        (lambda p: _save_with(est, p, vocabulary=None), "without its vocabulary or input_dim"),
        (lambda p: _save_with(est, p, kwargs={"n_topics": 6, "no_such_param": 1}), "has invalid parameters"),
        (lambda p: _save_with(est, p, kwargs={**est.get_params(), "vq_hidden": [40, 40], "n_codes": 30}),
         r"checkpoint does not fit the TVQVAE's VQ autoencoder"),
        (lambda p: _save_with(est, p, drop_tensor="topic.decoder.beta"), r"1 missing key\(s\): decoder.beta"),
    ]
    for i, (write, message) in enumerate(cases):
        path = tmp_path / str(i) / "m.safetensors"
        path.parent.mkdir()
        write(path)
        with pytest.raises(CheckpointError, match=message) as info:
            TVQVAE.load(path)
        assert "\n" not in str(info.value), i
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="not a saved TVQVAE: it holds another format"):
        TVQVAE.load(tmp_path / "plain.safetensors")
    with pytest.raises(CheckpointError, match="not a saved TVQVAE"):
        TVQVAE.load(tmp_path / "missing")


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
