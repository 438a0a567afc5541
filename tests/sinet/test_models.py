import pytest
import torch
from torch import nn

from reprozoo.errors import ConfigError
from reprozoo.runtime.profile import count_flops, count_macs, count_params
from reprozoo.runtime.registry import create_model
from reprozoo.sinet import SINET_CONFIG, SINet, SINetEncoder, confidence
from reprozoo.sinet.benchmark import conv_macs
from reprozoo.sinet.blocks import S2Module, SEDSConv, channel_shuffle

# per-layer parameter counts of the released 2-class model
LAYER_PARAMS = {"level1": 360, "level2_0": 516, "level2.0": 2544, "level2.1": 2544, "br2": 192,
                "level3_0": 8080, "level3.0": 8160, "level3.1": 8544, "level3.2": 9312, "level3.3": 9312,
                "level3.4": 8544, "level3.5": 10080, "level3.6": 8544, "level3.7": 9312, "br3": 432,
                "classifier": 288}
SE_LINEAR_MACS = 12 * 12 + 64 * 32 + 32 * 64  # the SE gates' Linear layers: 4,240


def test_exact_parameter_counts():
    assert count_params(create_model("sinet")) == 86_910
    assert count_params(create_model("sinet", num_classes=1)) == 86_684
    assert count_params(create_model("sinet_encoder")) == 86_764
    m = SINet()
    assert count_params(m) - count_params(m.encoder) == 146  # decoder: 4 + 102 + 4 + 36
    buffers = sum(b.numel() for b in m.buffers() if b.dtype.is_floating_point)
    assert buffers == 5_764  # BN running stats: "91.9K" = params + these (the count some model cards list)


def test_layer_table():
    enc = SINetEncoder()
    for name, n in LAYER_PARAMS.items():
        assert count_params(enc.get_submodule(name)) == n, name
    dec = SINet()
    assert [count_params(getattr(dec, k)) for k in ("bn_3", "skip", "bn_2", "head")] == [4, 102, 4, 36]


def test_conv_macs_match_the_papers_flops_convention():
    """The paper's 0.064 G "FLOPs" = MACs of Conv2d layers only. FlopCounterMode also counts the
    SE gates' Linear layers (aten.addmm), so its total is 4,240 MACs larger; the conv-only number is
    read from its per-operator table."""
    with torch.device("meta"):
        model, enc = SINet(), SINetEncoder()
    x = torch.empty(1, 3, 224, 224, device="meta")
    assert conv_macs(model, x) == 63_866_208
    assert conv_macs(enc, x) == 61_758_816
    ops = count_flops(model, x, by_operator=True)
    assert ops["aten.addmm"] // 2 == SE_LINEAR_MACS
    assert count_macs(model, x) == 63_866_208 + SE_LINEAR_MACS


def test_conv_macs_by_hand():
    """Independent of FlopCounterMode: out_pixels * (cin / groups) * k * k * cout per Conv2d."""
    model = SINet().eval()
    total = []

    def hook(mod, inp, out):
        total.append(out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1])

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    assert sum(total) == 63_866_208


@pytest.mark.parametrize("size", [128, 160, 320, 100])
def test_any_input_size(size):
    model = SINet().eval()
    with torch.no_grad():
        out, gate = model.forward_with_gate(torch.randn(2, 3, size, size))
    assert out.shape == (2, 2, size, size)
    quarter = (size + 1) // 2  # level 1 and level 2_0 are stride-2 3x3 convs with padding 1
    quarter = (quarter + 1) // 2
    assert gate.shape == (2, 1, quarter, quarter)


def test_gate_is_one_minus_confidence_and_bounded():
    torch.manual_seed(0)
    model = SINet().eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        _, gate = model.forward_with_gate(x)
        e, _, x2 = model.encoder.forward_features(x)
        d1 = model.bn_3(nn.functional.interpolate(e, size=x2.shape[-2:], mode="bilinear", align_corners=True))
        expected = 1 - torch.softmax(d1, 1).amax(1, keepdim=True)
    torch.testing.assert_close(gate, expected)
    assert gate.min() >= 0 and gate.max() <= 0.5 + 1e-6  # in [0, 1 - 1/C]


def test_single_logit_gate_is_not_dead():
    logits = torch.tensor([[[[0.0, 3.0, -3.0]]]])
    conf = confidence(logits)
    # softmax over one channel would give 1 everywhere (gate 0, skip dead); sigmoid-based does not
    s3 = torch.sigmoid(torch.tensor(3.0)).item()
    assert torch.allclose(conf[0, 0, 0], torch.tensor([0.5, s3, s3]))
    model = SINet(num_classes=1).eval()
    with torch.no_grad():
        _, gate = model.forward_with_gate(torch.randn(1, 3, 64, 64))
    assert gate.max() > 0


def test_decoder_variants_are_parameter_identical():
    torch.manual_seed(0)
    models = {d: SINet(decoder=d).eval() for d in ("blocking", "plain", "none")}
    assert len({count_params(m) for m in models.values()}) == 1
    state = models["blocking"].state_dict()
    for m in models.values():
        m.load_state_dict(state)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        _, gate_plain = models["plain"].forward_with_gate(x)
        out_none = models["none"](x)
        models["none"].skip[0].weight.mul_(5.0)  # the skip does not reach the output without a skip path
        assert torch.equal(out_none, models["none"](x))
    assert torch.all(gate_plain == 1)
    with pytest.raises(ConfigError, match="decoder must be one of"):
        SINet(decoder="gated")


def test_pooling_ablation_same_params_more_macs():
    x = torch.empty(1, 3, 224, 224, device="meta")
    with torch.device("meta"):
        pooled, flat = SINet(), SINet(pooling=False)
    assert count_params(pooled) == count_params(flat)
    assert conv_macs(flat, x) > conv_macs(pooled, x)


def test_channel_shuffle_and_blocks():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    m = S2Module(16, 48, SINET_CONFIG[0], residual=True)
    assert not m.residual  # residual only when cin == cout
    assert isinstance(SEDSConv(12, 16, 2, reduction=1).se.fc[0], nn.Linear)
    assert len(SEDSConv(64, 48, 2, reduction=2).se.fc) == 4  # Linear, PReLU, Linear, PReLU (no sigmoid)
    assert SINET_CONFIG[5] == ((5, 2), (3, 4))


def test_batchnorm_and_prelu_settings():
    model = SINet()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-3 and m.momentum == 0.1 for m in bns)
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Conv2d))
    prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    assert all(torch.all(p.weight == 0.25) and p.weight.numel() > 1 for p in prelus)


def test_paired_rounds_report_the_ratio_and_fps_per_round(monkeypatch):
    from reprozoo.sinet import benchmark as bench

    times = {"sinet": iter([4.0, 5.0, 4.0]), "lraspp": iter([8.0, 6.0, 6.0])}  # ms per round
    monkeypatch.setattr(bench, "SETTLE_S", 0.0)
    monkeypatch.setattr(bench, "measure_latency", lambda fn, **kw: {"median_ms": next(times[fn()])})
    fns = {("SINet", "onnxruntime deploy spin", 1, 224): lambda: "sinet",
           ("LR-ASPP MobileNetV3", "onnxruntime deploy spin", 1, 224): lambda: "lraspp"}
    out = bench._paired_rounds(fns, 224, rounds=3)
    # per round LR-ASPP / SINet = 2.0, 1.2, 1.5; SINet FPS = 250, 200, 250
    assert out["rounds"] == 3 and out["ratio_median"] == 1.5
    assert (out["ratio_min"], out["ratio_max"]) == (1.2, 2.0)
    assert (out["sinet_fps_median"], out["sinet_fps_min"], out["sinet_fps_max"]) == (250.0, 200.0, 250.0)
    assert bench._paired_rounds({}, 224, rounds=3) == {}  # rows not measured: nothing reported
