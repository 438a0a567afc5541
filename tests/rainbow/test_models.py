import pytest
import torch

from reprozoo.runtime.profile import count_params
from reprozoo.runtime.registry import create_model


@pytest.mark.parametrize("name,kw,params,feat", [
    # conv 1->16 (144) + BN (32), 16->32 (4608 + 64), 32->64 (18432 + 128), head 64*10+10
    ("rm_cnn_digits", {}, 24058, 64),
    ("rm_mlp_digits", {}, 64 * 128 + 128 + 128 * 128 + 128 + 1290, 128),
    # 2352*400 + BN 800 + 400*400 + BN 800 + head 4010
    ("rm_mlp400", {}, 1106410, 400),
    ("rm_resnet18_cifar", {}, 11173962, 512),  # the standard CIFAR ResNet-18 count
    # ResNet-32 (464,154 with parameter-free shortcuts) + two 1x1 projections (576 + 2176) + 100-way head
    ("rm_resnet32_cifar", {}, 464154 + 576 + 2176 + 5850, 64),
])
def test_exact_parameter_counts(name, kw, params, feat):
    model = create_model(name, **kw)
    assert count_params(model) == params
    assert model.num_features == feat


def test_reset_head_is_fresh_linear_with_bias_and_keeps_backbone():
    torch.manual_seed(0)
    model = create_model("rm_cnn_digits")
    before = {k: v.clone() for k, v in model.features.state_dict().items()}
    old = model.head
    head = model.reset_head(7)
    assert head is model.head and head is not old
    assert head.bias is not None and head.out_features == 7 and head.in_features == 64
    assert all(torch.equal(before[k], v) for k, v in model.features.state_dict().items())
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 7)


def test_cifar_block_has_no_relu_after_addition():
    from reprozoo.rainbow.models import BasicBlock

    block = BasicBlock(4, 4).eval()
    x = -torch.rand(2, 4, 5, 5)  # identity shortcut of a negative input
    out = block(x)
    assert torch.allclose(out, block.body(x) + x)
    assert (out < 0).any()
    assert (BasicBlock(4, 4, post_relu=True).eval()(x) >= 0).all()
