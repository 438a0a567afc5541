"""ReXNet channel schedules: the linear-in-block-index widths of the released v1 models and the
``make_divisible(8)`` schedule of ReXNet-lite.

Rounding is part of the checkpoint format: widths use Python 3 ``round`` (half-to-even), the
penultimate width uses ``int`` truncation, and only the lite model snaps widths to multiples of 8.
The running width is accumulated block by block (``width += final / n``) exactly as the released
code does, so floating-point ties resolve the same way as in the released checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from reprozoo.errors import ConfigError
from reprozoo.runtime.checks import finite, integer

STAGE_BLOCKS = (1, 2, 2, 3, 3, 5)
STAGE_STRIDES = (1, 2, 2, 2, 1, 2)
SE_FROM_STAGE = 2  # 0-based: SE in stages 3..6
MAX_WIDTH = 8.0


@dataclass(frozen=True)
class BlockSpec:
    """One inverted bottleneck: channels in -> (in*t) -> out."""

    index: int
    stage: int
    in_chs: int
    out_chs: int
    expansion: int
    stride: int
    se: bool
    kernel_size: int = 3

    @property
    def dw_chs(self) -> int:
        return self.in_chs * self.expansion

    @property
    def shortcut(self) -> bool:
        return self.stride == 1 and self.in_chs <= self.out_chs


@dataclass(frozen=True)
class Schedule:
    stem_chs: int
    blocks: tuple[BlockSpec, ...]
    pen_chs: int

    @property
    def out_channels(self) -> list[int]:
        return [b.out_chs for b in self.blocks]


def check_multipliers(width_mult: float, depth_mult: float) -> None:
    if not (isinstance(width_mult, (int, float)) and 0.0 < width_mult <= MAX_WIDTH):
        raise ConfigError(f"width_mult must be in (0, {MAX_WIDTH:g}], got {width_mult!r}; "
                          "the released widths are 0.9, 1.0, 1.3, 1.5, 2.0, 2.2 and 3.0")
    if not (isinstance(depth_mult, (int, float)) and 0.0 < depth_mult <= 4.0):
        raise ConfigError(f"depth_mult must be in (0, 4], got {depth_mult!r}")


def check_strides(stage_strides: Sequence[int]) -> tuple[int, ...]:
    strides = tuple(stage_strides)
    if len(strides) != len(STAGE_BLOCKS) or any(s not in (1, 2) for s in strides):
        raise ConfigError(f"stage_strides needs {len(STAGE_BLOCKS)} values of 1 or 2 (first-block stride per "
                          f"stage; the released models use {list(STAGE_STRIDES)}), got {list(strides)}")
    return strides


def _stage_layout(depth_mult: float, kernel_sizes: tuple[int, ...],
                  stage_strides: Sequence[int] = STAGE_STRIDES):
    counts = [math.ceil(n * depth_mult) for n in STAGE_BLOCKS]
    rows = []
    for stage, (count, stride) in enumerate(zip(counts, check_strides(stage_strides))):
        for j in range(count):
            rows.append((stage, stride if j == 0 else 1, kernel_sizes[stage]))
    return rows


def rexnet_schedule(width_mult: float = 1.0, depth_mult: float = 1.0, initial_chs: int = 16,
                    final_chs: int = 180, stem_base: int = 32, pen_base: int = 1280,
                    block_channels: Sequence[int] | None = None,
                    stage_strides: Sequence[int] = STAGE_STRIDES) -> Schedule:
    """Widths of ReXNet v1 (the released models). ``out_i = round(w * (16 + i * 180 / n))``;
    widths below 1 keep the 32-channel stem and the 16-channel first block.

    ``block_channels`` replaces the linear schedule by explicit block output widths (for
    schedule studies, e.g. a MobileNetV2-style stage-wise one); stem and pen still follow ``w``.
    ``stage_strides`` sets the first-block stride of each of the six stages (small inputs, e.g.
    32x32, drop some of the five stride-2 steps).
    """
    check_multipliers(width_mult, depth_mult)
    rows = _stage_layout(depth_mult, (3,) * 6, stage_strides)
    n = len(rows)
    if block_channels is not None:
        block_channels = list(block_channels)
        if len(block_channels) != n or any(not isinstance(c, int) or c < 1 for c in block_channels):
            raise ConfigError(f"block_channels needs {n} positive integers (one per block at depth_mult "
                              f"{depth_mult}), got {block_channels}")
    small = width_mult < 1.0
    stem = int(round((stem_base / width_mult if small else stem_base) * width_mult))
    running = initial_chs / width_mult if small else float(initial_chs)
    step = final_chs / (n * 1.0)
    blocks, prev = [], stem
    for i, (stage, stride, k) in enumerate(rows):
        out = int(round(running * width_mult)) if block_channels is None else block_channels[i]
        blocks.append(BlockSpec(i, stage, prev, out, 1 if i == 0 else 6, stride, stage >= SE_FROM_STAGE, k))
        prev = out
        running += step
    return Schedule(stem, tuple(blocks), int(pen_base * width_mult))


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Nearest multiple of ``divisor`` (at least ``min_value``), one step up if that loses >10%."""
    value, divisor = finite("value", value, lo=0.0), integer("divisor", divisor, lo=1)
    min_value = divisor if min_value is None else integer("min_value", min_value, lo=0)
    out = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if out < 0.9 * value:
        out += divisor
    return out


def lite_schedule(width_mult: float = 1.0, depth_mult: float = 1.0, initial_chs: int = 16,
                  final_chs: int = 164, divisor: int = 8, kernel_conf: str = "333333",
                  fix_head_stem: bool = False) -> Schedule:
    """Widths of ReXNet-lite: increment ``final / (n - 1)``, every width snapped by
    :func:`make_divisible`; the 1280-channel penultimate layer grows only for widths > 1."""
    check_multipliers(width_mult, depth_mult)
    if len(kernel_conf) != 6 or any(c not in "357" for c in kernel_conf):
        raise ConfigError(f"kernel_conf must be six digits from 3/5/7 (one per stage), got {kernel_conf!r}")
    rows = _stage_layout(depth_mult, tuple(int(c) for c in kernel_conf))
    n = len(rows)
    small = width_mult < 1.0
    stem_f = 32 / width_mult if (small or fix_head_stem) else 32
    stem = make_divisible(int(round(stem_f * width_mult)), divisor)
    running = initial_chs / width_mult if small else float(initial_chs)
    step = final_chs / (n - 1.0) if n > 1 else 0.0
    blocks, prev = [], stem
    for i, (stage, stride, k) in enumerate(rows):
        if i > 0:
            running += step
        out = make_divisible(int(round(running * width_mult)), divisor)
        blocks.append(BlockSpec(i, stage, prev, out, 1 if i == 0 else 6, stride, False, k))
        prev = out
    pen = int(1280 * width_mult) if (width_mult > 1 and not fix_head_stem) else 1280
    return Schedule(stem, tuple(blocks), pen)


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def schedule_macs(schedule: Schedule, image_size: int = 224, in_chans: int = 3, num_classes: int = 1000,
                  lite: bool = False, se_divisor: int = 12) -> int:
    """Multiply-accumulates of one image, counted analytically from the schedule: every conv and the
    classifier, SE's two 1x1 convs included; BN, activations, pooling and adds are not counted
    (the papers' convention, and what ``count_macs`` reports)."""
    image_size, in_chans = integer("image_size", image_size, lo=1), integer("in_chans", in_chans, lo=1)
    num_classes, se_divisor = integer("num_classes", num_classes, lo=1), integer("se_divisor", se_divisor, lo=1)
    if not getattr(schedule, "blocks", None):
        raise ConfigError("schedule has no blocks; build it with rexnet_schedule() or lite_schedule()")
    res = _conv_out(image_size, 3, 2)
    macs = 9 * in_chans * schedule.stem_chs * res * res
    for b in schedule.blocks:
        dw = b.dw_chs
        if b.expansion != 1:
            macs += b.in_chs * dw * res * res
        res = _conv_out(res, b.kernel_size, b.stride)
        macs += b.kernel_size**2 * dw * res * res + b.out_chs * dw * res * res
        if b.se:
            macs += 2 * dw * (dw // se_divisor)
    macs += schedule.blocks[-1].out_chs * schedule.pen_chs * res * res
    if lite:
        return macs + schedule.pen_chs * 1024 + 1024 * num_classes
    return macs + schedule.pen_chs * num_classes


# MobileNetV2's stage widths (16, 24, 32, 64, 96, 160, 320) laid onto ReXNet's 16-block skeleton:
# constant within a stage, the last block 320 like MobileNetV2's final bottleneck
STAGEWISE_BASE = (16, 24, 24, 32, 32, 64, 64, 64, 96, 96, 96, 160, 160, 160, 160, 320)


def stagewise_channels(target_macs: int, *, width_mult: float = 1.0, image_size: int = 224, in_chans: int = 3,
                       num_classes: int = 1000, stage_strides: Sequence[int] = STAGE_STRIDES,
                       min_chs: int = 8, base: Sequence[int] = STAGEWISE_BASE,
                       early: Sequence[int] = ()) -> tuple[list[int], int]:
    """MobileNetV2-style stage-wise block widths ``round(s * base)`` with the one multiplier ``s``
    (bisection) that brings the network's MACs closest to ``target_macs``, on the same skeleton
    (stem and pen follow ``width_mult``). With ``early``, the first blocks take those widths as given
    and no later block is narrower than the last of them. Returns ``(widths, macs)``."""
    target_macs = finite("target_macs", target_macs, lo=0.0, lo_open=True)
    min_chs = integer("min_chs", min_chs, lo=1)
    early = [int(c) for c in early]
    rest = list(base)[len(early):]
    floor = max([min_chs, *early])

    def build(scale: float) -> tuple[list[int], int]:
        chans = early + [max(floor, int(round(c * scale))) for c in rest]
        sched = rexnet_schedule(width_mult, block_channels=chans, stage_strides=stage_strides)
        return chans, schedule_macs(sched, image_size, in_chans=in_chans, num_classes=num_classes)

    lo, hi = 0.01, 8.0
    best = build(1.0)
    for _ in range(40):
        mid = (lo + hi) / 2
        cand = build(mid)
        if abs(cand[1] - target_macs) < abs(best[1] - target_macs):
            best = cand
        if cand[1] < target_macs:
            lo = mid
        else:
            hi = mid
    return best
