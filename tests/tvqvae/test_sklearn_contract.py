"""scikit-learn's estimator contract for TVQVAE and ProdLDA.

``ProdLDA`` takes word counts (a numeric 2-D array, dense or sparse), so every check of
``sklearn.utils.estimator_checks`` applies and passes. ``TVQVAE`` takes documents (strings); its
tags say so (``input_tags.string``, no ``two_d_array``), and scikit-learn then generates no check
at all. To run the checks that do apply, they are generated for a test-only subclass whose tags
claim 2-D input: the API checks pass, and the checks that feed numeric arrays are listed in
``TVQVAE_NOT_APPLICABLE`` with the reason. What those checks test (fit returns self, parameters
untouched by fit, idempotent fit, pickling, row-order invariance, ...) is tested on documents in
the ``test_text_*`` functions below.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from reprozoo.data.textcorpora import procedural_corpus
from reprozoo.errors import ConfigError, DataError
from reprozoo.tvqvae import NotFittedError as PackageNotFittedError
from reprozoo.tvqvae.baselines import ProdLDA
from reprozoo.tvqvae.estimator import TVQVAE

torch.set_num_threads(1)

TINY = {"n_codes": 16, "code_dim": 8, "n_neighbors": 2, "vq_hidden": (16,), "vq_epochs": 2, "topic_epochs": 4,
        "batch_size": 32, "max_len": 64, "device": "cpu"}


class TVQVAEOnArrays(TVQVAE):
    """TVQVAE with tags that claim 2-D input, only so that scikit-learn generates its checks."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array, tags.input_tags.string = True, False
        return tags


NUMERIC = "feeds a numeric array to fit; TVQVAE fits documents (strings), tested on text below"
TVQVAE_NOT_APPLICABLE = {
    "check_fit_score_takes_y": NUMERIC + " (fit(docs, y=None) takes y)",
    "check_estimators_overwrite_params": NUMERIC + " (test_text_fit_keeps_params_and_is_idempotent)",
    "check_dont_overwrite_parameters": NUMERIC + " (test_text_fit_keeps_params_and_is_idempotent)",
    "check_estimators_fit_returns_self": NUMERIC + " (test_text_fit_returns_self_and_rows_match)",
    "check_readonly_memmap_input": NUMERIC,
    "check_n_features_in_after_fitting": "documents have no feature count (no n_features_in_)",
    "check_positive_only_tag_during_fit": NUMERIC,
    "check_estimators_dtypes": "numeric dtypes (float32/int64/...) of a 2-D array; input is strings",
    "check_complex_data": "complex numbers; input is strings (refused as DataError: docs must be strings)",
    "check_dtype_object": "an object array of numbers and strings as a 2-D feature matrix",
    "check_estimators_empty_data_messages": "expects numpy's empty-array message; an empty list of documents "
                                            "raises DataError: the corpus is empty (tested in test_estimator.py)",
    "check_pipeline_consistency": NUMERIC,
    "check_estimators_nan_inf": "NaN/inf inside a numeric matrix; documents hold no numbers",
    "check_estimator_sparse_tag": "sparse numeric matrices; input is strings",
    "check_estimator_sparse_array": "sparse numeric matrices; input is strings",
    "check_estimator_sparse_matrix": "sparse numeric matrices; input is strings",
    "check_estimators_pickle": NUMERIC + " (test_text_pickle_and_save_load_round_trip)",
    "check_f_contiguous_array_estimator": "memory layout of a numeric array",
    "check_transformer_data_not_an_array": "an array-like of numbers",
    "check_transformer_general": NUMERIC + " (test_text_fit_returns_self_and_rows_match)",
    "check_methods_sample_order_invariance": NUMERIC + " (test_text_transform_is_row_order_and_subset_invariant)",
    "check_methods_subset_invariance": NUMERIC + " (test_text_transform_is_row_order_and_subset_invariant)",
    "check_fit2d_1sample": "one numeric row; one document raises DataError (too few token vectors for the codes)",
    "check_fit2d_1feature": "one numeric column; documents have no columns",
    "check_dict_unchanged": NUMERIC + " (test_text_transform_leaves_the_estimator_unchanged)",
    "check_fit_idempotent": NUMERIC + " (test_text_fit_keeps_params_and_is_idempotent)",
    "check_fit_check_is_fitted": NUMERIC + " (test_text_fit_returns_self_and_rows_match)",
    "check_n_features_in": "documents have no feature count (no n_features_in_)",
    "check_fit2d_predict1d": "a 1-D numeric array at predict time",
}


def _expected_failures(est) -> dict[str, str]:
    return TVQVAE_NOT_APPLICABLE if isinstance(est, TVQVAEOnArrays) else {}


@parametrize_with_checks(
    [ProdLDA(2, epochs=2, batch_size=16, hidden=(8,), device="cpu"),
     TVQVAEOnArrays(2, n_codes=4, code_dim=2, n_neighbors=1, vq_hidden=(4,), vq_epochs=1, topic_epochs=1,
                    batch_size=8, device="cpu")],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_the_not_applicable_list_names_only_real_checks():
    from sklearn.utils import estimator_checks

    assert all(hasattr(estimator_checks, name) for name in TVQVAE_NOT_APPLICABLE)


# ------------------------------------------------------------------ the parameter API
def test_params_are_stored_unchanged_and_round_trip_through_clone():
    est = TVQVAE(3, vq_hidden=[8, 8], random_state=None, verbose=True)
    params = est.get_params()
    assert params["vq_hidden"] == [8, 8] and params["verbose"] is True and params["random_state"] is None
    assert len(params) == 29  # every __init__ argument, verbose included
    assert clone(est).get_params() == params
    assert est.set_params(n_topics=5, lr=0.01) is est and (est.n_topics, est.lr) == (5, 0.01)
    with pytest.raises(ValueError, match="Invalid parameter 'n_topic'"):
        est.set_params(n_topic=5)
    assert not [k for k in vars(TVQVAE()) if k.endswith("_")]  # nothing fitted-looking before fit


def test_validation_happens_in_fit_not_in_init():
    est = TVQVAE(1, pooling="bogus", n_codes="x")  # stored as given
    with pytest.raises(ConfigError, match="n_codes must be an integer"):
        est.fit(["a document"])
    with pytest.raises(ConfigError, match="random_state must be"):
        TVQVAE(3, random_state="seed").fit(["a document"])


def test_unfitted_raises_sklearns_error():
    assert PackageNotFittedError is NotFittedError
    for call in (lambda m: m.transform(["text"]), lambda m: m.get_topic(0), lambda m: m.save("x")):
        with pytest.raises(NotFittedError, match="is not fitted yet"):
            call(TVQVAE(3))
    with pytest.raises(NotFittedError):
        ProdLDA(3).transform(np.ones((2, 3)))


# ------------------------------------------------------------------ the checks, on documents
@pytest.fixture(scope="module")
def docs():
    return list(procedural_corpus(60, 3, words_per_doc=12, seed=0).texts)


@pytest.fixture(scope="module")
def fitted(tiny_encoder, docs):
    return TVQVAE(3, encoder=tiny_encoder, **TINY, random_state=0).fit(docs)


def test_text_fit_returns_self_and_rows_match(tiny_encoder, docs, fitted):
    est = TVQVAE(3, encoder=tiny_encoder, **TINY, random_state=0)
    assert est.fit(docs) is est
    theta = est.fit_transform(docs + ["xylophonic quixotry"])  # a document without vocabulary words
    assert theta.shape == (len(docs) + 1, 3) and np.allclose(theta.sum(1), 1.0, atol=1e-5)


def test_text_fit_keeps_params_and_is_idempotent(tiny_encoder, docs, fitted):
    est = TVQVAE(3, encoder=tiny_encoder, **TINY, random_state=0)
    before = est.get_params()
    est.fit(docs)
    assert est.get_params() == before
    est.fit(docs)
    assert np.array_equal(est.topics_, fitted.topics_)  # same random_state: the same model, fit after fit
    assert np.array_equal(est.transform(docs[:6]), fitted.transform(docs[:6]))
    other = TVQVAE(3, encoder=tiny_encoder, **TINY, random_state=np.random.RandomState(1)).fit(docs)
    assert not np.array_equal(other.topics_, fitted.topics_)


def test_text_transform_is_row_order_and_subset_invariant(fitted, docs):
    full = fitted.transform(docs[:10])
    order = np.arange(10)[::-1]
    assert np.allclose(fitted.transform([docs[i] for i in order]), full[order], atol=1e-6)
    assert np.allclose(fitted.transform(docs[3:5]), full[3:5], atol=1e-6)


def test_text_transform_leaves_the_estimator_unchanged(fitted, docs):
    before = dict(vars(fitted))
    fitted.transform(docs[:4])
    assert vars(fitted) == before


def test_text_pickle_and_save_load_round_trip(fitted, docs, tmp_path):
    from safetensors.torch import load_file

    again = pickle.loads(pickle.dumps(fitted))
    assert np.array_equal(again.transform(docs[:5]), fitted.transform(docs[:5]))
    fitted.save(tmp_path / "a.safetensors")
    loaded = TVQVAE.load(tmp_path / "a.safetensors")
    assert loaded.get_params() == fitted.get_params()
    loaded.save(tmp_path / "b.safetensors")
    a, b = load_file(str(tmp_path / "a.safetensors")), load_file(str(tmp_path / "b.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()  # bit-identical
    assert np.array_equal(loaded.transform(docs[:5]), fitted.transform(docs[:5]))


def test_prodlda_prepared_and_array_fits_agree(tiny_encoder, docs):
    import scipy.sparse as sp

    from reprozoo.tvqvae.corpus import prepare_corpus
    from reprozoo.tvqvae.embeddings import TokenEncoder

    data = prepare_corpus(docs, TokenEncoder(tiny_encoder, max_len=64))
    a = ProdLDA(3, epochs=3, hidden=(8,), device="cpu").fit_prepared(data)
    b = ProdLDA(3, epochs=3, hidden=(8,), device="cpu").fit(sp.csr_matrix(data.bow))
    assert np.array_equal(a.topics_, b.topics_) and a.get_topics(3)[0][0] in data.vocab
    assert np.array_equal(a.transform(data.bow), b.transform(sp.csr_matrix(data.bow)))
    with pytest.raises(DataError, match="Negative values"):
        ProdLDA(2).fit(-np.ones((4, 3)))


def test_fit_logs_its_stages_and_prints_nothing(tiny_encoder, docs, caplog, capsys):
    with caplog.at_level("DEBUG", logger="reprozoo.tvqvae"):
        TVQVAE(3, encoder=tiny_encoder, **TINY, random_state=0).fit(docs)
    got = [r.getMessage() for r in caplog.records if r.name.startswith("reprozoo.tvqvae")]
    assert any(m.startswith("stage B: VQ autoencoder, 16 codes, 2 epochs") for m in got), got
    assert any(m.startswith("TVQ-VAE topics epoch 4/4: loss ") for m in got), got
    assert capsys.readouterr().out == ""
