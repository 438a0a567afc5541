"""Registered experiments of the ReXNet package: ``rexnet-rank`` (the rank study) and
``rexnet-imagenet`` (the paper's ImageNet training recipe)."""

from reprozoo.rexnet.rank_experiment import RankConfig, run_rank
from reprozoo.rexnet.training import ImageNetConfig, run_imagenet

__all__ = ["ImageNetConfig", "RankConfig", "run_imagenet", "run_rank"]
