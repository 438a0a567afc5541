import pytest
import torch
from torch import nn

from reprozoo.eclips.models import (
    Backbone,
    BaseLearner,
    Ensemble,
    FASHead,
    GroupedMembers,
    SmallCNN,
    base_learner,
    ensemble_loss,
    mc_dropout,
    predict,
    stacked_forward,
)
from reprozoo.errors import ConfigError
from reprozoo.runtime.profile import count_macs, count_params
from reprozoo.runtime.registry import create_model

torch.set_num_threads(1)


def test_exact_parameter_counts():
    # conv 3x3 (no bias) + BN per stage, embedder 4w -> e (+bias), classifier e -> 2 (+bias)
    assert count_params(create_model("eclips_cnn_small")) == 101_858  # width 32, embed 64
    assert count_params(base_learner(8, 32)) == 7_210
    assert count_params(base_learner(16, 32)) == 25_842  # the 2x-wide baseline of the quick preset
    assert count_params(create_model("eclips_cnn_ensemble", k=4, width=8, embed_dim=32)) == 4 * 7_210 + 4
    assert count_params(create_model("eclips_cnn_ensemble", k=4, width=8, embed_dim=32, fusion="mean")) == 4 * 7_210


def test_macs_at_32px():
    m = base_learner(8, 32)
    # conv: 32*32*3*8*9 + 16*16*8*16*9 + 8*8*16*32*9 ; linear: 32*32 + 32*2
    assert count_macs(m, torch.zeros(1, 3, 32, 32)) == 221_184 + 294_912 + 294_912 + 1_024 + 64


def test_head_init_and_feature_norm():
    torch.manual_seed(0)
    h = FASHead(16, embed_dim=8)
    assert torch.all(h.embed.bias == 0.1) and torch.all(h.classifier.bias == 0)
    assert abs(h.embed.weight.std().item() - 0.005) < 0.002
    h.eval()
    f = torch.randn(3, 16)
    z = torch.relu(h.embed(f))
    z = z / (z.norm(dim=1, keepdim=True).sqrt() * 2**0.5)
    w = h.classifier.weight / h.classifier.weight.norm(dim=0, keepdim=True)
    torch.testing.assert_close(h(f), z @ w.T + h.classifier.bias)


def test_ensemble_fusion_starts_uniform_and_is_a_mixture():
    torch.manual_seed(0)
    ens = Ensemble([base_learner(4, 8) for _ in range(3)]).eval()
    assert torch.equal(ens.weights(), torch.full((3,), 1 / 3))
    x = torch.randn(5, 3, 16, 16)
    member = torch.softmax(ens.member_logits(x), -1)
    torch.testing.assert_close(ens(x).exp(), member.mean(0))
    with torch.no_grad():
        ens.alpha.copy_(torch.tensor([2.0, 0.0, -1.0]))
    w = torch.softmax(torch.tensor([2.0, 0.0, -1.0]), 0)
    torch.testing.assert_close(ens(x).exp(), (w[:, None, None] * member).sum(0))
    gate = Ensemble([base_learner(4, 8) for _ in range(3)], fusion="gate").eval()
    gw = gate.weights(gate.member_logits(x))
    assert gw.shape == (5, 3) and torch.allclose(gw.sum(1), torch.ones(5))
    assert torch.allclose(gate(x).exp().sum(1), torch.ones(5))
    with pytest.raises(ConfigError, match="fusion must be"):
        Ensemble([base_learner(4, 8)], fusion="max")


def test_ensemble_loss_terms_and_gradients():
    torch.manual_seed(0)
    ens = Ensemble([base_learner(4, 8) for _ in range(2)])
    x, y = torch.randn(6, 3, 16, 16), torch.tensor([0, 1, 0, 1, 1, 0])
    out = ensemble_loss(ens, x, y, lambda_mem=0.0)
    torch.manual_seed(1)
    ens.eval()
    out_eval = ensemble_loss(ens, x, y, lambda_mem=0.0)
    torch.testing.assert_close(out_eval["loss"], nn.functional.nll_loss(ens(x), y))
    ens.train()
    out = ensemble_loss(ens, x, y, lambda_mem=1.0)
    out["loss"].backward()
    assert ens.alpha.grad is not None and torch.isfinite(ens.alpha.grad).all()
    assert out["w_entropy"].item() == pytest.approx(torch.log(torch.tensor(2.0)).item())


def test_mc_dropout_reenables_only_dropout():
    torch.manual_seed(0)
    m = base_learner(4, 8)
    m.train()
    x = torch.randn(4, 3, 16, 16)
    m(x)  # populate running stats
    bn = m.backbone.model.features[1]
    before = bn.running_mean.clone()
    with mc_dropout(m):
        assert not bn.training and m.head.drop.training and not m.training
        a, b = m(x), m(x)
        assert not torch.equal(a, b)  # dropout is stochastic
        assert torch.equal(bn.running_mean, before)  # BatchNorm kept its statistics
    assert m.training and bn.training  # previous modes restored
    m.eval()
    with mc_dropout(m):
        pass
    assert not m.training and not m.head.drop.training


def test_predict_mean_uncertainty_and_reproducibility():
    torch.manual_seed(0)
    ens = Ensemble([base_learner(4, 8) for _ in range(3)]).eval()
    x = torch.randn(4, 3, 16, 16)
    det = predict(ens, x)
    torch.testing.assert_close(det["prob"], ens(x).exp()[:, 1])
    torch.testing.assert_close(det["uncertainty"], det["samples"][0].var(0, unbiased=False))
    state = torch.get_rng_state()
    a = predict(ens, x, mc_samples=5, generator=torch.Generator().manual_seed(3))
    b = predict(ens, x, mc_samples=5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    assert torch.equal(a["prob"], b["prob"]) and a["samples"].shape == (5, 3, 4)
    torch.testing.assert_close(a["uncertainty"], a["samples"].reshape(15, 4).var(0, unbiased=False))
    single = predict(base_learner(4, 8).eval(), x)
    assert torch.all(single["uncertainty"] == 0)
    bald = predict(ens, x, mc_samples=4, uncertainty="bald", generator=torch.Generator().manual_seed(0))
    assert torch.all(bald["uncertainty"] >= 0)


def test_stacked_forward_matches_the_loop():
    torch.manual_seed(0)
    members = [base_learner(4, 8).eval() for _ in range(3)]
    x = torch.randn(5, 3, 16, 16)
    with torch.no_grad():
        loop = torch.stack([m(x) for m in members])
        torch.testing.assert_close(stacked_forward(members, x), loop, rtol=1e-5, atol=1e-6)



@pytest.mark.parametrize("feature_norm", [True, False])
def test_grouped_members_match_the_loop(feature_norm):
    torch.manual_seed(0)
    ens = Ensemble([base_learner(4, 8, feature_norm=feature_norm) for _ in range(3)])
    ens.train()
    with torch.no_grad():
        for _ in range(3):  # non-trivial BatchNorm running statistics per member
            ens(torch.randn(16, 3, 16, 16) * 2 + 0.5)
    ens.eval()
    grouped = GroupedMembers(ens.members)
    assert not grouped.training and grouped.features[0].groups == 1 and grouped.features[4].groups == 3
    assert grouped.features[0].weight.shape == (12, 3, 3, 3) and grouped.features[4].weight.shape == (24, 4, 3, 3)
    x = torch.randn(5, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(grouped(x), ens.member_logits(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ens.fuse(grouped(x)), ens(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="inference only"):
        grouped.train()
    with pytest.raises(ConfigError, match="needs SmallCNN base learners"):
        GroupedMembers([BaseLearner(Backbone(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()), 4), 8)])

def test_backbone_wraps_torchvision_and_timm_models():
    import torchvision

    tv = Backbone(torchvision.models.resnet18(num_classes=10))
    assert tv.num_features == 512
    learner = BaseLearner(tv, embed_dim=16).eval()
    assert learner(torch.randn(2, 3, 32, 32)).shape == (2, 2)
    mn = Backbone(torchvision.models.mobilenet_v3_small(num_classes=10))
    assert mn.num_features == 576 and mn(torch.randn(2, 3, 32, 32)).shape == (2, 576)
    timm = pytest.importorskip("timm")
    tm = Backbone(timm.create_model("resnet10t", pretrained=False, num_classes=7))
    assert tm.num_features == 512 and tm(torch.randn(2, 3, 32, 32)).shape == (2, 512)
    cnn = Backbone(SmallCNN(4), strip_head=False)
    assert cnn.num_features == 16
