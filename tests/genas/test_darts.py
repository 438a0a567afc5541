import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reprozoo.errors import ConfigError
from reprozoo.genas.darts import (
    DARTS_V2,
    AuxiliaryStep,
    DartsNetwork,
    FactorizedReduce,
    count_darts_params,
    darts_cifar,
    darts_from_pairs,
    darts_op,
    genas_darts_supernet,
)
from reprozoo.genas.proxies import Flatness, ProxyData, ValAccuracy
from reprozoo.genas.spaces import DARTS_OPS, ArchitectureError, DartsGenotype, genas_genotype, sample_darts
from reprozoo.genas.supernet import SupernetConfig, fit_in_memory, train_supernet
from reprozoo.runtime.profile import count_params


def test_darts_v2_parameter_count_matches_the_published_3_3m():
    net = darts_cifar()  # DARTS-V2, C=36, 20 layers, auxiliary head
    n = count_darts_params(net)  # DARTS reports the size without the auxiliary head
    assert n == 3_349_342
    assert round(n / 1e6, 1) == 3.3
    assert count_params(net) - n == sum(p.numel() for p in net.auxiliary_head.parameters())
    assert net.reductions == (6, 13)


def test_darts_v2_genotype_in_gene_form():
    assert DARTS_V2.legal
    normal = DARTS_V2.cell_ops(reduction=False)
    assert (2, 0, "sep_conv_3x3") in normal and (5, 2, "dil_conv_3x3") in normal and (4, 0, "skip_connect") in normal
    assert sorted(op for _, _, op in DARTS_V2.cell_ops(reduction=True)) == ["max_pool_3x3"] * 5 + ["skip_connect"] * 3


def test_operations_shapes_and_factorized_reduce():
    x = torch.randn(2, 8, 8, 8)
    for name in DARTS_OPS:
        for stride in (1, 2):
            y = darts_op(name, 8, stride)(x)
            assert y.shape == (2, 8, 8 // stride, 8 // stride), (name, stride)
    assert isinstance(darts_op("skip_connect", 8, 2), FactorizedReduce)
    assert isinstance(darts_op("skip_connect", 8, 1), torch.nn.Identity)
    assert float(darts_op("none", 8, 2)(x).abs().sum()) == 0.0
    # sep conv: 2 x (depthwise k*k*C + pointwise C*C + BN 2C); dil conv: one block
    assert sum(p.numel() for p in darts_op("sep_conv_3x3", 8, 1).parameters()) == 2 * (9 * 8 + 64 + 16)
    assert sum(p.numel() for p in darts_op("dil_conv_5x5", 8, 1).parameters()) == 25 * 8 + 64 + 16
    assert sum(p.numel() for p in darts_op("max_pool_3x3", 8, 1, pool_bn=True).parameters()) == 16
    with pytest.raises(ConfigError, match="even"):
        FactorizedReduce(8, 7)


def test_forward_train_aux_head_and_stage_widths():
    torch.manual_seed(0)
    net = DartsNetwork(DARTS_V2, C=8, layers=5, auxiliary=True)
    x = torch.randn(2, 3, 32, 32)
    net.train()
    logits, aux = net.forward_train(x)
    assert logits.shape == aux.shape == (2, 10)
    net.eval()
    assert net.forward_train(x)[1] is None and net(x).shape == (2, 10)
    assert net.forward_features(x).shape == (2, 4 * 32, 8, 8)  # C doubled twice, 4 nodes concatenated
    loss = AuxiliaryStep(0.4)(net.train(), (x, torch.tensor([1, 2])))
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_discrete_net_reproduces_the_supernet_path_bit_identically():
    torch.manual_seed(0)
    g = sample_darts(np.random.default_rng(3))
    sup = DartsNetwork(None, C=8, layers=5, in_chans=1).set_genotype(g)
    net = DartsNetwork(g, C=8, layers=5, in_chans=1, pool_bn=True)
    state = sup.state_dict()
    missing = net.load_state_dict({k: state[k] for k in net.state_dict()})
    assert not missing.missing_keys
    assert count_params(net) < count_params(sup)
    x = torch.rand(4, 1, 8, 8)
    sup.eval()
    net.eval()
    assert torch.equal(sup(x), net(x))


def test_darts_supernet_trains_with_spos_and_scores_with_the_proxies():
    torch.manual_seed(0)
    sup = DartsNetwork(None, C=4, layers=3, in_chans=1)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 1, 8, 8, generator=gen), torch.randint(0, 10, (16,), generator=gen)
    rng = np.random.default_rng(0)
    from reprozoo.data.splits import TensorDataset

    train_supernet(sup, TensorDataset(x, y), SupernetConfig(epochs=1, batch_size=8), sampler=lambda: sample_darts(rng))
    data = ProxyData([(x[:8], y[:8])], [(x[8:], y[8:])], recal_mode="cumulative")
    before = {k: v.clone() for k, v in sup.state_dict().items()}
    g = genas_genotype("FLATNESS_CIFAR10")
    f = Flatness(seed=0).score(sup, g, data)
    a = ValAccuracy().score(sup, g, data)
    assert f > 0 and a * 8 == pytest.approx(round(a * 8))  # accuracy over the 8 validation images
    assert f == Flatness(seed=0).score(sup, g, data)  # seeded per candidate
    assert all(torch.equal(before[k], v) for k, v in sup.state_dict().items())  # restored exactly
    net = fit_in_memory(DartsNetwork(g, C=4, layers=3, in_chans=1), x, y, SupernetConfig(epochs=1, batch_size=8))
    assert net(x).shape == (16, 10)


def test_genas_supernet_layout():
    sup = genas_darts_supernet(num_classes=100)
    assert sup.stem[0].out_channels == 48 and sup.reductions == (2, 5)
    assert sup.classifier.in_features == 256 and len(sup.cells) == 8
    with pytest.raises(ArchitectureError, match="no active genotype"):
        sup(torch.randn(1, 3, 32, 32))


def test_bad_input_is_one_clear_error():
    with pytest.raises(ArchitectureError, match="outside the DARTS space"):
        DartsNetwork(DartsGenotype((4,) * 28), C=8, layers=3)
    with pytest.raises(ArchitectureError, match="unknown op 'conv_7x7'"):
        darts_from_pairs([("conv_7x7", 0)] + [("skip_connect", 1)] * 7, [("skip_connect", 0)] * 8)
    with pytest.raises(ArchitectureError, match="input 1 twice"):
        darts_from_pairs([("skip_connect", 1)] * 8, [("skip_connect", 0)] * 8)
    with pytest.raises(ArchitectureError, match="cannot take input 3"):
        darts_from_pairs([("skip_connect", 3)] * 8, [("skip_connect", 0)] * 8)
    with pytest.raises(ArchitectureError, match="unknown op"):
        darts_op("conv_7x7", 8, 1)
    with pytest.raises(ConfigError, match="even C"):
        DartsNetwork(DARTS_V2, C=7, layers=5)
    with pytest.raises(ArchitectureError, match="not held by this network"):
        DartsNetwork(DARTS_V2, C=8, layers=3).set_genotype(genas_genotype("FLATNESS_CIFAR10"))
    with pytest.raises(ConfigError, match="drop_path_prob"):
        DartsNetwork(DARTS_V2, C=8, layers=3, drop_path_prob=1.0)


def test_search_experiment_runs_the_darts_path(tmp_path):
    from reprozoo.genas.search_experiment import SearchConfig
    from reprozoo.runtime.runner import run_experiment

    assert SearchConfig.from_preset("paper").space == "darts"
    paper = SearchConfig.from_preset("paper")
    assert (paper.darts_supernet_C, paper.darts_supernet_layers, paper.retrain_C, paper.retrain_layers) == (16, 8, 36, 20)
    small = ["executor.kind=serial", "space=darts", "darts_supernet_C=4", "darts_supernet_layers=3", "retrain_C=4",
             "retrain_layers=3", "supernet.epochs=1", "standalone.epochs=1", "recal_images=32", "n_train=40",
             "n_val=20", "evolution.population=4", "evolution.generations=1", "evolution.top_k=1"]
    out, data = run_experiment("genas-search", "smoke", out_dir=tmp_path, overrides=small, progress=False)
    assert data["verdict"] == "inconclusive"  # one seed
    assert all(0 <= v <= 1 for v in data["metrics"].values())
    search = json.loads((Path(out) / "trials" / "search__seed0.json").read_text())["result"]
    assert set(search) == {"flatness", "val_acc", "val_loss", "random", "oracle"}
    assert all(DartsGenotype.from_string(r["best"]).legal and r["evaluated"] == 4 for r in search.values())


def test_search_config_checks_the_darts_settings():
    from reprozoo.genas.search_experiment import SearchConfig

    for bad, match in ((["space=nb301"], "space"), (["retrain_C=35"], "retrain_C"),
                       (["darts_supernet_layers=2"], "darts_supernet_layers"), (["auxiliary_weight=0.4"], "8x8"),
                       (["drop_path_prob=1.5"], "drop_path_prob")):
        with pytest.raises(ConfigError, match=match):
            SearchConfig.from_preset("paper", bad)
