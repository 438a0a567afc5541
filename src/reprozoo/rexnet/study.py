"""One builder for the channel-configuration study: ReXNet's skeleton with either the linear
channel schedule or a MobileNetV2-style stage-wise one, and a chosen activation after the stem,
every expansion 1x1 conv and the penultimate conv.

Everything else is shared by every arm: 16 inverted bottlenecks (expansion 6, SE from stage 3,
ReLU6 after the depthwise conv, partial shortcut), the stem and the penultimate width (they follow
``width_mult``), the strides, the head. The stage-wise widths are scaled with one multiplier to
the MACs of the linear schedule at the same ``width_mult``; :func:`equal_mac_arms` refuses a set
of arms whose MACs differ from the linear one by more than ``tolerance``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reprozoo.errors import ConfigError
from reprozoo.rexnet.blocks import ACTIVATIONS
from reprozoo.rexnet.models import ReXNet
from reprozoo.rexnet.schedule import STAGEWISE_BASE, rexnet_schedule, schedule_macs, stagewise_channels

SCHEDULES = ("linear", "stagewise")
MAC_TOLERANCE = 0.05  # arms compared "at equal MACs" must agree within 5%
SMALL_INPUT_STRIDES = (1, 2, 2, 1, 1, 1)  # total stride 8 (stem 2 x 2 x 2): 32x32 inputs end at 4x4


@dataclass(frozen=True)
class Arm:
    """One network of the study: its channel schedule, its activation and its width."""

    schedule: str  # linear | stagewise
    act: str  # after the stem, each expansion 1x1 and the penultimate conv
    width_mult: float
    early: int = 0  # stage-wise only: this many leading blocks copy the linear widths, no later block is narrower

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got '{self.schedule}'")
        if self.act not in ACTIVATIONS:
            raise ConfigError(f"unknown activation '{self.act}'; choose one of: {', '.join(ACTIVATIONS)}")
        if not 0 <= self.early < len(STAGEWISE_BASE) - 1:
            raise ConfigError(f"early must be in [0, {len(STAGEWISE_BASE) - 2}], got {self.early}")


def block_widths(arm: Arm, *, image_size: int = 32, in_chans: int = 1, num_classes: int = 10,
                 stage_strides: Sequence[int] = SMALL_INPUT_STRIDES) -> list[int]:
    """The 16 block output widths of ``arm`` (stage-wise ones matched to the linear MACs)."""
    linear = rexnet_schedule(arm.width_mult, stage_strides=stage_strides)
    if arm.schedule == "linear":
        return linear.out_channels
    target = schedule_macs(linear, image_size, in_chans=in_chans, num_classes=num_classes)
    if arm.early:
        return _stagewise_after(linear.out_channels[:arm.early], target, arm.width_mult, image_size, in_chans,
                                num_classes, stage_strides)
    chans, _ = stagewise_channels(target, width_mult=arm.width_mult, image_size=image_size, in_chans=in_chans,
                                  num_classes=num_classes, stage_strides=stage_strides)
    return chans


def _stagewise_after(early: list[int], target: int, width_mult: float, image_size: int, in_chans: int,
                     num_classes: int, stage_strides: Sequence[int], min_chs: int = 8) -> list[int]:
    """The linear widths for the ``early`` blocks, then MobileNetV2's stage widths scaled by the one
    multiplier (bisection) that brings the network closest to ``target`` MACs, none narrower than the
    last early block (so the early blocks, not a width floor, are what the two schedules share)."""
    chans, _ = stagewise_channels(target, width_mult=width_mult, image_size=image_size, in_chans=in_chans,
                                  num_classes=num_classes, stage_strides=stage_strides, min_chs=min_chs, early=early)
    return chans


def build_study_model(arm: Arm, *, image_size: int = 32, in_chans: int = 1, num_classes: int = 10,
                      drop_rate: float = 0.0, stage_strides: Sequence[int] = SMALL_INPUT_STRIDES) -> ReXNet:
    """The network of ``arm`` (``ReXNet`` with explicit block widths and activation)."""
    widths = block_widths(arm, image_size=image_size, in_chans=in_chans, num_classes=num_classes,
                          stage_strides=stage_strides)
    return ReXNet(width_mult=arm.width_mult, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate,
                  act=arm.act, block_channels=widths, stage_strides=stage_strides)


def arm_macs(arm: Arm, *, image_size: int = 32, in_chans: int = 1, num_classes: int = 10,
             stage_strides: Sequence[int] = SMALL_INPUT_STRIDES) -> int:
    widths = block_widths(arm, image_size=image_size, in_chans=in_chans, num_classes=num_classes,
                          stage_strides=stage_strides)
    sched = rexnet_schedule(arm.width_mult, block_channels=widths, stage_strides=stage_strides)
    return schedule_macs(sched, image_size, in_chans=in_chans, num_classes=num_classes)


def equal_mac_arms(arms: dict[str, Arm], reference: str, *, tolerance: float = MAC_TOLERANCE,
                   **kwargs) -> dict[str, int]:
    """MACs of every arm; raises :class:`ConfigError` when one differs from ``reference`` by more
    than ``tolerance`` (relative)."""
    macs = {name: arm_macs(arm, **kwargs) for name, arm in arms.items()}
    ref = macs[reference]
    off = {n: m / ref - 1 for n, m in macs.items() if abs(m / ref - 1) > tolerance}
    if off:
        detail = ", ".join(f"{n} {macs[n]:,} ({d:+.1%})" for n, d in off.items())
        raise ConfigError(f"arms are not at equal MACs: {detail} vs {reference} {ref:,} (tolerance "
                          f"{tolerance:.0%}); use one width_mult for all compared arms")
    return macs
