"""Image backbones for the ECLIPS base learners.

* :class:`SmallCNN`: a tiny conv backbone for CPU demos (conv3x3 w-2w-4w, BN, ReLU, max-pool, GAP).
* :class:`Backbone`: wraps any image model (reprozoo, timm, torchvision, or a CLIP visual
  encoder via :func:`clip_visual_encoder`) so it returns one feature vector per image.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reprozoo.errors import CheckpointError, ConfigError
from reprozoo.runtime.extras import require


class SmallCNN(nn.Module):
    """conv3x3(w)-BN-ReLU-pool, conv3x3(2w)-BN-ReLU-pool, conv3x3(4w)-BN-ReLU, global average pool."""

    def __init__(self, width: int = 32, in_chans: int = 3):
        super().__init__()
        if width < 1:
            raise ConfigError(f"width must be >= 1, got {width}")
        chans = (width, 2 * width, 4 * width)
        layers: list[nn.Module] = []
        c_in = in_chans
        for i, c in enumerate(chans):
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            if i < len(chans) - 1:
                layers.append(nn.MaxPool2d(2))
            c_in = c
        self.features = nn.Sequential(*layers)
        self.num_features = chans[-1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x).mean((2, 3))


def _strip_classifier(model: nn.Module) -> nn.Module:
    """Drop a timm / torchvision classification head so the model returns pooled features."""
    if hasattr(model, "reset_classifier"):  # timm
        model.reset_classifier(0)
        return model
    for name in ("fc", "classifier", "heads", "head"):
        if isinstance(getattr(model, name, None), (nn.Linear, nn.Sequential)):
            setattr(model, name, nn.Identity())
            return model
    return model


class Backbone(nn.Module):
    """Any image model as a feature extractor: ``forward(x) -> (B, num_features)``.

    ``strip_head`` removes a timm/torchvision classifier first; ``num_features`` is read from the
    model (``num_features`` attribute) or measured with one forward pass on ``probe_size`` inputs.
    """

    def __init__(self, model: nn.Module, num_features: int | None = None, strip_head: bool = True,
                 probe_size: int = 32, in_chans: int = 3):
        super().__init__()
        self.model = _strip_classifier(model) if strip_head else model
        if num_features is None:
            num_features = getattr(self.model, "num_features", None)
        if num_features is None:
            was = self.model.training
            self.model.eval()
            with torch.no_grad():
                out = self.model(torch.zeros(1, in_chans, probe_size, probe_size))
            self.model.train(was)
            num_features = int(out.flatten(1).shape[1])
        self.num_features = int(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out.flatten(1) if out.ndim > 2 else out


def _clip_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The image-tower weights in ``path``: an open_clip CLIP checkpoint (``visual.*`` keys, possibly
    under ``state_dict`` and with a ``module.`` prefix) or a state dict of the tower alone."""
    if not path.is_file():
        raise CheckpointError(f"CLIP checkpoint {path} does not exist (nothing is downloaded; pass a local "
                              "open_clip checkpoint or a saved image-tower state dict)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is a user error here
        raise CheckpointError(f"{path} is not a readable torch state dict ({type(err).__name__}); TorchScript "
                              "(JIT) checkpoints must be converted to a plain state dict first") from err
    if isinstance(blob, dict) and isinstance(blob.get("state_dict"), dict):
        blob = blob["state_dict"]
    if not isinstance(blob, dict) or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    sd = {k.removeprefix("module."): v for k, v in blob.items()}
    if any(k.startswith("visual.") for k in sd):
        sd = {k[len("visual."):]: v for k, v in sd.items() if k.startswith("visual.")}
    sd.pop("proj", None)  # CLIP's projection is not used (the pooled token comes before it)
    return sd


def clip_visual_encoder(name: str = "ViT-B-16", checkpoint_path: str | Path | None = None,
                        image_size: int | None = None, vision_cfg: dict[str, Any] | None = None) -> Backbone:
    """A CLIP image encoder built with ``open_clip`` that returns the pooled token *before* CLIP's
    projection (width 768 for ViT-B/16), as FLIP-V / ECLIPS use it.

    ``name`` is an open_clip model config (``open_clip.list_models()``); ``image_size`` and
    ``vision_cfg`` (fields of ``open_clip.CLIPVisionCfg``, e.g. ``{"width": 32, "layers": 2,
    "patch_size": 8}``) override its image tower, so tiny towers can be built for tests. Only the image
    tower is built (no text tower). Weights are random unless ``checkpoint_path`` names a local file:
    an open_clip CLIP checkpoint (its ``visual.*`` weights are used) or a state dict of the tower
    (``encoder.model.state_dict()``); nothing is downloaded.
    """
    open_clip = require("open_clip", what="the CLIP backbone")
    from open_clip.model import CLIPVisionCfg
    cfg = open_clip.get_model_config(name)
    if cfg is None or "vision_cfg" not in cfg:
        raise ConfigError(f"unknown open_clip model '{name}'; choose from open_clip.list_models(), e.g. ViT-B-16, ViT-L-14")
    vcfg = dict(cfg["vision_cfg"])
    fields = {f.name for f in dataclasses.fields(CLIPVisionCfg)}
    bad = sorted(set(vision_cfg or {}) - fields)
    if bad:
        raise ConfigError(f"unknown vision_cfg key '{bad[0]}'; open_clip.CLIPVisionCfg has {', '.join(sorted(fields))}")
    vcfg.update(vision_cfg or {})
    if image_size is not None:
        if image_size < 1:
            raise ConfigError(f"image_size must be >= 1, got {image_size}")
        vcfg["image_size"] = int(image_size)
    if vcfg.get("timm_model_name"):
        vcfg["timm_model_pretrained"] = False  # never download
    try:
        visual = _build_vision_tower(cfg["embed_dim"], vcfg, quick_gelu=bool(cfg.get("quick_gelu", False)))
    except (TypeError, ValueError, AssertionError, RuntimeError) as err:
        raise ConfigError(f"open_clip could not build the image tower of '{name}' with {vcfg}: {err}") from err
    width = None
    if isinstance(getattr(visual, "proj", None), torch.Tensor):
        width = int(visual.proj.shape[0])
        visual.proj = None  # keep the pooled token before the projection
    if checkpoint_path is not None:
        path = Path(checkpoint_path)
        sd = _clip_state_dict(path)
        own = visual.state_dict()
        missing = [k for k in own if k not in sd]
        unexpected = [k for k in sd if k not in own]
        shapes = [k for k in own if k in sd and sd[k].shape != own[k].shape]
        if missing or unexpected or shapes:
            detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                      else f"shape of '{shapes[0]}' {tuple(sd[shapes[0]].shape)} vs {tuple(own[shapes[0]].shape)}")
            raise CheckpointError(f"{path} does not match the image tower of '{name}' ({detail}); pass the same "
                                  "name / image_size / vision_cfg the weights were made with")
        visual.load_state_dict(sd, strict=True)
    size = vcfg.get("image_size", 224)
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    return Backbone(visual, num_features=width, strip_head=False, probe_size=size)


def _build_vision_tower(embed_dim: int, vision_cfg: dict[str, Any], quick_gelu: bool) -> nn.Module:
    """open_clip's own image-tower builder (falls back to building a whole CLIP model and keeping its tower)."""
    open_clip = require("open_clip", what="the CLIP backbone")
    from open_clip import model as oc_model

    build = getattr(oc_model, "_build_vision_tower", None)
    if build is not None:
        return build(embed_dim, vision_cfg, quick_gelu=quick_gelu)
    text = {"context_length": 2, "vocab_size": 8, "width": 8, "heads": 1, "layers": 1}
    return open_clip.CLIP(embed_dim, vision_cfg, text, quick_gelu=quick_gelu).visual

