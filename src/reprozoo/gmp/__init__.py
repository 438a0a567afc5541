"""GMP + pull-push learning (Kim et al., AAAI 2024): weakly supervised temporal video grounding
with Gaussian-mixture proposals, and the CPL single-Gaussian baseline (Zheng et al., CVPR 2022)."""

from reprozoo.gmp.models import (
    CPL,
    GMP,
    GrounderConfig,
    MaskedQueryGrounder,
    activitynet_config,
    build_grounder,
    charades_config,
    cpl_charades,
    pps_activitynet,
    pps_charades,
)
from reprozoo.gmp.official import load_official_checkpoint, official_config

__all__ = ["CPL", "GMP", "GrounderConfig", "MaskedQueryGrounder", "activitynet_config", "build_grounder",
           "charades_config", "cpl_charades", "load_official_checkpoint", "official_config", "pps_activitynet",
           "pps_charades"]
