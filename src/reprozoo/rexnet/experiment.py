"""Registered experiments of the ReXNet package: ``rexnet-rank`` (the rank study) and
``rexnet-imagenet`` (the paper's ImageNet training recipe)."""

from reprozoo.rexnet.rank_experiment import RankConfig, run_rank

__all__ = ["RankConfig", "run_rank"]
