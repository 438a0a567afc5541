"""Registered experiments of the ReXNet package: ``rexnet-rank`` (the rank study),
``rexnet-channels`` (linear vs stage-wise channel schedule, SiLU vs ReLU6, at equal MACs) and
``rexnet-imagenet`` (the paper's ImageNet training recipe)."""

from reprozoo.rexnet.channels_experiment import ChannelsConfig, run_channels
from reprozoo.rexnet.rank_experiment import RankConfig, run_rank
from reprozoo.rexnet.training import ImageNetConfig, run_imagenet

__all__ = ["ChannelsConfig", "ImageNetConfig", "RankConfig", "run_channels", "run_imagenet", "run_rank"]
