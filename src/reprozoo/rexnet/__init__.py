"""ReXNet ("Rethinking Channel Dimensions for Efficient Model Design"): models at every released
width, ReXNet-lite, checkpoint loaders for the official and timm layouts, and the rank study."""

from reprozoo.rexnet.checkpoint import load_pretrained, to_native_state_dict
from reprozoo.rexnet.models import (
    LITE_WIDTHS,
    WIDTHS,
    ReXNet,
    rexnet,
    rexnet_090,
    rexnet_100,
    rexnet_130,
    rexnet_150,
    rexnet_200,
    rexnet_220,
    rexnet_300,
    rexnet_lite_100,
    rexnet_lite_130,
    rexnet_lite_150,
    rexnet_lite_200,
)
from reprozoo.rexnet.schedule import lite_schedule, make_divisible, rexnet_schedule, schedule_macs

__all__ = [
    "LITE_WIDTHS", "WIDTHS", "ReXNet", "load_pretrained", "lite_schedule", "make_divisible", "rexnet",
    "rexnet_090", "rexnet_100", "rexnet_130", "rexnet_150", "rexnet_200", "rexnet_220", "rexnet_300",
    "rexnet_lite_100", "rexnet_lite_130", "rexnet_lite_150", "rexnet_lite_200", "rexnet_schedule",
    "schedule_macs", "to_native_state_dict",
]
