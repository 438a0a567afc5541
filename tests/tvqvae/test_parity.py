"""Parity with the released TVQ-VAE document-analysis code on golden outputs.

``tests/fixtures/tvqvae/`` holds weights in the released key layout (seeded random values, a
reduced size: 48-d token vectors, 30 codes of dimension 16, K = 6 topics, 60 words), the inputs
and the outputs of the released code (see the README there). Every test loads the weights through
the public loader :func:`reprozoo.tvqvae.official.load_official_weights`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from reprozoo.tvqvae import TVQVAE
from reprozoo.tvqvae.metrics import coherence_per_topic, top_words, topic_quality
from reprozoo.tvqvae.official import load_official_weights, official_key_map
from reprozoo.tvqvae.training import code_histograms

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tvqvae"
TOL = 2e-5  # tensors stored in float32 from a float64 run of the released code
WORDS = [f"w{i:02d}" for i in range(60)]


@pytest.fixture(scope="module")
def golden():
    return load_file(str(FIXTURES / "io.safetensors")), json.loads((FIXTURES / "golden.json").read_text())


def _load():
    return load_official_weights(FIXTURES / "weights.safetensors")


def _max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).abs().max())


def test_parity_vq_quantiser_and_pretraining_loss(golden):
    io, g = golden
    vq, _ = _load()
    vq.train()  # the released pre-training pass (dropout 0)
    out = vq(io["tokens"])
    z = vq.encode(io["tokens"])
    zq, h = vq.quantise(z)
    assert _max_abs(z, io["vq_z"]) < 1e-5
    assert torch.equal(h, io["vq_multi_hot"])
    assert torch.equal(vq.codes(z).sort(1).values, io["vq_codes"].sort(1).values)
    assert _max_abs(zq, io["vq_z_q"]) < 1e-5  # the SUM of the 5 nearest codes
    assert _max_abs(out["x_bar"], io["vq_x_bar"]) < 1e-5
    ref = g["vq"]
    assert abs(out["recon"].item() - ref["loss_mse_reconstruction"]) < 1e-5
    assert abs(out["vq"].item() - ref["loss_vq"]) < 1e-5
    assert abs(out["loss"].item() - ref["loss_pretrain_total"]) < 1e-5
    out["loss"].backward()
    grads = dict(vq.named_parameters())
    key_map = official_key_map(load_file(str(FIXTURES / "weights.safetensors")))
    for key, norm in ref["grad_l2_norm_per_parameter"].items():
        got = float(grads[key_map[key][3:]].grad.norm())
        assert abs(got / norm - 1) < 1e-4, key


def test_parity_code_histograms(golden):
    io, _ = golden
    vq, _ = _load()
    hist = code_histograms(vq, io["tokens"], io["doc_of_token"].numpy(), 12, torch.device("cpu"))
    assert torch.equal(hist, io["doc_code_hist"])
    assert torch.equal(hist.sum(1), 5.0 * torch.tensor(golden[1]["vq"]["doc_lengths"], dtype=torch.float32))


def _topic_pass(model, io, train: bool):
    model = model.double().train(train)
    return model.forward_full(io["doc_code_hist"].double(), io["doc_word_counts"].double(), io["eps"].double())


def test_parity_topic_model_train_forward_losses_and_gradients(golden):
    io, g = golden
    _, model = _load()
    losses, t = _topic_pass(model, io, train=True)
    expected = {"mu": t["mu"], "logvar": t["logvar"], "theta": t["theta"], "p_code": t["code_logits"].softmax(-1),
                "p_word": t["word_logits"].softmax(-1), "topic_code": model.decoder.beta,
                "beta_n": model.decoder.tau(), "topic_word": t["topic_word"]}
    for name, value in expected.items():
        assert _max_abs(value, io[f"train_{name}"]) < TOL, name
    # the topics are read from the train-mode topic-word matrix, as the released get_info
    assert _max_abs(model.decoder.topic_word(), io["train_topic_word"]) < TOL
    for name, value in g["topic_model"]["losses_float64"].items():
        assert abs(losses[name].item() - value) < 2e-5 * max(1.0, abs(value)), name
    losses["loss"].backward()  # the released initialize_vq loss: RL_word + KL
    key_map = official_key_map(load_file(str(FIXTURES / "weights.safetensors")))
    params = dict(model.named_parameters())
    for key, norm in g["topic_model"]["grad_l2_norm_per_parameter_float64"].items():
        got = float(params[key_map[key][6:]].grad.norm())
        if norm < 1e-10:  # biases before a BatchNorm: zero up to rounding in both codes
            assert got < 1e-10, key
        else:
            assert abs(got / norm - 1) < 1e-8, key


def test_parity_topic_model_batchnorm_running_statistics(golden):
    io, g = golden
    _, model = _load()
    _topic_pass(model, io, train=True)
    bns = {"alpha.f_mu_batchnorm": model.decoder.topic_bn, "alpha_bn": model.decoder.word_bn,
           "topic_model_bow.beta_batchnorm": model.decoder.code_bn,
           "topic_model_bow.inf_net.f_mu_batchnorm": model.encoder.mu[1],
           "topic_model_bow.inf_net.f_sigma_batchnorm": model.encoder.logvar[1]}
    start, compared = 0, 0
    for name in g["topic_model"]["bn_layers_in_flat_order"]:
        size = 60 if name == "alpha.f_sigma_batchnorm" else bns[name].num_features
        if name in bns:  # alpha.f_sigma_batchnorm feeds nothing in the released code and is dropped
            for stat in ("mean", "var"):
                ref = io[f"bn_running_{stat}_after_train_forward"][start:start + size]
                assert _max_abs(getattr(bns[name], f"running_{stat}"), ref) < TOL, (name, stat)
            compared += size
        start += size
    assert start == 222 and compared == 162


def test_parity_topic_model_eval_forward(golden):
    io, g = golden
    _, model = _load()
    losses, t = _topic_pass(model, io, train=False)  # every BatchNorm on its running statistics
    for name in ("mu", "logvar", "theta", "topic_word"):
        assert _max_abs(t[name], io[f"eval_{name}"]) < TOL, name
    for name, value in g["topic_model"]["eval_mode_losses_float64"].items():
        assert abs(losses[name].item() - value) < 2e-5 * max(1.0, abs(value)), name


def test_parity_topic_words_and_best50_protocol(golden):
    io, g = golden
    texts = [t.split() for t in g["topic_quality"]["reference_texts"]]
    results = g["topic_quality"]["results"]
    est = TVQVAE.from_official(FIXTURES / "weights.safetensors", WORDS)
    cases = {"K6_train_topic_word": est.get_topics(25), "K7_topic_word_k7": top_words(io["topic_word_k7"].numpy(), WORDS)}
    for label, topics in cases.items():
        ref = results[label]
        assert topics == ref["topics_top25"], label
        npmi = coherence_per_topic([t[:10] for t in topics], texts)
        assert np.abs(npmi - np.asarray(ref["npmi_per_topic"])).max() < 1e-9, label
        released = topic_quality(topics, texts, with_cv=False, best50="released")
        assert abs(released["npmi_best50"] - ref["npmi_best50_released"]) < 1e-9, label
        assert abs(released["diversity_best50"] - ref["diversity_best50_released"]) < 1e-9, label
        assert abs(released["npmi_all"] - ref["npmi_all"]) < 1e-9, label
        assert abs(released["diversity_all"] - ref["diversity_all"]) < 1e-9, label
        ours = topic_quality(topics, texts, with_cv=False)  # default: the plain mean of the best K // 2
        assert abs(ours["npmi_best50"] - ref["mean_of_best_K_div_2"]) < 1e-9, label
    # odd K: the released number is (K - 1) / K x the mean of the best (K - 1) / 2 topics
    k7 = results["K7_topic_word_k7"]
    assert abs(k7["npmi_best50_released"] - 6 / 7 * k7["mean_of_best_K_div_2"]) < 1e-12
    assert abs(k7["npmi_best50_released"] - k7["mean_of_best_K_div_2"]) > 5e-3
