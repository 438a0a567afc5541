"""The deployment path computes the same function: BN folding (torch's fuse_conv_bn_eval, equal to
the former hand-written folding), PReLU rewrites (with the slope > 1 fallback), channel-shuffle
absorption, and ONNX Runtime vs PyTorch at two input sizes."""

import pytest
import torch
from torch import nn

from reprozoo.sinet.deploy import deploy_model, fold_batchnorm, shuffle_permutation
from reprozoo.sinet.deploy_ops import ConvPReLU, MaxPReLU, fold_bn_into_conv, rewrite_prelu
from reprozoo.sinet.export import deploy_session, export_deploy_onnx, profile_onnx
from reprozoo.sinet.models import SINet
from reprozoo.sinet.preprocess import Normalized

torch.set_num_threads(1)


def _randomise(model: nn.Module, seed: int = 0, slope_range=(-0.3, 0.9)) -> nn.Module:
    """Non-trivial BN statistics and PReLU slopes, so folding and rewrites are really exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
            elif isinstance(m, nn.PReLU):
                lo, hi = slope_range
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * (hi - lo) + lo)
    return model.eval()


def test_bn_folding_is_exact():
    torch.manual_seed(0)
    seq = _randomise(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8, eps=1e-3), nn.ReLU()))
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        ref = seq(x)
        assert fold_batchnorm(seq) == 1
        assert isinstance(seq[1], nn.Identity) and seq[0].bias is not None
        assert torch.allclose(seq(x), ref, atol=1e-5)


@torch.no_grad()
def _former_fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """The hand-written folding the library used before fuse_conv_bn_eval (weights, bias)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    return conv.weight * scale.view(-1, 1, 1, 1), (bias - bn.running_mean) * scale + bn.bias


@pytest.mark.parametrize("conv_bias", [False, True])
def test_fuse_conv_bn_eval_equals_the_former_folding(conv_bias):
    g = torch.Generator().manual_seed(5)
    conv = nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=conv_bias)  # depthwise, as in SINet's S2 blocks
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
        if conv_bias:
            conv.bias.copy_(torch.randn(6, generator=g))
    bn = _randomise(nn.BatchNorm2d(6, eps=1e-3))
    bn.train()  # the training flags are restored after folding
    weight, bias = _former_fold(conv, bn)
    fused = fold_bn_into_conv(conv, bn)
    assert bn.training and conv.training and not fused.training
    assert fused.groups == 6 and fused.padding == (1, 1) and fused.bias is not None
    assert torch.allclose(fused.weight, weight, rtol=1e-6, atol=1e-7)
    assert torch.allclose(fused.bias, bias, rtol=1e-6, atol=1e-7)
    x = torch.randn(2, 6, 7, 7, generator=g)
    with torch.no_grad():
        assert torch.allclose(fused(x), bn.eval()(conv(x)), atol=1e-5)


def test_prelu_rewrite_is_exact_and_falls_back_for_a_slope_above_one():
    x = torch.linspace(-3, 3, 61).view(1, 1, 61).expand(1, 4, 61).reshape(1, 4, 61, 1)
    ok = nn.PReLU(4)
    bad = nn.PReLU(4)
    with torch.no_grad():
        ok.weight.copy_(torch.tensor([-0.5, 0.0, 0.25, 1.0]))
        bad.weight.copy_(torch.tensor([0.25, 0.5, 1.5, 0.1]))  # one slope > 1: max(x, a*x) would be wrong
    net = nn.Sequential(ok, bad)
    ref = net(x)
    assert rewrite_prelu(net) == (1, 1)
    assert isinstance(net[0], MaxPReLU) and isinstance(net[1], nn.PReLU)
    assert torch.equal(net(x), ref)
    wrong = MaxPReLU(bad.weight)(x)  # why the fallback exists
    assert (wrong - bad(x)).abs().max() > 1.0


def test_conv_prelu_is_exact_and_keeps_a_slope_above_one():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1)
    act = nn.PReLU(6)
    with torch.no_grad():
        act.weight.copy_(torch.tensor([-0.4, 0.0, 0.3, 0.7, 1.0, 0.25]))
    x = torch.randn(2, 4, 7, 7)
    with torch.no_grad():
        assert torch.allclose(ConvPReLU(conv, act.weight)(x), act(conv(x)), atol=1e-6)
    seq = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.PReLU(6))
    _randomise(seq, slope_range=(1.2, 1.5))
    net, info = deploy_model(seq)
    assert info["bn_folded"] == 1 and info["conv_prelu_fused"] == 0 and info["prelu_kept"] == 1
    with torch.no_grad():
        assert torch.allclose(net(x), seq(x), atol=1e-5)


def test_shuffle_permutation_matches_channel_shuffle():
    from reprozoo.sinet.blocks import channel_shuffle

    y = torch.randn(2, 12, 3, 3)
    assert torch.equal(channel_shuffle(y, 2), y[:, shuffle_permutation(12, 2)])


def test_deployed_sinet_equals_sinet_in_pytorch():
    torch.manual_seed(0)
    model = _randomise(SINet())
    net, info = deploy_model(model)
    assert info == {"bn_folded": 44, "shuffles_removed": 10, "conv_prelu_fused": 39, "prelu_rewritten": 0,
                    "prelu_kept": 0, "branch_concat_as_add": 2, "grouped_densified": 10, "se_as_conv": 2,
                    "narrow_convs_plain": 4}
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert (net(x) - model(x)).abs().max() < 1e-4
        cl = net(x.contiguous(memory_format=torch.channels_last))
        assert (cl - model(x)).abs().max() < 1e-4


@pytest.mark.parametrize("size", [64, 96])
def test_deploy_onnx_matches_pytorch_at_two_sizes(tmp_path, size):
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = _randomise(SINet(), seed=size)
    mean, std = [0.45, 0.44, 0.40], [0.25, 0.26, 0.27]
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size))
    path, _ = export_deploy_onnx(Normalized(model, mean, std), tmp_path / "s.onnx", x, threads=1,
                                 optimized_path=tmp_path / "s.ort.onnx")
    out = deploy_session(path, threads=1, preoptimized=True).run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        ref = Normalized(model, mean, std).eval()(x).numpy()
    assert out.shape == ref.shape and abs(out - ref).max() <= 1e-4
    prof = profile_onnx(tmp_path / "s.onnx", {"image": x.numpy()}, threads=1, runs=2)
    assert "Conv" in prof and "PRelu" not in prof and all(v >= 0 for v in prof.values())


def test_cli_export_deploy_and_plain(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from reprozoo.cli import main
    from reprozoo.sinet.checkpoint import save_segmenter

    torch.manual_seed(0)
    ckpt = save_segmenter(_randomise(SINet()), tmp_path / "s.safetensors", mean=[0.5] * 3, std=[0.25] * 3,
                          image_size=64)
    for extra in ([], ["--batch", "0", "--ort-optimized", str(tmp_path / "o.onnx")], ["--no-deploy"]):
        out = tmp_path / "m.onnx"
        assert main(["export", "sinet", "--checkpoint", str(ckpt), "--onnx", str(out), "--threads", "1", "--overwrite",
                     *extra]) == 0
        text = capsys.readouterr().out
        assert float(text.split("max |ONNX Runtime - PyTorch| = ")[1].split()[0]) <= 1e-4
    assert (tmp_path / "o.onnx").is_file()
    assert main(["export", "sinet", "--checkpoint", str(ckpt), "--onnx", str(out), "--batch", "-1"]) == 2


def test_segmenter_deploy_path_equals_the_plain_model():
    from reprozoo.sinet.inference import Segmenter

    torch.manual_seed(0)
    model = _randomise(SINet())
    image = torch.rand(3, 50, 70)
    fast = Segmenter(model, [0.5] * 3, [0.25] * 3, image_size=64).probability(image)
    plain = Segmenter(model, [0.5] * 3, [0.25] * 3, image_size=64, deploy=False).probability(image)
    assert fast.shape == (50, 70) and torch.allclose(fast, plain, atol=1e-5)
    # eager path: BN folded, PReLUs kept as PReLU (the ONNX-only rewrites are slower in eager PyTorch)
    net = Segmenter(model, [0.5] * 3, [0.25] * 3, image_size=64).net
    def bns(m):
        return sum(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())

    assert bns(net) < bns(model) // 2  # BNs after a convolution are folded; lone BNs stay
    assert sum(isinstance(m, torch.nn.PReLU) for m in net.modules()) == sum(
        isinstance(m, torch.nn.PReLU) for m in model.modules())


@pytest.mark.slow  # torch.compile on CPU: 20-50 s of C++ compilation
def test_segmenter_compiled_equals_eager():
    from reprozoo.sinet.inference import Segmenter

    torch.manual_seed(0)
    model = _randomise(SINet())
    image = torch.rand(3, 50, 70)
    eager = Segmenter(model, [0.5] * 3, [0.25] * 3, image_size=64).probability(image)
    seg = Segmenter(model, [0.5] * 3, [0.25] * 3, image_size=64, compile=True)
    first, again = seg.probability(image), seg.probability(torch.rand(3, 40, 40))
    assert first.shape == (50, 70) and again.shape == (40, 40)
    assert float((first - eager).abs().max()) <= 1e-5


def test_blocked_layout_rewrites_are_exact():
    from reprozoo.sinet.blocks import SEGate
    from reprozoo.sinet.deploy_ops import ConvSEGate, RepeatedGroupConv, dense_from_grouped

    torch.manual_seed(0)
    grouped = nn.Conv2d(8, 6, 1, groups=2, bias=True)
    dense = dense_from_grouped(grouped)
    assert dense.groups == 1 and dense.weight.shape == (6, 8, 1, 1)
    assert torch.count_nonzero(dense.weight[:3, 4:]) == 0 and torch.count_nonzero(dense.weight[3:, :4]) == 0
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        assert torch.allclose(dense(x), grouped(x), atol=1e-6)
        gate = _randomise(SEGate(8, reduction=2))
        assert torch.allclose(ConvSEGate(gate)(x), gate(x), atol=1e-6)
        head = nn.Conv2d(8, 2, 3, padding=1)
        rep = RepeatedGroupConv(head)
        assert rep.conv.groups == 2 and rep.conv.in_channels == 16
        assert torch.allclose(rep(x), head(x), atol=1e-6)


def test_sinet_deploy_graph_stays_in_the_blocked_layout(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    torch.manual_seed(0)
    model = _randomise(SINet(), seed=3)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    path, info = export_deploy_onnx(model, tmp_path / "s.onnx", x, threads=1, optimized_path=tmp_path / "s.ort.onnx")
    assert info["grouped_densified"] == 10 and info["branch_concat_as_add"] == 2 and info["se_as_conv"] == 2
    graph = onnx.load(str(path)).graph
    ops = [n.op_type for n in graph.node]
    shapes = {t.name: tuple(t.dims) for t in graph.initializer}
    grouped = [n for n in graph.node if n.op_type in ("Conv", "FusedConv") and any(a.name == "group" and a.i > 1 for a in n.attribute)
               and shapes.get(n.input[1], (0, 1))[1] > 1]  # weight (out, in/groups, k, k): in/groups > 1
    # the only grouped (not depthwise) convs left: the 2-output convs kept out of the blocked layout on purpose
    assert len(grouped) == info["narrow_convs_plain"] == 4
    assert all(shapes[n.input[1]][0] == 2 for n in grouped)
    assert ops.count("ReorderInput") + ops.count("ReorderOutput") <= 10  # 32 before the rewrites
    out = deploy_session(path, threads=1, preoptimized=True, spin=False).run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        assert abs(out - model(x).numpy()).max() <= 1e-4
    assert ort.get_device() == "CPU"
