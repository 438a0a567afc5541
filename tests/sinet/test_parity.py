"""Parity with the official SINet code (github.com/clovaai/ext_portrait_segmentation, commit 9bc1bad).

The fixtures in tests/fixtures/sinet/ were made by running the official code: seeded random weights
in the official key layout with the official eval / train-mode outputs, loss and gradient norms
(``random_*``), and the released ``SINet.pth`` on three images through the official preprocessing
(``released_*``). Tolerances are those stated with the fixtures (float32 runs of the official code
itself differ from the stored float64 outputs by about a tenth of them).
"""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from reprozoo.sinet.losses import SINetLoss, class_weights, edge_target
from reprozoo.sinet.official import (
    OFFICIAL_MEAN,
    OFFICIAL_MEAN_BGR,
    OFFICIAL_STD,
    OFFICIAL_STD_BGR,
    load_official_sinet,
    official_key,
)
from reprozoo.sinet.preprocess import Normalized

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sinet"
GOLDEN = json.loads((FIXTURES / "golden.json").read_text())


@pytest.fixture(scope="module")
def random_io():
    return load_file(str(FIXTURES / "random_io.safetensors"))


@pytest.fixture(scope="module")
def released():
    images = load_file(str(FIXTURES / "released_inputs.safetensors"))["images_rgb"]  # (3, 224, 224, 3) RGB uint8
    return images.permute(0, 3, 1, 2).contiguous(), load_file(str(FIXTURES / "released_outputs.safetensors"))


def random_model(dtype=torch.float32):
    """The official network exactly (BGR-free: the random model's input needs no preprocessing)."""
    return load_official_sinet(FIXTURES / "random_model.safetensors", rgb_input=False).to(dtype)


def test_parity_random_model_eval_logits(random_io):
    x = random_io["input_float16"].float()
    with torch.no_grad():
        out = random_model().eval()(x)
    assert out.shape == (2, 2, 64, 96)
    assert (out - random_io["eval_logits"]).abs().max() <= 1e-5  # measured 1.2e-7


def test_parity_random_model_train_logits_and_batchnorm_statistics(random_io):
    model = random_model().train()
    with torch.no_grad():
        out = model(random_io["input_float16"].float())
    assert (out - random_io["train_logits"]).abs().max() <= 1e-4  # measured 3.2e-6
    state = model.state_dict()
    ours = {official_key(k): k for k in state}
    layers = GOLDEN["random"]["bn_layers_in_flat_order"]
    mean = torch.cat([state[ours[f"{name}.running_mean"]] for name in layers])
    var = torch.cat([state[ours[f"{name}.running_var"]] for name in layers])
    assert mean.numel() == 2882
    assert (mean - random_io["bn_running_mean_after_train_forward"]).abs().max() <= 1e-5
    assert (var - random_io["bn_running_var_after_train_forward"]).abs().max() <= 1e-5
    assert all(int(state[ours[f"{name}.num_batches_tracked"]]) == 1 for name in layers)


def test_parity_loss_targets_and_gradients_float64(random_io):
    gold = GOLDEN["random"]
    target = random_io["target"].long()
    # ours computes 1 / ln(1.1 + f) in float64 and rounds; the official code in float32: 1 ulp apart
    assert class_weights(target).tolist() == pytest.approx(gold["class_weights"], rel=1e-6)
    weights = torch.tensor(gold["class_weights"])  # the official float32 values, for the 1e-10 loss check
    edge = edge_target(target, 15)
    assert torch.equal(edge, random_io["edge_target"].long())
    assert int((edge != 255).sum()) == gold["edge_band_pixels"] == 4719

    model = random_model(torch.float64).train()
    logits = model(random_io["input_float16"].double())
    total, ce, band = SINetLoss(weights)(logits, target)  # boundary weight 0.5, 15 x 15 band
    assert float(ce.detach()) == pytest.approx(gold["loss_ce_float64"], abs=1e-10)
    assert 0.5 * float(band.detach()) == pytest.approx(gold["loss_edge_0.5xce_float64"], abs=1e-10)
    assert float(total.detach()) == pytest.approx(gold["loss_total_float64"], abs=1e-10)
    total.backward()
    expected = gold["grad_l2_norm_per_parameter_float64"]
    grads = {official_key(k): p.grad for k, p in model.named_parameters()}
    assert set(grads) == set(expected) and len(grads) == 219
    # 20 BatchNorm biases that feed another train-mode BatchNorm have a zero gradient up to
    # round-off (norms ~1e-17 on both sides): an absolute floor of 1e-14 covers them
    worst = max(abs(float(grads[k].norm()) - v) - 1e-8 * v for k, v in expected.items())
    assert worst <= 1e-14
    assert sum(v > 1e-3 for v in expected.values()) >= 150


def official_input(images_uint8: torch.Tensor) -> torch.Tensor:
    """The official preprocessing, written out: BGR, (x - mean) / std, then ToTensor's extra / 255."""
    bgr = images_uint8.flip(1).float()
    mean = torch.tensor(OFFICIAL_MEAN_BGR).view(1, 3, 1, 1)
    std = torch.tensor(OFFICIAL_STD_BGR).view(1, 3, 1, 1)
    return (bgr - mean) / std / 255


def check_released(logits, outputs, rel):
    window = logits[:, :, 96:128, 96:128]
    pooled = F.avg_pool2d(logits, 4)
    for i in range(3):
        scale = max(1.0, float(outputs["logits_window"][i].abs().max()), float(outputs["logits_avgpool4"][i].abs().max()))
        assert (window[i] - outputs["logits_window"][i]).abs().max() <= rel * scale
        assert (pooled[i] - outputs["logits_avgpool4"][i]).abs().max() <= rel * scale


def test_parity_preprocessing_rgb_wrapper_equals_the_official_formula(released):
    images, outputs = released
    rgb01 = images.float() / 255
    ours = (rgb01 - torch.tensor(OFFICIAL_MEAN).view(1, 3, 1, 1)) / torch.tensor(OFFICIAL_STD).view(1, 3, 1, 1)
    official = official_input(images)
    assert (ours.flip(1) - official).abs().max() <= 1e-8
    assert (official[:, :, 0, 0] - outputs["input_pixel_0_0"]).abs().max() <= 1e-8


def test_parity_released_weights_rgb_wrapper_float32(released):
    """Users' path: RGB in [0, 1] -> Normalized(official weights loaded with rgb_input=True)."""
    images, outputs = released
    net = Normalized(load_official_sinet(FIXTURES / "SINet.pth"), OFFICIAL_MEAN, OFFICIAL_STD).eval()
    with torch.no_grad():
        logits = net(images.float() / 255)
        official_pipeline = load_official_sinet(FIXTURES / "SINet.pth", rgb_input=False)(official_input(images))
    check_released(logits, outputs, 1e-4)  # measured 1.7e-6 / 4.9e-5 / 3.5e-6 per image
    assert (logits - official_pipeline).abs().max() <= 1e-4 * float(logits.abs().max())
    margin = logits[:, 1] - logits[:, 0]
    disagree = logits.argmax(1) != outputs["argmax"].long()
    assert not (disagree & (margin.abs() >= 1e-3)).any()
    assert int(disagree.sum()) == 0
    fg = (logits.argmax(1) == 1).float().mean(dim=(1, 2))
    assert fg.tolist() == pytest.approx(GOLDEN["released"]["foreground_fraction_argmax"], abs=1e-4)


def test_parity_released_weights_float64(released):
    """The network alone in float64 on the official float32 input (the fixture's own protocol; the
    RGB wrapper's float32 rounding of the +-0.007 inputs alone moves the logits by ~2e-6 relative)."""
    images, outputs = released
    model = load_official_sinet(FIXTURES / "SINet.pth", rgb_input=False).double().eval()
    with torch.no_grad():
        logits = model(official_input(images).double()).float()
    check_released(logits, outputs, 1e-6)
