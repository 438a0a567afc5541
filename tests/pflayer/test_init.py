"""Weight initialisation of each model against the official PfLayer code.

The official ResNets (``resnet_pf.py``) define no init, so every conv keeps PyTorch's
``kaiming_uniform_(a=sqrt(5))``: U(-b, b) with b = 1/sqrt(fan_in), std = 1/sqrt(3 fan_in).
``init="kaiming"`` is torchvision's Kaiming-normal fan-out init, std = sqrt(2 / fan_out).
ViT-max: trunc-normal(.02) Linear weights, zero biases, default patch-embedding conv. PiT-max:
PyTorch defaults except the LayerNorms and the position map.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from reprozoo import create_model
from reprozoo.errors import ConfigError
from reprozoo.pflayer import PfResNet, study_net


def _torch_std(w: torch.Tensor) -> float:
    return 1.0 / math.sqrt(3 * w[0].numel())  # fan_in = in_chs / groups x k x k


def _kaiming_std(w: torch.Tensor) -> float:
    return math.sqrt(2.0 / (w.shape[0] * w[0, 0].numel()))  # fan_out = out_chs x k x k


def _small_r50(**kw) -> PfResNet:
    torch.manual_seed(0)
    return create_model("resnet50_pf", layers=(1, 1, 1, 1), num_classes=10, **kw)


@pytest.mark.parametrize("init, expected", [("torch", _torch_std), ("kaiming", _kaiming_std)])
def test_conv_weight_std_is_the_analytic_value_of_each_scheme(init, expected):
    net = _small_r50(init=init) if init != "torch" else _small_r50()  # torch is the default
    assert net.init == init
    # fan_in != fan_out in all three, so the two schemes give different stds (ratio 1.2-1.9)
    for conv in (net.layer4[0].expand.conv, net.layer3[0].reduce.conv, net.stem.conv):
        w = conv.weight.detach()
        rel_sampling_err = 4.0 / math.sqrt(2 * w.numel())  # 4 standard errors of a sample std
        assert abs(float(w.std()) / expected(w) - 1) < max(rel_sampling_err, 0.01), (init, tuple(w.shape))
        other = _kaiming_std if expected is _torch_std else _torch_std
        assert abs(float(w.std()) / other(w) - 1) > 0.15
    w = net.layer4[0].expand.conv.weight.detach()
    bound = 1.0 / math.sqrt(w[0].numel())
    if init == "torch":  # uniform: bounded by 1/sqrt(fan_in)
        assert float(w.abs().max()) <= bound
    else:  # normal: ~1M draws reach far beyond 1/sqrt(fan_in)
        assert float(w.abs().max()) > 2 * bound


@pytest.mark.parametrize("init", ["torch", "kaiming"])
def test_both_schemes_keep_unit_batchnorm_and_the_default_classifier(init):
    net = _small_r50(init=init)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight)) and torch.equal(m.bias, torch.zeros_like(m.bias))
    bound = 1.0 / math.sqrt(net.fc.in_features)
    assert float(net.fc.weight.detach().abs().max()) <= bound and float(net.fc.bias.detach().abs().max()) <= bound
    assert float(net.fc.bias.detach().abs().max()) > 0  # PyTorch's Linear init, not zeros


def test_study_net_and_constructors_take_the_init_option():
    torch.manual_seed(0)
    a = study_net("conv3x3")
    torch.manual_seed(0)
    b = study_net("conv3x3", init="kaiming")
    w_a, w_b = a.stem.conv.weight.detach(), b.stem.conv.weight.detach()
    assert a.init == "torch" and b.init == "kaiming"
    assert float(w_a.abs().max()) <= 1.0 / math.sqrt(w_a[0].numel())
    assert abs(float(w_b.std()) / _kaiming_std(w_b) - 1) < 0.2  # 144 weights: a loose bound
    for name in ("r50_max", "r50_hybrid"):
        assert create_model(name, layers=(1, 1, 1, 1), num_classes=2, init="kaiming").init == "kaiming"
    with pytest.raises(ConfigError, match="init must be one of torch, kaiming"):
        PfResNet(init="xavier")


def test_vit_max_init_is_the_official_trunc_normal():
    torch.manual_seed(0)
    vit = create_model("vit_ti_max", num_classes=10)
    linears = [m for m in vit.modules() if isinstance(m, nn.Linear)]
    w = torch.cat([m.weight.detach().flatten() for m in linears])
    assert abs(float(w.std()) - 0.02) < 0.0005 and float(w.abs().max()) <= 2.0
    assert all(float(m.bias.detach().abs().max()) == 0 for m in linears if m.bias is not None)
    assert abs(float(vit.pos_embed.detach().std()) - 0.02) < 0.001
    proj = vit.patch_embed.proj.weight.detach()  # official: timm PatchEmbed conv keeps PyTorch's init
    assert float(proj.abs().max()) <= 1.0 / math.sqrt(proj[0].numel())
    assert abs(float(proj.std()) / _torch_std(proj) - 1) < 0.02


def test_pit_max_keeps_pytorch_defaults_except_layernorm_and_position_map():
    torch.manual_seed(0)
    pit = create_model("pit_ti_max", num_classes=10)
    for m in pit.modules():
        if isinstance(m, nn.Linear):  # PyTorch's Linear init: U(+-1/sqrt(fan_in)), not trunc-normal(.02)
            bound = 1.0 / math.sqrt(m.in_features)
            assert float(m.weight.detach().abs().max()) <= bound
            assert abs(float(m.weight.detach().std()) / (bound / math.sqrt(3)) - 1) < 0.1
        elif isinstance(m, nn.LayerNorm):
            assert torch.equal(m.weight, torch.ones_like(m.weight)) and torch.equal(m.bias, torch.zeros_like(m.bias))
    assert abs(float(pit.pos_embed.detach().std()) - 0.02) < 0.002
