"""The experiments of the ReXNet package, registered here: ``rexnet-rank`` (the rank study),
``rexnet-channels`` (linear vs stage-wise channel schedule, SiLU vs ReLU6, at equal MACs) and
``rexnet-imagenet`` (the paper's ImageNet training recipe). Each one's design, trials and rule live in
its own module: :mod:`reprozoo.rexnet.rank_experiment`, :mod:`reprozoo.rexnet.channels_experiment`,
:mod:`reprozoo.rexnet.training`."""

from reprozoo.rexnet import channels_experiment as channels
from reprozoo.rexnet import rank_experiment as rank
from reprozoo.rexnet import training
from reprozoo.rexnet.channels_experiment import ChannelsConfig
from reprozoo.rexnet.rank_experiment import RankConfig
from reprozoo.rexnet.training import ImageNetConfig
from reprozoo.runtime.registry import register_experiment
from reprozoo.runtime.report import ExperimentResult


@register_experiment("rexnet-rank", paper=rank.PAPER, claim=rank.CLAIM, config=RankConfig)
def run_rank(cfg: RankConfig, ctx) -> ExperimentResult:
    """Experiment ``rexnet-rank``: output rank of random layers per width ratio and activation."""
    return rank.run_rank(cfg, ctx)


@register_experiment("rexnet-channels", paper=channels.PAPER, claim=channels.CLAIM, config=ChannelsConfig)
def run_channels(cfg: ChannelsConfig, ctx) -> ExperimentResult:
    """Experiment ``rexnet-channels``: equal-MAC arms trained on the same data and seeds."""
    return channels.run_channels(cfg, ctx)


@register_experiment("rexnet-imagenet", paper=training.PAPER, claim=training.CLAIM, config=ImageNetConfig)
def run_imagenet(cfg: ImageNetConfig, ctx) -> ExperimentResult:
    """Experiment ``rexnet-imagenet``: the paper's ImageNet recipe on an image folder."""
    return training.run_imagenet(cfg, ctx)


__all__ = ["ChannelsConfig", "ImageNetConfig", "RankConfig", "run_channels", "run_imagenet", "run_rank"]
