import math

import numpy as np
import pytest
import torch

from reprozoo.gmp.losses import hinge, pull_loss, push_loss, reconstruction_nll
from reprozoo.gmp.metrics import rank_predictions, recall_table, segment_iou, summarise, vote_top1
from reprozoo.gmp.proposals import (
    complement_negatives,
    gaussian_masks,
    mixture_mask,
    mixture_segments,
    mixture_span_segments,
    summed_negative,
)


def test_gaussian_mask_scale_and_peak_normalisation():
    m = gaussian_masks(torch.tensor([0.5]), torch.tensor([0.45]), 11, 9.0)[0]
    s = 0.45 / 9
    want = torch.exp(-((torch.linspace(0, 1, 11) - 0.5) ** 2) / (2 * s * s))
    assert torch.allclose(m, want, atol=1e-6) and m.max() == 1.0
    # an off-grid centre is still peak-normalised to 1; a tiny width is floored at 0.01
    assert gaussian_masks(torch.tensor([0.53]), torch.tensor([0.3]), 11, 9.0).max() == pytest.approx(1.0)
    tiny = gaussian_masks(torch.tensor([0.5]), torch.tensor([1e-6]), 11, 1.0)
    floor = gaussian_masks(torch.tensor([0.5]), torch.tensor([0.01]), 11, 1.0)
    assert torch.equal(tiny, floor)
    lap = gaussian_masks(torch.tensor([0.5]), torch.tensor([0.4]), 11, 4.0, "laplace")[0]
    assert lap[6].item() == pytest.approx(math.exp(-0.1 / 0.1), abs=1e-6)


def test_mixture_mask_segment_rule_and_shrink():
    comps = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    assert torch.allclose(mixture_mask(comps, torch.tensor([[0.25, 0.75]])), torch.tensor([[0.25, 0.0, 0.75]]))
    # importance-weighted centre 0.25*0.2 + 0.75*0.6 = 0.5, +- w/2 with w = 0.4
    seg = mixture_segments(torch.tensor([0.2, 0.6]), torch.tensor(0.4), torch.tensor([0.25, 0.75]))
    assert torch.allclose(seg, torch.tensor([0.3, 0.7]))
    shrunk = mixture_segments(torch.tensor([0.2, 0.6]), torch.tensor(0.4), torch.tensor([0.25, 0.75]), 0.15)
    assert torch.allclose(shrunk, torch.tensor([0.33, 0.67]))
    clamped = mixture_segments(torch.tensor([0.05]), torch.tensor(0.4), torch.tensor([1.0]))
    assert torch.allclose(clamped, torch.tensor([0.0, 0.25]))
    span = mixture_span_segments(torch.tensor([0.2, 0.6, 0.9]), torch.tensor(0.1), torch.tensor([0.5, 0.45, 0.05]))
    assert torch.allclose(span, torch.tensor([0.15, 0.65]))
    neg = summed_negative(torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0]]))
    assert torch.allclose(neg, torch.tensor([2 / 3, 1.0, 0.0]))


def test_complement_negatives_cover_left_and_right_of_the_proposal():
    left, right = complement_negatives(torch.tensor([0.5]), torch.tensor([0.2]), 1.0, 0.5, 21, 9.0)
    t = torch.linspace(0, 1, 21)
    assert t[left[0].argmax()] == pytest.approx(0.2)  # middle of [0, 0.4]
    assert t[right[0].argmax()] == pytest.approx(0.8)  # middle of [0.6, 1]
    left0, _ = complement_negatives(torch.tensor([0.5]), torch.tensor([0.2]), 0.0, 0.5, 21, 9.0)
    assert left0[0].argmax() == 0  # at the start of training the negative sits at the video's end


def test_label_smoothed_reconstruction_loss_by_hand():
    logits = torch.log(torch.tensor([[[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]]))
    targets = torch.tensor([[0, 2, 1]])
    valid = torch.tensor([[True, True, False]])
    eps = 0.1
    pos = [(1 - eps) * -math.log(0.7) + eps / 3 * -(math.log(0.7) + math.log(0.2) + math.log(0.1)),
           (1 - eps) * -math.log(0.8) + eps / 3 * -(math.log(0.1) + math.log(0.1) + math.log(0.8))]
    assert reconstruction_nll(logits, targets, valid, eps).item() == pytest.approx(sum(pos) / 2, rel=1e-6)


def test_hinge_pull_and_push_by_hand():
    assert hinge(torch.tensor(1.0), torch.tensor(1.05), 0.1).item() == pytest.approx(0.05)
    assert hinge(torch.tensor(1.0), torch.tensor(2.0), 0.1).item() == 0.0
    assert pull_loss(torch.tensor([0.2, 0.9, 0.5])).item() == pytest.approx(0.49)
    # two disjoint uniform masks of 2 points: gram = diag(0.5, 0.5); with lambda 0.15: 2 * 0.35^2
    m = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    assert push_loss(m, 0.15).item() == pytest.approx(2 * 0.35**2)
    # identical masks are pushed apart: off-diagonals count
    same = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    assert push_loss(same, 0.5).item() == pytest.approx(2 * 0.5**2)


def test_mixture_fits_a_two_part_relevance_profile_better_than_one_gaussian():
    """Model-free check of the mask code: L-BFGS on L2 to a two-block profile."""
    t = torch.linspace(0, 1, 32)
    target = (((t >= 0.2) & (t < 0.35)) | ((t >= 0.55) & (t < 0.7))).float()

    def fit(k):
        raw = torch.nn.Parameter(torch.cat([torch.linspace(-1, 1, k), torch.zeros(1), torch.zeros(k)]))
        opt = torch.optim.LBFGS([raw], max_iter=200, line_search_fn="strong_wolfe")

        def err():
            c, w, a = torch.sigmoid(raw[:k]), torch.sigmoid(raw[k]), torch.softmax(raw[k + 1:], 0)
            m = mixture_mask(gaussian_masks(c, w.expand(k), 32, 3.0), a)
            return ((m / m.max() - target) ** 2).sum()

        def closure():
            opt.zero_grad()
            loss = err()
            loss.backward()
            return loss

        opt.step(closure)
        return err().item()

    one, three = fit(1), fit(3)
    assert three < 0.6 * one


def test_iou_by_hand():
    a = torch.tensor([[0.0, 0.5], [0.2, 0.4], [0.0, 0.1]])
    b = torch.tensor([[0.25, 0.75], [0.2, 0.4], [0.5, 0.6]])
    iou = segment_iou(a, b)
    assert iou[0].item() == pytest.approx(0.25 / 0.75) and iou[1].item() == pytest.approx(1.0)
    assert iou[2].item() == pytest.approx(1e-10 / (0.6 + 1e-10))


def test_vote_top1_and_recall_by_hand():
    segs = torch.tensor([[[0.0, 0.2], [0.5, 0.9], [0.55, 0.95], [0.6, 1.0]]])
    losses = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    # uniform votes: the cluster of three overlapping proposals wins, its middle member most
    assert vote_top1(segs, losses, "uniform").item() == 2
    # loss weights c_j = 1 - C_j / max C = [0.75, 0.5, 0.25, 0]: the lowest-loss isolated one wins
    assert vote_top1(segs, losses, "loss").item() == 0
    top1, ranked = rank_predictions(segs, losses, "uniform")
    assert torch.allclose(top1, torch.tensor([[0.55, 0.95]])) and torch.equal(ranked, segs)
    gt = torch.tensor([[0.0, 0.25]])
    hits = recall_table(top1, ranked, gt, ns=(1, 2), ious=(0.3, 0.7))
    assert hits["R1@0.3"].tolist() == [0.0] and hits["R2@0.7"].tolist() == [1.0]  # IoU(seg0, gt) = 0.8
    s = summarise({"iou": np.array([0.2, 0.6, 1.0]), "R1@0.5": np.array([0.0, 1.0, 1.0])}, np.array([True, True, False]))
    assert s == {"mIoU": pytest.approx(0.4), "R1@0.5": 0.5}
