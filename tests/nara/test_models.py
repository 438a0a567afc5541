import pytest
import torch

from reprozoo.nara import CausalityError, GaussianAR, check_causality, nara_causal_conv, nara_made
from reprozoo.runtime.profile import count_params
from reprozoo.runtime.registry import create_model
from tests.nara.helpers import LeakyNet


def test_made_parameter_count_and_causality():
    model = create_model("nara_made")
    # 64*256+256 + 256*256+256 + 256*64+64 (masked weights are still parameters)
    assert count_params(model) == 98_880
    check_causality(model)
    x = torch.randint(0, 2, (3, 64)).float()
    out = model.conditionals(x)
    assert out.shape == (3, 64, 1)
    # output 0 has no inputs: its logit is the same for every canvas
    assert torch.equal(out[:, 0], out[:1, 0].expand(3, 1))


def test_causal_conv_parameter_count_receptive_field_and_causality():
    model = nara_causal_conv()
    # input taps 2*64+64, five blocks (128*64+64 + 64*64+64), head 64*2+2
    assert count_params(model) == 192 + 5 * (8256 + 4160) + 130 == 62_402
    assert model.net.receptive_field == 33
    check_causality(model)
    x = torch.randn(2, 64)
    base = model.conditionals(x)
    y = x.clone()
    y[:, 0] += 5.0  # position 0 influences outputs 1..33 only (33 past values), never itself
    diff = (model.conditionals(y) - base).abs().sum((0, 2))
    assert diff[0] == 0 and diff[1] > 0 and diff[33] > 0 and diff[34:].sum() == 0


def test_non_causal_model_is_detected_with_a_clear_message():
    leaky = GaussianAR(LeakyNet(), 16)
    with pytest.raises(CausalityError, match="not causal: changing positions >= "):
        check_causality(leaky)


def test_made_small_config():
    model = nara_made(16, (32,))
    assert count_params(model) == 16 * 32 + 32 + 32 * 16 + 16
