"""Rainbow Memory (Bang et al., CVPR 2021): blurry continual learning with an uncertainty-diverse memory.

Library parts: BlurryM scenarios (:mod:`.scenarios`), memory policies (:mod:`.memory`), strategies
RM / ER / GDumb / fine-tune / EWC (:mod:`.strategies`), CL metrics (:mod:`.metrics`), augmentation
(:mod:`.augment`), backbones (:mod:`.models`) and datasets (:mod:`.data`).
"""

from reprozoo.rainbow import models  # noqa: F401  (registers the backbones)
from reprozoo.rainbow.memory import (
    EpisodicMemory,
    MemoryPolicy,
    make_policy,
    stride_select,
    vote_uncertainty,
)
from reprozoo.rainbow.metrics import a_avg, a_last, forgetting, intransigence
from reprozoo.rainbow.scenarios import Scenario, blurry_split, check_partition
from reprozoo.rainbow.strategies import CLSettings, ContinualLearner, Normalized, joint_accuracy

__all__ = [
    "CLSettings", "ContinualLearner", "EpisodicMemory", "MemoryPolicy", "Normalized", "Scenario",
    "a_avg", "a_last", "blurry_split", "check_partition", "forgetting", "intransigence",
    "joint_accuracy", "make_policy", "stride_select", "vote_uncertainty",
]
