"""ECLIPS (Kim et al., CVPR Workshops 2024): cross-domain face anti-spoofing with video-wise metrics
and a Bayesian ensembled backbone.

Library parts: video-wise metrics with explicit polarity and threshold source (:mod:`.metrics`),
backbones (:mod:`.backbones`), the head, base learner and ensemble (:mod:`.ensemble`), MC dropout and
predictive uncertainty (:mod:`.uncertainty`), one-pass member inference (:mod:`.batched`), the
registered models (:mod:`.models`), the
bucket-balanced uncertainty sampler (:mod:`.sampler`), training (:mod:`.training`), checkpoints
and video scoring (:mod:`.inference`).
"""

from reprozoo.eclips import models  # noqa: F401  (registers the base learners)
from reprozoo.eclips.metrics import FASResult, bias_variance, eer, eer_threshold, evaluate, group_videos
from reprozoo.eclips.models import (
    Backbone,
    BaseLearner,
    Ensemble,
    FASHead,
    SmallCNN,
    clip_visual_encoder,
    ensemble_loss,
    mc_dropout,
    predict,
)
from reprozoo.eclips.sampler import UncertaintySampler

__all__ = [
    "Backbone", "BaseLearner", "Ensemble", "FASHead", "FASResult", "SmallCNN", "UncertaintySampler",
    "bias_variance", "clip_visual_encoder", "eer", "eer_threshold", "ensemble_loss", "evaluate",
    "group_videos", "mc_dropout", "predict",
]
