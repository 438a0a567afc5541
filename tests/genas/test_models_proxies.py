import math

import numpy as np
import pytest
import torch
from torch import nn

import reprozoo.genas.proxies as proxies_mod
from reprozoo.errors import ConfigError, DataError
from reprozoo.genas.models import NB201Network, nb201_tiny_net, nb201_tiny_supernet
from reprozoo.genas.proxies import (
    Angle,
    Flatness,
    ProxyData,
    RandomScore,
    ValAccuracy,
    ValLoss,
    angle_flatness,
    flatness,
    pure_flatness,
    score_all,
)
from reprozoo.genas.spaces import ArchitectureError, NB201Genotype, sample_nb201
from reprozoo.genas.supernet import recalibrate_bn

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _data(n_val=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n_val, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (n_val,), generator=g)
    return ProxyData([(x[:20], y[:20]), (x[20:], y[20:])], [(x, y)])


def test_param_counts_by_hand():
    # stem 72+16, cell(8): 5 conv3x3 x (576+16), reduction 1152+32, cell(16): 5 x (2304+32), BN 32, linear 170
    assert sum(p.numel() for p in nb201_tiny_net(BEST).parameters()) == 88 + 2960 + 1184 + 11680 + 32 + 170
    # supernet: every edge holds conv1x1 and conv3x3
    assert sum(p.numel() for p in nb201_tiny_supernet().parameters()) == 88 + 6 * 672 + 1184 + 6 * 2624 + 32 + 170
    assert sum(p.numel() for p in NB201Network(BEST, C=16, cells_per_stage=5).parameters()) == 1_288_506


def test_stand_alone_net_inherits_supernet_weights_exactly():
    torch.manual_seed(0)
    sup = nb201_tiny_supernet().eval()
    net = nb201_tiny_net(BEST).eval()
    missing, unexpected = net.load_state_dict(sup.state_dict(), strict=False)
    assert not missing and unexpected  # the stand-alone keys are a subset
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(sup.set_genotype(BEST)(x), net(x))
    with pytest.raises(ArchitectureError, match="not held by this network"):
        net.set_genotype("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    with pytest.raises(ArchitectureError, match="set_genotype"):
        nb201_tiny_supernet()(x)


def test_all_none_cell_outputs_zero_features():
    net = nb201_tiny_net("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|").eval()
    out = net(torch.rand(3, 1, 8, 8))
    assert torch.allclose(out, out[:1].expand_as(out))  # the input does not reach the head


def test_scoring_ten_candidates_leaves_the_supernet_bit_identical():
    torch.manual_seed(0)
    sup = nb201_tiny_supernet()
    theta_init = {k: v.clone() for k, v in sup.state_dict().items()}
    with torch.no_grad():
        for p in sup.parameters():
            p.add_(0.05 * torch.randn_like(p))  # "trained"
    sup.set_genotype(BEST)
    before = {k: v.clone() for k, v in sup.state_dict().items()}
    data = _data()
    flat = Flatness(seed=1)
    proxies = [ValAccuracy(), ValLoss(), flat, pure_flatness(seed=1), Angle(theta_init),
               angle_flatness(theta_init, flat), RandomScore(1)]
    scores = [score_all(proxies, sup, g, data) for g in sample_nb201(10, np.random.default_rng(0))]
    after = sup.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert sup.active == NB201Genotype.from_string(BEST)
    # reproducible per candidate, and score() agrees with score_all()
    g = sample_nb201(10, np.random.default_rng(0))[3]
    assert flat.score(sup, g, data) == scores[3]["flatness"]
    assert Flatness(seed=2).score(sup, g, data) != scores[3]["flatness"]
    assert scores[3]["angle+flatness"] == pytest.approx(scores[3]["angle"] / math.pi + 16 / 0.001 * scores[3]["flatness"])
    assert all(0 <= s["random"] < 1 and 0 <= s["val_acc"] <= 1 and s["angle"] > 0 for s in scores)


class _Identity(nn.Module):
    """logits = inputs; one parameter that the loss ignores."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3))

    def forward(self, x):
        return x + 0 * self.w.sum()


def test_flatness_formula_on_a_hand_computed_case():
    x = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0])
    loss = float(torch.nn.functional.cross_entropy(x, y))
    r = flatness(_Identity(), [(x, y)], (0.001, 0.003, 0.006))
    # official: L_0 = 0, so S = L/0.001 + 0 + 0
    assert r.losses == pytest.approx([loss] * 3) and r.l0 == 0
    assert r.sharpness == pytest.approx(loss / 0.001)
    assert r.score == pytest.approx(1 / (loss / 0.001 + 1e-5))
    flat = flatness(_Identity(), [(x, y)], (0.001, 0.003), depth_term="unperturbed", draws=3)
    assert flat.sharpness == pytest.approx(0.0, abs=1e-9) and flat.score == pytest.approx(1e5)


def test_noise_is_cumulative_absolute_and_undone_exactly(monkeypatch):
    lin = nn.Linear(400, 500)
    clean = lin.weight.detach().clone()
    stds = []

    def spy(model, batches):
        stds.append(float((lin.weight - clean).std()))
        return 1.0, 0.0

    monkeypatch.setattr(proxies_mod, "evaluate", spy)
    flatness(lin, [None], (0.001, 0.003, 0.006), generator=torch.Generator().manual_seed(0))
    expected = [0.001, math.sqrt(0.001**2 + 0.002**2), math.sqrt(0.001**2 + 0.002**2 + 0.003**2)]
    assert stds == pytest.approx(expected, rel=0.02)
    assert torch.equal(lin.weight, clean)
    stds.clear()
    flatness(lin, [None], (0.001, 0.003, 0.006), cumulative=False)
    assert stds == pytest.approx([0.001, 0.003, 0.006], rel=0.02)


@pytest.mark.parametrize("kw, match", [
    ({"sigmas": (0.003, 0.001)}, "strictly increasing"),
    ({"sigmas": ()}, "at least one"),
    ({"sigmas": (0.0, 0.1)}, "> 0"),
    ({"depth_term": "one"}, "depth_term"),
    ({"perturb": "some"}, "perturb"),
    ({"draws": 0}, "draws"),
])
def test_bad_flatness_options(kw, match):
    with pytest.raises(ConfigError, match=match):
        Flatness(**kw)


def test_empty_validation_set_is_refused():
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(DataError, match="validation set is empty"):
        ProxyData([(x, torch.zeros(2, dtype=torch.long))], [])
    with pytest.raises(DataError, match="validation set is empty"):
        ProxyData([(x, torch.zeros(2, dtype=torch.long))], [(x[:0], torch.zeros(0, dtype=torch.long))])


def test_bn_recalibration_momentum_and_cumulative():
    bn = nn.BatchNorm2d(1)
    batches = [(torch.full((4, 1, 2, 2), 3.0) + torch.tensor([0.0, 1, 2, 3]).view(4, 1, 1, 1), None)] * 14
    bn.running_mean.fill_(99.0)
    recalibrate_bn(bn, batches)  # reset to 0, EMA with momentum 0.1 -> (1 - 0.9^14) of the batch mean 4.5
    assert float(bn.running_mean) == pytest.approx(4.5 * (1 - 0.9**14), rel=1e-5)
    assert not bn.training and bn.momentum == 0.1
    recalibrate_bn(bn, batches, mode="cumulative")
    assert float(bn.running_mean) == pytest.approx(4.5, rel=1e-6)
    with pytest.raises(ConfigError, match="mode"):
        recalibrate_bn(bn, batches, mode="ema")
    with pytest.raises(DataError):
        recalibrate_bn(bn, [])


def test_angle_path_vector_by_hand():
    net = nb201_tiny_supernet()
    skip = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    outside = 72 + 16 + 1152 + 32 + 32 + 170
    # 4 paths with 1, 2, 2, 3 edges -> 8 identity stand-ins of C x C per cell
    assert net.path_vector(skip, net.state_dict()).numel() == outside + 8 * 64 + 8 * 256
    none = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert net.path_vector(none, net.state_dict()).numel() == outside
    conv = "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|"  # one path 0->1->3
    assert net.path_vector(conv, net.state_dict()).numel() == outside + 2 * (64 + 16) + 2 * (256 + 32)
    same = Angle(net.state_dict()).score_prepared(net, skip, None, {})
    assert same == pytest.approx(0.0, abs=1e-3)
