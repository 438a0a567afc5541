"""The registered ECLIPS models and the constructors behind them, plus the package's model API in one place.

The parts live by job: backbones (:mod:`.backbones`: ``SmallCNN``, ``Backbone``,
``clip_visual_encoder``), head / base learner / ensemble (:mod:`.ensemble`), MC dropout and
predictive uncertainty (:mod:`.uncertainty`) and one-pass member inference (:mod:`.batched`);
they are re-exported here.
"""

from __future__ import annotations

from reprozoo.eclips.backbones import Backbone, SmallCNN, clip_visual_encoder
from reprozoo.eclips.batched import GroupedMembers, stacked_forward
from reprozoo.eclips.ensemble import FUSIONS, BaseLearner, Ensemble, FASHead, ensemble_loss
from reprozoo.eclips.uncertainty import UNCERTAINTIES, mc_dropout, member_probs, predict
from reprozoo.runtime.registry import register_model

__all__ = ["FUSIONS", "UNCERTAINTIES", "Backbone", "BaseLearner", "Ensemble", "FASHead", "GroupedMembers",
           "SmallCNN", "base_learner", "clip_visual_encoder", "eclips_cnn_ensemble", "eclips_cnn_small",
           "ensemble_loss", "mc_dropout", "member_probs", "predict", "stacked_forward"]


# ------------------------------------------------------------------------------------ constructors
def base_learner(width: int = 32, embed_dim: int = 64, dropout: float = 0.5, feature_norm: bool = True,
                 in_chans: int = 3) -> BaseLearner:
    """The CPU base learner: :class:`SmallCNN` (width w) + a ``4w -> embed_dim -> 2`` head."""
    return BaseLearner(Backbone(SmallCNN(width, in_chans), strip_head=False), embed_dim, dropout, feature_norm)


@register_model
def eclips_cnn_small(width: int = 32, embed_dim: int = 64, drop_rate: float = 0.5, feature_norm: bool = True,
                     in_chans: int = 3) -> BaseLearner:
    """Single CPU base learner (conv 32-64-128, embedder 128 -> 64, Dropout 0.5, 64 -> 2)."""
    return base_learner(width, embed_dim, drop_rate, feature_norm, in_chans)


@register_model
def eclips_cnn_ensemble(k: int = 4, width: int = 32, embed_dim: int = 64, drop_rate: float = 0.5,
                        feature_norm: bool = True, fusion: str = "learned", tau: float = 1.0,
                        in_chans: int = 3) -> Ensemble:
    """ECLIPS-lite: K CPU base learners with learnable softmax decision fusion (temperature ``tau``)."""
    return Ensemble([base_learner(width, embed_dim, drop_rate, feature_norm, in_chans) for _ in range(k)],
                    fusion=fusion, tau=tau)
