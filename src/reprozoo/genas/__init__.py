"""GeNAS (Jeong et al., IJCAI 2023): flatness of the loss surface as a NAS proxy.

Search spaces (NAS-Bench-201 cell with its string notation, the DARTS cell space with its
operations, cells and NetworkCIFAR macro network), a one-shot
SPOS supernet with BN recalibration (the official protocol by default), a loader for the
official GeNAS supernet weights, proxies behind one interface (flatness, validation
accuracy / loss, angle, combinations, a random control), a correlation harness and an
evolutionary search.
"""

from reprozoo.genas import darts, models  # noqa: F401  (registers the models)
from reprozoo.genas.correlation import bootstrap_ci, kendall, regret, spearman, top_k_agreement
from reprozoo.genas.darts import DARTS_V2, DartsNetwork, darts_from_pairs
from reprozoo.genas.models import NB201Network
from reprozoo.genas.official import load_official_supernet
from reprozoo.genas.proxies import (
    Angle,
    Combined,
    Flatness,
    ProxyData,
    RandomScore,
    ShuffledRecal,
    ValAccuracy,
    ValLoss,
    flatness,
    flip_crop,
    proxy_data,
    score_all,
)
from reprozoo.genas.spaces import DartsGenotype, NB201Genotype, repair_darts, sample_darts, sample_nb201
from reprozoo.genas.supernet import SupernetConfig, random_labels, recalibrate_bn, train_supernet

__all__ = ["DARTS_V2", "Angle", "Combined", "DartsGenotype", "DartsNetwork", "darts_from_pairs", "Flatness", "NB201Genotype", "NB201Network", "ProxyData",
           "RandomScore", "ShuffledRecal", "SupernetConfig", "ValAccuracy", "ValLoss", "bootstrap_ci", "flatness", "flip_crop", "kendall", "load_official_supernet", "proxy_data",
           "random_labels", "recalibrate_bn", "regret", "repair_darts", "sample_darts", "sample_nb201", "score_all", "spearman",
           "top_k_agreement", "train_supernet"]
