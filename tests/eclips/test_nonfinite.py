"""Non-finite numbers and misuse at the public numeric entry points of reprozoo.eclips."""

import math

import numpy as np
import pytest

from reprozoo.eclips import metrics
from reprozoo.eclips.sampler import UncertaintySampler, bucket_weights
from reprozoo.errors import ConfigError, DataError

S, Y, V = [0.9, 0.7, 0.2, 0.4], [1, 1, 0, 0], ["a", "a", "b", "b"]


@pytest.mark.parametrize("t", [math.nan, math.inf, -math.inf])
def test_fixed_threshold_must_be_finite(t):
    # a NaN threshold used to accept nothing and reject nothing: HTER 0.00%
    with pytest.raises(ConfigError, match=r"^threshold must be a finite number, got (nan|-?inf)$"):
        metrics.evaluate(S, Y, V, threshold_source="fixed", threshold=t)
    with pytest.raises(ConfigError, match="threshold must be a finite number"):
        metrics.evaluate(S, Y, V, threshold_source="val_eer", threshold=t)


def test_finite_threshold_still_gives_the_right_number():
    r = metrics.evaluate(S, Y, V, threshold_source="fixed", threshold=0.5)
    assert r.hter == 0.0 and r.threshold == 0.5
    r = metrics.evaluate(S, Y, V, threshold_source="fixed", threshold=0.85)  # live video 'a' has 0.8
    assert r.frr == 1.0 and r.far == 0.0 and r.hter == 0.5


@pytest.mark.parametrize("fn", [lambda s: metrics.hter(s, [1, 0], 0.5), lambda s: metrics.eer(s, [1, 0]),
                                lambda s: metrics.auc(s, [1, 0]), lambda s: metrics.acer(s, [1, 0]),
                                lambda s: metrics.roc(s, [1, 0])])
def test_low_level_metrics_refuse_nan_scores(fn):
    with pytest.raises(DataError, match=r"^scores must be finite; index 1 is nan \(1 non-finite in all\)$"):
        fn([0.3, math.nan])


def test_rate_arguments_checked():
    with pytest.raises(ConfigError, match="threshold must be a finite number"):
        metrics.far_frr([0.2, 0.8], [0, 1], math.nan)
    with pytest.raises(ConfigError, match=r"^fpr must be <= 1.0, got 2.0$"):
        metrics.tpr_at_fpr([0.2, 0.8], [0, 1], fpr=2)
    with pytest.raises(ConfigError, match=r"^grid_density must be >= 1, got 0$"):
        metrics.eer([0.2, 0.8], [0, 1], grid_density=0)
    with pytest.raises(ConfigError, match="threshold must be a finite number"):
        metrics.bias_variance(S, Y, V, bias_mode="hard", threshold=math.nan)


def test_sampler_settings_and_uncertainties():
    with pytest.raises(ConfigError, match=r"^gamma must be a finite number, got nan$"):
        UncertaintySampler([0, 0], [0, 1], gamma=math.nan)
    with pytest.raises(ConfigError, match=r"^cap must be >= 1.0, got 0.5$"):
        bucket_weights([0.1, 0.2], cap=0.5)
    with pytest.raises(DataError, match=r"^uncertainties must be finite; index 0 is inf"):
        bucket_weights([math.inf, 0.2])
    pi = bucket_weights([0.0, 1.0], eta=0.5, gamma=1.0, eps=0.0 + 1e-4, cap=10.0)
    assert np.isclose(pi.sum(), 1.0) and pi[1] > pi[0]


def test_antispoofer_refuses_float_frames(tmp_path):
    # float frames in [0, 1] used to be divided by 255 again: near-black images, a plausible score
    from types import SimpleNamespace

    import torch

    from reprozoo.eclips.inference import AntiSpoofer, save_antispoofer
    from reprozoo.eclips.models import base_learner

    cfg = SimpleNamespace(width=4, embed_dim=8, dropout=0.5, feature_norm=True, size=16, test_mc_samples=2,
                          mc_test=False)
    torch.manual_seed(0)
    path = save_antispoofer(base_learner(4, 8).eval(), tmp_path / "e.safetensors", cfg, threshold=0.5, arm="single")
    spoofer = AntiSpoofer.from_checkpoint(path)
    with pytest.raises(DataError, match=r"^frames must be a \(n_frames >= 1, 3, H, W\) uint8 tensor \(0-255\), "
                                        r"got torch.float32 of shape \(2, 3, 16, 16\)$"):
        spoofer.score_video("v", torch.rand(2, 3, 16, 16))
    with pytest.raises(DataError, match=r"got list of shape \(\)$"):
        spoofer.score_video("v", [[0]])
    v = spoofer.score_video("v", torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8))
    assert 0.0 <= v.live_probability <= 1.0 and v.n_frames == 2
