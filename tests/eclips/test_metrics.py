import numpy as np
import pytest
import torch

from reprozoo.eclips import metrics as M
from reprozoo.errors import DataError

pytestmark = pytest.mark.filterwarnings("ignore:.*single frame")

# three videos: A live (3 frames), B spoof (2 frames), C live (1 frame)
TOY_S = [1.0, 0.8, 0.6, 0.1, 0.3, 0.5]
TOY_Y = [1, 1, 1, 0, 0, 1]
TOY_V = ["A", "A", "A", "B", "B", "C"]


def test_bias_variance_hand_computed():
    bv = M.bias_variance(TOY_S, TOY_Y, TOY_V)
    assert bv["variance"] == pytest.approx((0.08 / 3 + 0.01 + 0.0) / 3)
    assert bv["bias"] == pytest.approx((0.04 + 0.04 + 0.25) / 3)
    assert bv["bias_live"] == pytest.approx((0.04 + 0.25) / 2)
    assert bv["bias_spoof"] == pytest.approx(0.04)
    assert bv["variance_live"] == pytest.approx(0.08 / 3 / 2)
    assert bv["variance_spoof"] == pytest.approx(0.01)
    hard = M.bias_variance(TOY_S, TOY_Y, TOY_V, bias_mode="hard", threshold=0.5)
    assert hard["bias"] == 0.0  # C's 0.5 >= 0.5 is accepted
    assert M.bias_variance(TOY_S, TOY_Y, TOY_V, bias_mode="hard", threshold=0.6)["bias"] == pytest.approx(1 / 3)


def test_video_grouping_order_and_single_frame_warning():
    v = M.group_videos(TOY_S, TOY_Y, TOY_V)
    assert v.ids == ["A", "B", "C"]
    np.testing.assert_allclose(v.score, [0.8, 0.2, 0.5])
    np.testing.assert_array_equal(v.n_frames, [3, 2, 1])
    with pytest.warns(UserWarning, match="1 video"):
        r = M.evaluate(TOY_S, TOY_Y, TOY_V, threshold_source="fixed", threshold=0.5)
    assert r.n_single_frame == 1 and r.n_videos == 3 and r.n_frames == 6
    assert (r.n_live, r.n_spoof) == (2, 1)
    # interleaved frames of two videos group by id, not by position
    v2 = M.group_videos([0.2, 0.9, 0.4, 0.7], [0, 1, 0, 1], [7, 3, 7, 3])
    assert v2.ids == [7, 3] and np.allclose(v2.score, [0.3, 0.8])


def test_identical_frames_have_zero_variance():
    s = [0.3] * 4 + [0.9] * 5
    assert M.bias_variance(s, [0] * 4 + [1] * 5, [0] * 4 + [1] * 5)["variance"] == 0.0


def test_perfect_separation_and_constant_scores():
    r = M.evaluate([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0], [0, 0, 1, 1], level="frame")
    assert (r.hter, r.auc, r.eer, r.tpr_at_fpr1) == (0.0, 1.0, 0.0, 1.0)
    c = M.evaluate([0.5] * 6, [1, 1, 1, 0, 0, 0], level="frame", threshold_source="fixed", threshold=0.5)
    assert c.auc == 0.5 and c.far == 1.0 and c.frr == 0.0 and c.hter == 0.5


def test_label_flip_turns_auc_into_one_minus_auc():
    rng = np.random.default_rng(0)
    s, y = rng.uniform(size=50), rng.integers(0, 2, 50)
    a = M.auc(s, y)
    assert a != 0.5
    assert M.auc(s, 1 - y) == pytest.approx(1 - a)
    # the same data stored with spoof = 1 is read correctly with live_label=0
    r1 = M.evaluate(s, y, level="frame", threshold_source="fixed", threshold=0.5)
    r0 = M.evaluate(s, 1 - y, level="frame", threshold_source="fixed", threshold=0.5, live_label=0)
    assert r0.auc == pytest.approx(r1.auc) and (r0.far, r0.frr) == (r1.far, r1.frr)
    assert r0.live_label == 0 and "live label = 0" in r0.summary()
    wrong = M.evaluate(s, 1 - y, level="frame", threshold_source="fixed", threshold=0.5)
    assert (wrong.far, wrong.frr) == pytest.approx((1 - r1.frr, 1 - r1.far))  # FAR and FRR swap roles


def test_auc_ties_count_half():
    assert M.auc([0.5, 0.9, 0.5, 0.1], [1, 1, 0, 0]) == pytest.approx(3.5 / 4)


def test_eer_grid_and_tie_rule():
    e, t = M.eer([0.6, 0.4], [1, 0])
    assert e == 0.0 and t == pytest.approx(0.6)  # |FAR-FRR| = 0 on (0.4, 0.6]: the last grid point wins
    e, t = M.eer([0.2, 0.8, 0.3, 0.7], [1, 1, 0, 0])
    assert e == 0.5 and t == pytest.approx(0.7)
    e, t = M.eer([0.9, 0.95], [1, 0])  # inverted scores: FAR = FRR = 1 on (0.9, 0.95]
    assert t == pytest.approx(0.95) and e == 1.0
    e, t = M.eer([0.5, 0.5], [1, 0])  # FAR = FRR only where both are 0 or 1: t <= 0.5 -> 1 vs 0, t = 1.1 -> 0 vs 1
    assert e == 0.5 and t == pytest.approx(1.1)


def test_eer_and_auc_match_brute_force_and_sklearn_roc():
    rng = np.random.default_rng(1)
    for _ in range(5):
        n = int(rng.integers(20, 80))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        s = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1).round(3)  # rounding creates ties
        e, t = M.eer(s, y, grid_density=1000)
        grid = np.append(np.arange(1001) / 1000, 1.1)
        rates = np.array([M.far_frr(s, y, g) for g in grid])
        d = np.abs(rates[:, 0] - rates[:, 1])
        best = np.flatnonzero(np.isclose(d, d.min(), atol=1e-12))[-1]
        assert t == pytest.approx(grid[best]) and e == pytest.approx(rates[best].mean())
        fpr, tpr = M.roc(s, y)
        assert M.auc(s, y) == pytest.approx(np.trapezoid(tpr, fpr))
        # the EER point lies on the ROC curve: FAR = FPR, FRR = 1 - TPR at that threshold
        far, frr = M.far_frr(s, y, t)
        assert any(np.isclose(fpr, far) & np.isclose(1 - tpr, frr))


def test_tpr_at_fpr_one_percent():
    live = [0.9, 0.8, 0.7]
    y = [1] * 3 + [0] * 100
    assert M.tpr_at_fpr(live + [0.85] + [0.1] * 99, y) == pytest.approx(1.0)
    assert M.tpr_at_fpr(live + [0.85, 0.75] + [0.1] * 98, y) == pytest.approx(2 / 3)
    assert M.tpr_at_fpr(live + [0.95, 0.99] + [0.1] * 98, y) == 0.0


def test_acer_pooled_and_worst_attack():
    s = [0.7, 0.4, 0.6, 0.2, 0.1, 0.1]
    y = [1, 1, 0, 0, 0, 0]
    types = ["live", "live", "print", "print", "replay", "replay"]
    assert M.acer(s, y)["acer"] == pytest.approx((0.25 + 0.5) / 2)
    worst = M.acer(s, y, attack_types=types)
    assert (worst["apcer"], worst["bpcer"], worst["acer"]) == (0.5, 0.5, 0.5)


def test_empty_class():
    s, y, v = [0.9, 0.7, 0.6, 0.4], [1, 1, 1, 1], [0, 0, 1, 1]
    r = M.evaluate(s, y, v, threshold_source="fixed", threshold=0.5)
    assert np.isnan(r.auc) and np.isnan(r.eer) and np.isnan(r.tpr_at_fpr1)
    assert r.far == 1.0 and r.frr == 0.0  # FLIP: a rate over an empty class is 1
    assert np.isnan(r.bias_spoof) and np.isnan(r.variance_spoof) and r.variance_live == pytest.approx(0.01)
    with pytest.raises(DataError, match="needs live and spoof"):
        M.evaluate(s, y, v, threshold_source="test_eer")
    with pytest.raises(DataError, match="holds only live samples"):
        M.eer_threshold(s, y, v)


def test_threshold_sources_are_recorded():
    test = ([0.9, 0.8, 0.35, 0.2], [1, 1, 0, 0], [0, 1, 2, 3])
    val = ([0.6, 0.7, 0.5, 0.3], [1, 1, 0, 0], [0, 1, 2, 3])
    r = M.evaluate(*test, threshold_source="val_eer", val=val)
    assert r.threshold_source == "val_eer" and r.threshold == pytest.approx(0.6)
    assert r.hter == 0.0 and "validation EER threshold" in str(r)
    assert M.evaluate(*test, threshold_source="val_eer", threshold=0.3).far == 0.5
    t = M.evaluate(*test, threshold_source="test_eer")
    assert t.threshold == pytest.approx(0.8) and "optimistic" in t.summary()
    assert t.to_dict()["threshold_source"] == "test_eer"


def test_torch_tensors_give_the_same_numbers():
    s = torch.tensor(TOY_S, dtype=torch.float64)
    a = M.evaluate(s, torch.tensor(TOY_Y), torch.tensor([0, 0, 0, 1, 1, 2]), threshold_source="fixed",
                   threshold=0.5)
    b = M.evaluate(TOY_S, TOY_Y, TOY_V, threshold_source="fixed", threshold=0.5)
    assert a.to_dict() == b.to_dict()


def test_bad_inputs_name_the_item():
    with pytest.raises(DataError, match=r"frame 2 \(video 'B'\) has nan"):
        M.group_videos([0.5, 0.5, float("nan")], [1, 1, 0], ["A", "A", "B"])
    with pytest.raises(DataError, match=r"index 1 has 1\.5"):
        M.check_scores([0.1, 1.5])
    with pytest.raises(DataError, match="video 'A' has frames with both labels"):
        M.group_videos([0.5, 0.5], [1, 0], ["A", "A"])
    with pytest.raises(DataError, match="length mismatch"):
        M.evaluate([0.5, 0.5], [1], level="frame", threshold_source="fixed", threshold=0.5)
    with pytest.raises(DataError, match="index 0 has 2"):
        M.live_targets([2, 1])
    with pytest.raises(DataError, match="needs video_ids"):
        M.evaluate([0.5], [1], threshold_source="fixed", threshold=0.5)
    with pytest.raises(DataError, match="threshold_source must be"):
        M.evaluate([0.5], [1], [0], threshold_source="best")
    with pytest.raises(DataError, match="empty"):
        M.evaluate([], [], [], threshold_source="fixed", threshold=0.5)
