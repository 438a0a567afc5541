"""Rainbow Memory (Bang et al., CVPR 2021): blurry continual learning with an uncertainty-diverse memory.

Library parts: BlurryM scenarios (:mod:`.scenarios`), memory policies (:mod:`.memory`), strategies
RM / ER / GDumb / fine-tune / EWC (:mod:`.strategies`), CL metrics (:mod:`.metrics`), augmentation
(:mod:`.augment`), the official vote perturbation sets (:mod:`.vote_sets`), backbones (:mod:`.models`),
datasets (:mod:`.data`), and readers of the official code's checkpoints (:mod:`.official`) and split
files (:mod:`.official_splits`).
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
from reprozoo.rainbow.official import load_official_resnet
from reprozoo.rainbow.official_splits import OfficialSplit, read_official_split
from reprozoo.rainbow.scenarios import Scenario, blurry_split, check_partition
from reprozoo.rainbow.strategies import CLSettings, ContinualLearner, Normalized, joint_accuracy
from reprozoo.rainbow.vote_sets import VOTE_SETS, make_vote_set

__all__ = [
    "CLSettings", "ContinualLearner", "EpisodicMemory", "MemoryPolicy", "Normalized", "OfficialSplit", "Scenario",
    "VOTE_SETS", "a_avg", "a_last", "blurry_split", "check_partition", "forgetting", "intransigence",
    "joint_accuracy", "load_official_resnet", "make_policy", "make_vote_set", "read_official_split",
    "stride_select", "vote_uncertainty",
]
