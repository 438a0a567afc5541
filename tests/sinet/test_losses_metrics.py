import math

import pytest
import torch
import torch.nn.functional as F

from reprozoo.errors import ConfigError
from reprozoo.sinet.losses import (
    SINetLoss,
    band_kernel,
    boundary_band,
    class_weights,
    edge_target,
    resize_labels,
)
from reprozoo.sinet.metrics import SegMeter, confusion_matrix, mean_iou, per_image_fg_iou


def test_class_weights_enet_rule():
    masks = torch.zeros(2, 4, 4, dtype=torch.uint8)
    masks[0, :2, :2] = 1
    masks[1, :2, :2] = 1  # foreground frequency 8 / 32 = 0.25
    masks[1, 3, 3] = 255  # ignored
    w = class_weights(masks)
    f1 = 8 / 31
    assert torch.allclose(w, torch.tensor([1 / math.log(1.10 + 1 - f1), 1 / math.log(1.10 + f1)]))


def test_boundary_band_by_hand():
    y = torch.zeros(1, 7, 7, dtype=torch.long)
    y[0, 2:5, 2:5] = 1  # a 3x3 square
    band = boundary_band(y, 3)
    # dilate -> rows/cols 1..5 ; erode -> only the centre (3, 3); band = 5x5 ring minus the centre
    expected = torch.zeros(7, 7, dtype=torch.bool)
    expected[1:6, 1:6] = True
    expected[3, 3] = False
    assert torch.equal(band[0], expected)
    target = edge_target(y, 3)
    assert int((target != 255).sum()) == 24 and int((target == 1).sum()) == 8
    with pytest.raises(ConfigError, match="odd"):
        boundary_band(y, 4)


def test_band_kernel_scaling():
    assert band_kernel(224, 15, 224) == 15
    assert band_kernel(128, 15, 224) == 9
    assert band_kernel(96, 15, 224) == 7
    assert band_kernel(28, 5, 28) == 5
    assert band_kernel(16, 5, 28) == 3


def test_loss_is_weighted_ce_plus_half_band_ce():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 8, 8)
    y = torch.zeros(2, 8, 8, dtype=torch.long)
    y[:, 2:6, 3:7] = 1
    w = torch.tensor([0.7, 2.0])
    total, ce, edge = SINetLoss(w, 0.5, 3)(logits, y)
    ref_ce = F.cross_entropy(logits, y, weight=w, ignore_index=255)
    ref_edge = F.cross_entropy(logits, edge_target(y, 3), weight=w, ignore_index=255)
    assert torch.allclose(total, ref_ce + 0.5 * ref_edge)
    assert torch.allclose(ce, ref_ce) and torch.allclose(edge, ref_edge)
    off, ce_off, _ = SINetLoss(w, 0.0, 3)(logits, y)
    assert torch.allclose(off, ref_ce)


def test_loss_with_empty_band_and_coarse_logits():
    logits = torch.randn(1, 2, 4, 4, requires_grad=True)
    y = torch.zeros(1, 32, 32, dtype=torch.long)  # no foreground: empty band
    total, _, edge = SINetLoss(None, 0.5, 3)(logits, y)  # labels nearest-resized to 4x4 (stage 1)
    assert torch.isfinite(total) and edge.item() == 0.0
    total.backward()
    with pytest.raises(ConfigError, match="num_classes >= 2"):
        SINetLoss()(torch.randn(1, 1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))


def test_resize_labels_nearest():
    y = torch.arange(16).view(1, 4, 4)
    assert resize_labels(y, (2, 2)).tolist() == [[[0, 2], [8, 10]]]


def test_per_image_fg_iou_by_hand():
    gt = torch.tensor([[[1, 1, 0, 0]], [[0, 0, 0, 0]], [[1, 255, 0, 0]]])
    pred = torch.tensor([[[1, 0, 1, 0]], [[0, 0, 0, 0]], [[1, 1, 1, 0]]])
    iou = per_image_fg_iou(pred, gt)
    # image 0: inter 1, union 3; image 1: empty union -> 1; image 2: inter 1, union |{0, 2}| = 2
    assert torch.allclose(iou, torch.tensor([1 / 3, 1.0, 0.5], dtype=torch.float64))


def test_confusion_matrix_miou_and_meter():
    gt = torch.tensor([[[1, 1, 0, 0]]])
    pred = torch.tensor([[[1, 0, 0, 0]]])
    cm = confusion_matrix(pred, gt)
    assert cm.tolist() == [[2, 0], [1, 1]]
    assert mean_iou(cm) == pytest.approx((2 / 3 + 1 / 2) / 2)
    meter = SegMeter(kernel=3)
    meter.update(pred, gt)
    out = meter.compute()
    assert out["fg_iou"] == pytest.approx(50.0)
    assert out["miou"] == pytest.approx(100 * (2 / 3 + 1 / 2) / 2)
    # band of gt [1, 1, 0, 0] with k=3 = pixels 1, 2; prediction 0 there -> tp 0, fn 1 -> F1 = 0
    assert out["band_f1"] == 0.0
    meter = SegMeter(kernel=3)
    meter.update(torch.tensor([[[1, 1, 1, 0]]]), gt)  # band: p = {1, 2}, g = {1}: tp 1, fp 1 -> F1 2/3
    assert meter.compute()["band_f1"] == pytest.approx(100 * 2 / 3)
