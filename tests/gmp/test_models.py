import inspect

import pytest
import torch

import reprozoo.gmp.models as models_mod
from reprozoo.errors import ConfigError
from reprozoo.gmp.layers import Attention, DualTransformer, key_bias
from reprozoo.gmp.models import CPL, GMP, build_grounder, num_reconstructor_passes, sample_word_masks
from reprozoo.runtime.profile import count_params
from reprozoo.runtime.registry import create_model
from tests.gmp.conftest import select, tiny_batch, tiny_config


def test_parameter_counts_of_the_paper_configurations():
    # PPS: two DualTransformers (4,744,704 parameters each) + projections, heads and the word classifier
    assert count_params(create_model("pps_charades")) == 10_207_550
    assert count_params(create_model("pps_activitynet")) == 11_831_019
    # CPL shares one DualTransformer between generator and reconstructor
    assert count_params(create_model("cpl_charades")) == 5_375_980
    assert count_params(DualTransformer(256, 4, 512, 3)) == 4_744_704


def test_reconstructor_passes_per_sample():
    assert num_reconstructor_passes(tiny_config(components=[1, 2, 3, 4, 5]), "gmp") == 5 + 14 + 1 + 1
    assert num_reconstructor_passes(tiny_config(components=[1] * 8, negatives="complement"), "cpl") == 8 + 1 + 2


def test_mask_weighted_attention_is_renormalised_post_softmax_weighting():
    torch.manual_seed(0)
    att = Attention(8, 2)
    x, mem = torch.randn(1, 3, 8), torch.randn(1, 5, 8)
    m = torch.tensor([[0.0, 0.2, 1.0, 0.5, 0.9]])
    got = att(x, mem, key_bias(1, 3, 5, key_weight=m))
    q, k, v = (f(t).view(1, -1, 2, 4).transpose(1, 2) for f, t in ((att.q, x), (att.k, mem), (att.v, mem)))
    w = torch.softmax(q @ k.transpose(-1, -2) / 2.0, -1) * (m + 1e-10)[:, None, None]
    w = w / w.sum(-1, keepdim=True)
    want = att.out((w @ v).transpose(1, 2).reshape(1, 3, 8))
    assert torch.allclose(got, want, atol=1e-6)


def test_self_attention_is_causal_for_video_and_words():
    torch.manual_seed(0)
    net = DualTransformer(16, 2, 16, 2, 0.0)
    v, w = torch.randn(1, 6, 16), torch.randn(1, 4, 16)
    pad = torch.zeros(1, 4, dtype=torch.bool)
    out = net.generate(v, w, pad)
    v2 = v.clone()
    v2[:, 4:] += 5.0
    out2 = net.generate(v2, w, pad)
    assert torch.allclose(out[:, :4], out2[:, :4], atol=1e-6) and not torch.allclose(out[:, 4:], out2[:, 4:])
    m = torch.ones(1, 6)
    r = net.reconstruct(v, w, pad, m)
    w2 = w.clone()
    w2[:, 3] += 5.0
    r2 = net.reconstruct(v, w2, pad, m)
    assert torch.allclose(r[:, :3], r2[:, :3], atol=1e-6)


def test_word_masking_is_seeded_per_sample_and_hides_a_third():
    w = torch.tensor([[2.0, 1, 2, 1, 2, 1], [2, 2, 2, 0, 0, 0]])
    lengths = torch.tensor([6, 3])
    a = sample_word_masks(lengths, w, torch.tensor([5, 9]))
    assert a.sum(1).tolist() == [2, 1] and not a[1, 3:].any()
    b = sample_word_masks(lengths[:1], w[:1], torch.tensor([5]))
    assert torch.equal(a[:1], b)


@pytest.mark.parametrize("kind", ["gmp", "cpl"])
def test_a_samples_prediction_does_not_depend_on_its_batch(kind):
    torch.manual_seed(0)
    cfg = tiny_config(components=[1, 1, 1], negatives="complement") if kind == "cpl" else tiny_config()
    model = build_grounder(kind, cfg, torch.randn(11, 8)).eval()
    batch = tiny_batch(4, lengths=[3, 5, 4, 3])
    with torch.no_grad():
        full = model(batch)
        alone = model(select(batch, [2]))
        other = model(select(batch, [2, 0]))
    for out in (alone, other):
        assert torch.allclose(out["segments"][0], full["segments"][2], atol=1e-5)
        assert torch.allclose(out["loss"][0], full["loss"][2], atol=1e-5)


def test_legacy_width_indexing_leaks_widths_across_the_batch():
    torch.manual_seed(0)
    model = GMP(tiny_config(legacy_width_indexing=True), torch.randn(11, 8)).eval()
    batch = tiny_batch(4, lengths=[3, 5, 4, 3])
    with torch.no_grad():
        full = model(batch)
        alone = model(select(batch, [2]))
        fixed = GMP(tiny_config(), torch.randn(11, 8)).eval()
        fixed.load_state_dict(model.state_dict())
        ref = fixed(batch)
    # single Gaussians are unaffected; mixtures of sample 2 use other samples' widths in the legacy mode
    assert torch.allclose(alone["widths"][0, 0], full["widths"][2, 0], atol=1e-6)
    assert not torch.allclose(alone["widths"][0, 1:], full["widths"][2, 1:], atol=1e-4)
    # legacy: sample b of mixture k uses the flattened (B*k) width vector's entry b = (b // k, b % k)
    raw = torch.sigmoid(model.fc_mask[2](model._generator_state(batch))).view(4, 3, 2)[..., 1]
    assert torch.allclose(full["widths"][:, 2], raw.reshape(-1)[:4], atol=1e-6)
    assert torch.allclose(ref["widths"][:, 2], raw[:, 0], atol=1e-6)


def test_importances_are_computed_in_one_batched_pass(monkeypatch):
    torch.manual_seed(0)
    model = GMP(tiny_config(components=[1, 2, 3, 4]), torch.randn(11, 8))
    calls = []
    orig = model.reconstructor.reconstruct

    def counting(video, words, pad, weight):
        calls.append(video.shape[0])
        return orig(video, words, pad, weight)

    monkeypatch.setattr(model.reconstructor, "reconstruct", counting)
    out = model(tiny_batch(3))
    assert calls == [3 * (2 + 3 + 4), 3 * 4]  # all mixture components at once, then the 4 proposals
    imp = out["importance"]
    assert [a.shape[1] for a in imp] == [1, 2, 3, 4]
    assert all(torch.allclose(a.sum(-1), torch.ones(3)) for a in imp)


def test_prediction_token_is_a_full_learnable_vector_and_negatives_get_gradients():
    torch.manual_seed(0)
    model = GMP(tiny_config(), torch.randn(11, 8))
    out = model.training_loss(tiny_batch(4))
    out["loss"].backward()
    assert model.pred_vec_q.shape == (8,) and (model.pred_vec_q.grad.abs() > 0).all()
    assert model.fc_neg.weight.grad.abs().sum() > 0  # the learned easy negatives are trained
    assert model.pool.score.weight.grad.abs().sum() > 0
    names = [n for n, _ in model.named_modules()]
    assert not any("neg_gen" in n for n in names)
    assert set(out) >= {"loss", "rec", "ivc", "pull", "intra", "inter"}


def test_training_loss_is_the_documented_sum():
    torch.manual_seed(0)
    cfg = tiny_config(dropout=0.0)
    model = GMP(cfg, torch.randn(11, 8))
    out = model.training_loss(tiny_batch(4))
    want = (out["rec"] + cfg.alpha_ivc * out["ivc"] + cfg.alpha_pull * out["pull"] + cfg.alpha_intra * out["intra"]
            + cfg.alpha_inter * out["inter"])
    assert torch.allclose(out["loss"], want, atol=1e-5)


def test_no_device_hard_coding():
    src = inspect.getsource(models_mod)
    assert ".cuda(" not in src


def test_bad_configs_and_inputs_are_refused():
    with pytest.raises(ConfigError, match="components must be all 1"):
        CPL(tiny_config(components=[1, 2]))
    with pytest.raises(ConfigError, match="divisible"):
        GMP(tiny_config(d_model=15))
    with pytest.raises(ConfigError, match="embeddings must have shape"):
        GMP(tiny_config(), torch.randn(5, 8))
    model = GMP(tiny_config())
    bad = tiny_batch(2)
    bad["video"] = torch.randn(2, 12, 7)
    with pytest.raises(ConfigError, match="video features must be"):
        model(bad)
