"""PfLayer ("Learning Features with Parameter-Free Layers", Han et al., ICLR 2022).

Bottleneck networks whose spatial op is pluggable (3x3 conv, depthwise conv, max-pool, avg-pool,
identity, hybrid), the paper's R50-max / R50-hybrid, ViT-max and PiT-max with the max-pool token
mixer, checkpoint loaders for the official and torchvision layouts, and the layer-level study.
"""

from reprozoo.pflayer.checkpoint import load_pretrained, save_pretrained, to_native_state_dict
from reprozoo.pflayer.ops import make_spatial_op, register_spatial_op, spatial_ops
from reprozoo.pflayer.resnet import PfBottleneck, PfResNet, r50_hybrid, r50_max, resnet50_pf, study_net
from reprozoo.pflayer.vit import (
    EffLayer,
    PiTMax,
    ViTMax,
    pit_b_max,
    pit_s_max,
    pit_ti_max,
    vit_b_max,
    vit_s_attn,
    vit_s_max,
    vit_ti_max,
)

__all__ = [
    "EffLayer", "PfBottleneck", "PfResNet", "PiTMax", "ViTMax", "load_pretrained", "make_spatial_op",
    "pit_b_max", "pit_s_max", "pit_ti_max", "r50_hybrid", "r50_max", "register_spatial_op", "resnet50_pf",
    "save_pretrained", "spatial_ops", "study_net", "to_native_state_dict", "vit_b_max", "vit_s_attn",
    "vit_s_max", "vit_ti_max",
]
