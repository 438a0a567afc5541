"""Defaults that follow the released code, and the deliberate differences behind named options:
``alpha_hidden`` (1 = the released MLP, 0 = the paper-time linear map), ``best50`` ("mean" or the
released odd-K formula), the VQ options ``codebook_init`` / ``standardize`` / ``restart_dead``,
the released-weights loader and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from reprozoo.data.textcorpora import procedural_corpus
from reprozoo.errors import CheckpointError, DataError
from reprozoo.tvqvae import TVQVAE
from reprozoo.tvqvae.embeddings import TokenEncoder
from reprozoo.tvqvae.estimator import prepare_corpus
from reprozoo.tvqvae.metrics import top_words, topic_quality
from reprozoo.tvqvae.models import TVQDecoder, VQAutoEncoder, standardise_over_topics
from reprozoo.tvqvae.official import load_official_weights
from reprozoo.tvqvae.training import train_vq
from tests.tvqvae.former_save import write_former_save

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tvqvae"
SMALL = {"n_codes": 16, "code_dim": 8, "n_neighbors": 2, "vq_hidden": (16,), "vq_epochs": 2, "topic_epochs": 5,
         "batch_size": 32}


@pytest.fixture(scope="module")
def prepared(tiny_encoder):
    corpus = procedural_corpus(80, 3, words_per_doc=12, seed=0)
    return prepare_corpus(corpus, TokenEncoder(tiny_encoder, max_len=64))


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def test_alpha_hidden_defaults_to_the_released_mlp(prepared):
    est = TVQVAE(3, **SMALL, random_state=0)
    assert est.alpha_hidden == 1 and est.get_params()["alpha_hidden"] == 1
    est.fit_prepared(prepared)
    layers = _linears(est.model_.decoder.alpha)
    assert [(m.in_features, m.out_features) for m in layers] == [(8, 100), (100, 100), (100, len(prepared.vocab))]
    assert isinstance(est.model_.decoder.alpha.net[1], nn.Tanh) and isinstance(est.model_.decoder.alpha.net[3], nn.Tanh)
    assert np.isfinite(est.topics_).all()


def test_alpha_hidden_zero_is_the_linear_option(prepared):
    est = TVQVAE(3, **SMALL, alpha_hidden=0, random_state=0).fit_prepared(prepared)
    (layer,) = _linears(est.model_.decoder.alpha)
    assert (layer.in_features, layer.out_features, layer.bias) == (8, len(prepared.vocab), None)
    mlp = TVQVAE(3, **SMALL, random_state=0).fit_prepared(prepared)
    assert not np.allclose(est.topics_, mlp.topics_)  # the option changes the model
    # both read topics from alpha(tau) standardised over the K topics (zero mean, unit variance per word)
    for m in (est, mlp):
        assert np.abs(m.topics_.mean(0)).max() < 1e-5 and np.abs(m.topics_.std(0) - 1).max() < 1e-2  # eps 1e-5


def test_topic_batchnorm_uses_batch_statistics_in_training_and_running_ones_in_eval():
    torch.manual_seed(0)
    dec = TVQDecoder(4, torch.randn(10, 6), n_words=9)
    theta = torch.softmax(torch.randn(5, 4), -1)
    out = dec.train()(theta)
    assert torch.allclose(out["topic_word"], standardise_over_topics(dec.alpha(dec.tau())), atol=1e-6)
    with torch.no_grad():
        dec.topic_bn.running_mean.fill_(0.5)
        dec.topic_bn.running_var.fill_(4.0)
    a = dec.alpha(dec.tau())
    assert torch.allclose(dec.eval()(theta)["topic_word"], (a - 0.5) / torch.sqrt(torch.tensor(4.0 + 1e-5)), atol=1e-6)
    assert torch.allclose(dec.topic_word(), standardise_over_topics(a), atol=1e-6)  # topics: train-mode statistics


def test_best50_mean_and_released_formulas_for_odd_and_even_k():
    texts = [["a", "b", "c"], ["a", "b"], ["c", "d"], ["d", "e"], ["a", "e"], ["b", "c", "d"]] * 3
    topics3 = [["a", "b"], ["c", "d"], ["a", "e"]]
    mean = topic_quality(topics3, texts, with_cv=False, div_topn=2)
    released = topic_quality(topics3, texts, with_cv=False, div_topn=2, best50="released")
    best = max(mean["npmi_per_topic"])
    assert mean["npmi_best50"] == pytest.approx(best, abs=1e-12)  # m = 3 // 2 = 1 best topic
    assert released["npmi_best50"] == pytest.approx(2 * best / 3, abs=1e-12)  # 2 (c_1) / K
    assert released["diversity_best50"] == mean["diversity_best50"]
    assert released["tq_best50"] == pytest.approx(released["npmi_best50"] * released["diversity_best50"])
    topics4 = topics3 + [["b", "d"]]
    even = [topic_quality(topics4, texts, with_cv=False, best50=r)["npmi_best50"] for r in ("mean", "released")]
    assert even[0] == pytest.approx(even[1], abs=1e-12)
    with pytest.raises(DataError, match="best50 must be one of mean, released"):
        topic_quality(topics3, texts, best50="median")
    with pytest.raises(DataError, match="at least 2 topics"):
        topic_quality(topics3[:1], texts, best50="released")


def test_top_words_ranks_each_row():
    assert top_words(np.array([[0.1, 0.9, 0.5], [3.0, 1.0, 2.0]]), ["x", "y", "z"], 2) == [["y", "z"], ["x", "z"]]
    with pytest.raises(DataError, match="topic_word must be K x 3"):
        top_words(np.zeros((2, 4)), ["x", "y", "z"])


def test_official_loader_reads_pt_files_and_ignores_bert(tmp_path):
    sd = load_file(str(FIXTURES / "weights.safetensors"))
    torch.save({**sd, "bert.embeddings.word_embeddings.weight": torch.zeros(3, 2)}, tmp_path / "best.pt")
    vq, model = load_official_weights(tmp_path / "best.pt")
    ref_vq, ref_model = load_official_weights(sd)
    for a, b in ((vq, ref_vq), (model, ref_model)):
        assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert (vq.input_dim, vq.code_dim, vq.n_codes, model.encoder.n_topics) == (48, 16, 30, 6)
    assert not vq.training and not model.training


def test_official_loader_errors(tmp_path):
    sd = load_file(str(FIXTURES / "weights.safetensors"))
    with pytest.raises(CheckpointError, match="no released TVQ-VAE checkpoint"):
        load_official_weights(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="no complete 'ae.encoder."):
        load_official_weights({k: v for k, v in sd.items() if not k.startswith("ae.encoder.")})
    with pytest.raises(CheckpointError, match="unexpected key 'alpha.extra.weight'"):
        load_official_weights({**sd, "alpha.extra.weight": torch.zeros(1)})
    bad = dict(sd)
    bad["emb"] = bad["emb"] + 1
    with pytest.raises(CheckpointError, match="'emb' and 'ae.vq_vae._embedding.weight' differ"):
        load_official_weights(bad)
    with pytest.raises(CheckpointError, match="60 output words but 3 words"):
        TVQVAE.from_official(sd, ["a", "b", "c"])


def test_from_official_estimator_and_old_saves_without_topic_bn_statistics(tmp_path):
    words = [f"w{i:02d}" for i in range(60)]
    est = TVQVAE.from_official(FIXTURES / "weights.safetensors", words)
    assert (est.n_topics, est.vq_hidden, est.alpha_hidden, est.standardize) == (6, (40, 40, 60), 1, False)
    x = load_file(str(FIXTURES / "io.safetensors"))["doc_code_hist"]
    theta = est.transform_counts(x)
    assert theta.shape == (12, 6) and np.allclose(theta.sum(1), 1, atol=1e-6)
    write_former_save(est, tmp_path / "m")  # the folder format of saves made before the library format
    tensors = load_file(str(tmp_path / "m" / "weights.safetensors"))
    save_file({k: v for k, v in tensors.items() if "topic_bn" not in k}, str(tmp_path / "m" / "weights.safetensors"))
    assert json.loads((tmp_path / "m" / "config.json").read_text())["params"]["alpha_hidden"] == 1
    old = TVQVAE.load(tmp_path / "m")
    assert np.array_equal(old.topics_, est.topics_)
    assert torch.equal(old.model_.decoder.topic_bn.running_var, torch.ones(60))


def _train_vq_frozen(**options):
    """One VQ stage with a vanishing learning rate, so only the options move the codebook."""
    torch.manual_seed(0)
    vectors = torch.randn(200, 12) * 3 + 1
    doc = np.repeat(np.arange(20), 10)
    vq = VQAutoEncoder(12, (16,), code_dim=4, n_codes=20, n_neighbors=2)
    init = vq.codebook.detach().clone()
    hist = train_vq(vq, vectors, doc, epochs=2, lr=1e-12, batch_docs=8, gen=torch.Generator().manual_seed(0),
                    device=torch.device("cpu"), **options)
    return vq, init, vectors, hist


def test_released_vq_options_leave_the_uniform_codebook_and_raw_inputs():
    vq, init, _, hist = _train_vq_frozen(init="uniform", standardize=False, restart_dead=False)
    assert torch.allclose(vq.codebook, init, atol=1e-9)  # released: U(-1, 1), no restarts
    assert torch.equal(vq.in_mean, torch.zeros(12)) and torch.equal(vq.in_std, torch.ones(12))
    assert hist[0]["dead_codes"] > 0  # long uniform codes: many never chosen


def test_our_vq_options_data_init_standardisation_and_restarts():
    vq, init, vectors, _ = _train_vq_frozen(init="data", standardize=True, restart_dead=True)
    assert torch.allclose(vq.in_mean, vectors.mean(0)) and torch.allclose(vq.in_std, vectors.std(0))
    # every code is a unit-norm encoding divided by n = 2 (data init, then restarts onto encodings)
    assert torch.allclose(vq.codebook.norm(dim=1), torch.full((20,), 0.5), atol=5e-3)
    assert (init.norm(dim=1) - 0.5).abs().max() > 0.2
    restarted, init_u, _, hist = _train_vq_frozen(init="uniform", standardize=False, restart_dead=True)
    moved = (restarted.codebook - init_u).abs().amax(1) > 1e-6
    assert int(moved.sum()) == hist[0]["dead_codes"] > 0  # exactly the codes unused in epoch 1
    assert torch.allclose(restarted.codebook[moved].norm(dim=1), torch.full((int(moved.sum()),), 0.5), atol=1e-5)
