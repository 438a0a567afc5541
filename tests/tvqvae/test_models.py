import math

import pytest
import torch

from reprozoo.runtime.profile import count_params
from reprozoo.runtime.registry import create_model
from reprozoo.tvqvae.models import (
    BowDecoder,
    TopicEncoder,
    TopicModel,
    TVQDecoder,
    VQAutoEncoder,
    multinomial_nll,
    standardise_over_topics,
)


def test_parameter_counts_of_the_released_architecture():
    # 768-500-500-1000-100 encoder, mirrored decoder, 300 x 100 codebook
    assert count_params(create_model("tvq_vq_autoencoder")) == 2_502_868
    assert count_params(VQAutoEncoder(384)) == 2_118_484  # MiniLM's 384-d states
    enc = TopicEncoder(300, 20)  # 300-100-100, two K-heads (BN without affine), prior mean + var
    assert count_params(enc) == 300 * 100 + 100 + 100 * 100 + 100 + 2 * (100 * 20 + 20) + 2 * 20 == 44_280
    model = create_model("tvq_topic_model", n_topics=20, n_words=2000)  # released default: alpha_hidden=1 (MLP)
    assert count_params(model) == 44_280 + 6000 + (100 * 100 + 100) * 2 + 100 * 2000 + 2000 == 272_480
    linear = create_model("tvq_topic_model", n_topics=20, n_words=2000, alpha_hidden=0)  # paper-time linear alpha
    assert count_params(linear) == 44_280 + 20 * 300 + 100 * 2000  # beta + linear alpha (codebook frozen)
    assert count_params(create_model("prodlda", n_topics=20, n_words=2000)) == \
        2000 * 100 + 100 + 10100 + 4040 + 40 + 20 * 2000


def test_quantiser_sums_the_n_nearest_codes():
    vq = VQAutoEncoder(4, (8,), code_dim=2, n_codes=4, n_neighbors=2)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.7, 0.7]]))
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    idx = vq.codes(z).sort(-1).values
    assert idx.tolist() == [[0, 3], [1, 3]]
    zq, h = vq.quantise(z)
    assert h.tolist() == [[1, 0, 0, 1], [0, 1, 0, 1]]
    assert torch.allclose(zq, torch.tensor([[1.7, 0.7], [0.7, 1.7]]))  # a sum, not a mean
    vq.quantize = "mean"
    assert torch.allclose(vq.quantise(z)[0], torch.tensor([[0.85, 0.35], [0.35, 0.85]]))


def test_straight_through_and_loss_weights():
    torch.manual_seed(0)
    vq = VQAutoEncoder(6, (8,), code_dim=3, n_codes=5, n_neighbors=2)
    x = torch.randn(10, 6)
    out = vq(x)
    z = vq.encode(x)
    zq, _ = vq.quantise(z)
    expect = ((vq.decoder(z + (zq - z).detach()) - x) ** 2).mean() + ((zq - z) ** 2).mean() * 1.25
    assert out["loss"].item() == pytest.approx(expect.item(), rel=1e-6)
    out["loss"].backward()
    assert vq.encoder[0].weight.grad.abs().sum() > 0  # gradients reach the encoder through the codes
    assert vq.codebook.grad.abs().sum() > 0
    assert torch.allclose(z.norm(dim=-1), torch.ones(10))


def test_kl_vanishes_at_the_prior_and_matches_the_formula():
    enc = TopicEncoder(5, 4)
    mu = enc.prior_mean.detach().expand(3, 4)
    logvar = enc.prior_var.detach().log().expand(3, 4)
    assert torch.allclose(enc.kl(mu, logvar), torch.zeros(3), atol=1e-6)
    assert enc.prior_mean[0].item() == pytest.approx(0.25) and enc.prior_var[0].item() == pytest.approx(0.75)
    kl = enc.kl(torch.ones(1, 4), torch.zeros(1, 4))
    by_hand = 0.5 * (4 / 0.75 + 4 * 0.75 ** 2 / 0.75 - 4 + 4 * math.log(0.75))
    assert kl.item() == pytest.approx(by_hand, rel=1e-6)


def test_standardisation_over_topics_and_nll():
    a = torch.tensor([[1.0, 10.0], [3.0, 10.0], [5.0, 13.0]])
    s = standardise_over_topics(a, eps=0.0)
    assert torch.allclose(s.mean(0), torch.zeros(2), atol=1e-6)
    assert torch.allclose(s.var(0, unbiased=False), torch.ones(2), atol=1e-5)
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))
    assert multinomial_nll(logits, torch.tensor([[2.0, 0.0, 1.0]])).item() == pytest.approx(
        -(2 * math.log(0.5) + math.log(0.25)), rel=1e-5)


def test_topic_word_reads_train_mode_standardisation():
    torch.manual_seed(0)
    dec = TVQDecoder(3, torch.randn(6, 4), n_words=7)
    tw = dec.topic_word()
    raw = dec.alpha(dec.tau())
    assert torch.allclose(tw, (raw - raw.mean(0)) / torch.sqrt(raw.var(0, unbiased=False) + 1e-5))
    assert torch.allclose(dec.tau().norm(dim=-1), torch.ones(3))
    model = TopicModel(TopicEncoder(6, 3), dec)
    out = model(torch.rand(8, 6) * 3, torch.rand(8, 7).round())
    assert set(out) == {"loss", "rl_word", "kl", "rl_code"}
    assert out["loss"].item() == pytest.approx((out["rl_word"] + out["kl"]).item(), rel=1e-6)  # w_code = 0
    model.eval()
    x = torch.rand(4, 6)
    theta = model.theta(x)
    assert torch.allclose(theta.sum(-1), torch.ones(4)) and torch.equal(theta, model.theta(x))  # no sampling
    bow = BowDecoder(3, 7)
    assert bow.topic_word().shape == (3, 7)


def test_constructors_take_the_common_drop_rate_name():
    from reprozoo.errors import ConfigError

    vq = create_model("tvq_vq_autoencoder", input_dim=8, hidden_dims=(8,), code_dim=4, n_codes=6, n_neighbors=2,
                      drop_rate=0.25)
    assert vq.dropout.p == 0.25
    tm = create_model("tvq_topic_model", n_topics=3, n_words=20, n_codes=6, code_dim=4, drop_rate=0.1)
    assert tm.theta_dropout.p == 0.1
    assert create_model("prodlda", n_topics=3, n_words=20, drop_rate=0.2).theta_dropout.p == 0.2
    assert TopicEncoder(6, 3, drop_rate=0.3).body[-1].p == 0.3
    with pytest.raises(ConfigError, match="dropout"):  # the old name has no caller, so no alias
        create_model("tvq_vq_autoencoder", input_dim=8, hidden_dims=(8,), code_dim=4, n_codes=6, n_neighbors=2,
                     dropout=0.25)
