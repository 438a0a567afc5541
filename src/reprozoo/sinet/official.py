"""Official SINet checkpoints (github.com/clovaai/ext_portrait_segmentation) and the bundled weights.

The official code names its modules differently (``encoder.level2.0.d1.conv.0`` is our
``encoder.level2.0.branch_a.dw``); :func:`official_key_map` gives the one-to-one map for any of our
SINet / SINetEncoder models, and :func:`load_official` loads an official ``state_dict`` strictly.

Official preprocessing (its validation transform): the image is read with OpenCV (**BGR**, 0-255),
then ``x = (bgr - mean) / std / 255`` with the BGR dataset statistics below; the final ``/ 255``
comes from ``ToTensor`` running after ``Normalize``. The released weights need it (some BatchNorm
channels have a running variance below 1e-30). With ``rgb_input=True`` (the default) the loader
reverses the input channels of the first convolution, so the same network takes RGB, and
``OFFICIAL_MEAN`` / ``OFFICIAL_STD`` express the rest for RGB in [0, 1]::

    (rgb01 - OFFICIAL_MEAN) / OFFICIAL_STD == ((255 * rgb01)[::-1] - mean_bgr) / std_bgr / 255 (channels reversed)

``sinet_eg1800.safetensors`` (next to this file, in ``weights/``) is the released ``SINet.pth``
(trained on EG1800; MIT licence, see ``weights/NOTICE``) converted to our key layout, float32, with
the channel reversal already applied: it takes RGB normalised with ``OFFICIAL_MEAN`` / ``OFFICIAL_STD``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reprozoo.errors import CheckpointError, ConfigError
from reprozoo.runtime.checkpoint import load_strict, read_state_dict, unwrap_state_dict
from reprozoo.sinet.network import SINet, SINetEncoder
from reprozoo.sinet.preprocess import Normalized

OFFICIAL_MEAN_BGR = (107.304565, 115.69884, 132.35703)  # 0-255 scale, B, G, R
OFFICIAL_STD_BGR = (63.97182, 65.1337, 68.29726)
OFFICIAL_MEAN = tuple(m / 255 for m in reversed(OFFICIAL_MEAN_BGR))  # R, G, B on the [0, 1] scale
OFFICIAL_STD = tuple(reversed(OFFICIAL_STD_BGR))  # the official extra /255 folded in
IMAGE_SIZE = 224
WEIGHTS = Path(__file__).parent / "weights" / "sinet_eg1800.safetensors"
FIRST_CONV = "level1.0.weight"  # our key of the first convolution (after the "encoder." prefix)

PRETRAINED_CFG: dict[str, Any] = {
    "source": "SINet.pth of github.com/clovaai/ext_portrait_segmentation (commit 9bc1bad), trained on EG1800",
    "license": "MIT (Copyright (c) 2019-present NAVER Corp.); see reprozoo/sinet/weights/NOTICE",
    "input": "RGB in [0, 1], normalised as (x - mean) / std (the official BGR order and extra /255 folded in)",
    "mean": OFFICIAL_MEAN, "std": OFFICIAL_STD, "image_size": IMAGE_SIZE, "fit": "stretch",
}

# (our key pattern, official replacement), first match wins; "(encoder\.)?" lets the same rules
# serve SINetEncoder, whose official twin (Enc_SINet) has the same keys without the prefix.
_E = r"^(encoder\.)?"
_BRANCH = {"dw": "conv.0", "br.0": "conv.1", "br.1": "act_conv1x1.0", "pw": "act_conv1x1.1", "bn": "bn"}
_RULES: list[tuple[str, Any]] = [
    (_E + r"level1\.0\.", r"\1level1.conv."),
    (_E + r"level1\.1\.", r"\1level1.bn."),
    (_E + r"level1\.2\.", r"\1level1.act."),
    (_E + r"(level[23]_0)\.dw\.", r"\1\2.conv.0."),
    (_E + r"(level[23]_0)\.se\.fc\.", r"\1\2.conv.1.dense."),
    (_E + r"(level[23]_0)\.pw\.0\.", r"\1\2.conv.2."),
    (_E + r"(level[23]_0)\.pw\.1\.", r"\1\2.bn."),
    (_E + r"(level[23]_0)\.pw\.2\.", r"\1\2.act."),
    (_E + r"(level[23]\.\d+)\.reduce\.", r"\1\2.c1.conv."),
    (_E + r"(level[23]\.\d+)\.branch_([ab])\.(dw|br\.0|br\.1|pw|bn)\.",
     lambda m: f"{m[1] or ''}{m[2]}.d{'1' if m[3] == 'a' else '2'}.{_BRANCH[m[4]]}."),
    (_E + r"(level[23]\.\d+)\.br\.0\.", r"\1\2.BR.bn."),
    (_E + r"(level[23]\.\d+)\.br\.1\.", r"\1\2.BR.act."),
    (_E + r"br([23])\.0\.", r"\1BR\2.bn."),
    (_E + r"br([23])\.1\.", r"\1BR\2.act."),
    (_E + r"classifier\.", r"\1classifier.conv."),
    (r"^skip\.0\.", "level2_C.conv."),
    (r"^skip\.1\.", "level2_C.bn."),
    (r"^skip\.2\.", "level2_C.act."),
    (r"^head\.", "classifier.1."),
    (r"^(bn_[23])\.", r"\1."),
]


def official_key(key: str) -> str:
    """The official name of one of our state-dict keys (``encoder.level2.0.branch_a.dw.weight`` ->
    ``encoder.level2.0.d1.conv.0.weight``)."""
    for pattern, repl in _RULES:
        new, n = re.subn(pattern, repl, key, count=1)
        if n:
            return new
    raise CheckpointError(f"no official SINet name for the key '{key}'")


def official_key_map(model: nn.Module) -> dict[str, str]:
    """{our key: official key} for every entry of ``model.state_dict()`` (one to one)."""
    mapping = {k: official_key(k) for k in model.state_dict()}
    if len(set(mapping.values())) != len(mapping):  # pragma: no cover - guards the rule table
        raise CheckpointError("the official key map is not one to one")
    return mapping


def _first_conv(model: nn.Module) -> str:
    return FIRST_CONV if isinstance(model, SINetEncoder) else "encoder." + FIRST_CONV


def from_official_state_dict(model: nn.Module, state: Mapping[str, Any], *,
                             rgb_input: bool = True) -> dict[str, torch.Tensor]:
    """An official-layout state dict in ``model``'s key names. Official keys the model does not
    have keep their names (so :func:`load_strict` reports them); ``rgb_input`` reverses the first
    convolution's input channels (BGR -> RGB)."""
    mapping = official_key_map(model)
    state = unwrap_state_dict(state)
    used = set(mapping.values())
    ours = {k: state[off] for k, off in mapping.items() if off in state}
    ours.update({k: v for k, v in state.items() if k not in used})
    first = _first_conv(model)
    if rgb_input and first in ours:
        ours[first] = ours[first].flip(1)
    return ours


def to_official_state_dict(model: nn.Module, *, rgb_input: bool = True) -> dict[str, torch.Tensor]:
    """``model``'s weights in the official layout (the inverse of :func:`from_official_state_dict`)."""
    first = _first_conv(model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if rgb_input:
        state[first] = state[first].flip(1)
    return {official_key(k): v for k, v in state.items()}


def load_official(model: nn.Module, checkpoint: str | Path | Mapping[str, Any], *,
                  rgb_input: bool = True) -> nn.Module:
    """Load an official SINet checkpoint (a ``.pth`` file, ``.safetensors`` or a state dict) into
    ``model`` strictly: a missing, unexpected or mis-shaped key raises ``CheckpointError`` and nothing
    is loaded. ``rgb_input=True``: the model then takes RGB normalised with ``OFFICIAL_MEAN`` /
    ``OFFICIAL_STD``; ``False``: exactly the official network (BGR input, official preprocessing)."""
    state = read_state_dict(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    return load_strict(model, from_official_state_dict(model, state, rgb_input=rgb_input),
                       what=f"{type(model).__name__} (official key layout)",
                       hint="is this an official SINet checkpoint with the same classes and chnn?")


def official_config(state: Mapping[str, Any]) -> dict[str, Any]:
    """``num_classes`` and ``chnn`` of an official checkpoint, and whether it is the encoder alone."""
    state = unwrap_state_dict(state)
    encoder_only = "level1.conv.weight" in state
    pre = "" if encoder_only else "encoder."
    try:
        classes = state[pre + "classifier.conv.weight"].shape[0]
        width = state[pre + "level2.0.c1.conv.weight"].shape[0] * 2
    except KeyError as err:
        raise CheckpointError(f"not an official SINet checkpoint: it has no {err.args[0]}") from None
    if (width - 48) % 4:
        raise CheckpointError(f"not an official SINet width: level 2 has {width} channels (48 + 4(chnn - 1))")
    return {"num_classes": int(classes), "chnn": (width - 48) // 4 + 1, "encoder_only": encoder_only}


def load_official_sinet(checkpoint: str | Path | Mapping[str, Any], *, rgb_input: bool = True,
                        **model_kwargs: Any) -> SINet | SINetEncoder:
    """Build the SINet (or SINetEncoder) an official checkpoint describes, load it strictly, eval mode."""
    state = read_state_dict(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    cfg = official_config(state)
    cls = SINetEncoder if cfg.pop("encoder_only") else SINet
    model = cls(**{**cfg, **model_kwargs})
    return load_official(model, state, rgb_input=rgb_input).eval()


def load_pretrained(model: nn.Module | None = None) -> SINet:
    """The bundled EG1800 weights (``WEIGHTS``) in a 2-class, chnn=1 SINet (eval mode), with
    ``model.pretrained_cfg`` recording the preprocessing. Pass ``model`` to fill your own instance
    (e.g. another ``decoder``: the variants share their weights)."""
    model = SINet() if model is None else model
    if not isinstance(model, SINet) or model.num_classes != 2:
        raise ConfigError("the bundled SINet weights are for the 2-class SINet (chnn=1)")
    if not WEIGHTS.is_file():
        raise CheckpointError(f"the bundled weights {WEIGHTS.name} are missing from this install; reinstall reprozoo")
    load_strict(model, read_state_dict(WEIGHTS), what="SINet (bundled EG1800 weights)",
                hint="the bundled weights are for SINet(num_classes=2, chnn=1)")
    model.pretrained_cfg = dict(PRETRAINED_CFG)
    return model.eval()


def pretrained_net(model: SINet | None = None) -> nn.Module:
    """The bundled SINet with its preprocessing built in: input RGB in [0, 1] (B, 3, H, W), output
    logits (channel 1 = person). Any size runs (the official code needs multiples of 32)."""
    return Normalized(load_pretrained(model), OFFICIAL_MEAN, OFFICIAL_STD).eval()


def convert_official_checkpoint(src: str | Path, dst: str | Path, *, rgb_input: bool = True) -> Path:
    """Write an official SINet checkpoint as ``.safetensors`` in our key layout (float tensors as
    float32), with the preprocessing it expects in the file's metadata. How the bundled weights
    were made: ``convert_official_checkpoint("SINet.pth", WEIGHTS)``."""
    import json

    from safetensors.torch import save_file

    dst = Path(dst)
    if dst.suffix != ".safetensors":
        raise CheckpointError(f"name the output *.safetensors, got {dst.name}")
    model = load_official_sinet(src, rgb_input=rgb_input)
    state = {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    if rgb_input:
        meta = {k: json.dumps(v) for k, v in PRETRAINED_CFG.items()}
    else:
        meta = {"input": json.dumps("BGR 0-255, official preprocessing: (bgr - mean_bgr) / std_bgr / 255"),
                "mean_bgr": json.dumps(OFFICIAL_MEAN_BGR), "std_bgr": json.dumps(OFFICIAL_STD_BGR)}
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.replace(dst)
    return dst


def is_official_layout(state: Mapping[str, Any]) -> bool:
    return any(k.endswith("level1.conv.weight") for k in unwrap_state_dict(state))


def load_weights(model: nn.Module, checkpoint: str | Path | Mapping[str, Any]) -> nn.Module:
    """Load a checkpoint in our key layout (plain ``.safetensors``, a state dict, a former-format
    ``sinet.pt``) or in the official one (recognised by its key names; loaded with ``rgb_input=True``), strictly."""
    state = read_state_dict(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    if is_official_layout(state):
        return load_official(model, state)
    return load_strict(model, unwrap_state_dict(state), what=type(model).__name__)


def pretrained_checkpoint() -> tuple[SINet, dict[str, Any]]:
    """``(model, info)`` of the bundled weights, shaped like :func:`reprozoo.sinet.checkpoint.load_segmenter`'s."""
    model = load_pretrained()
    return model, {"model_kwargs": model.reprozoo_spec["kwargs"], "mean": list(OFFICIAL_MEAN),
                   "std": list(OFFICIAL_STD), "image_size": IMAGE_SIZE, "synthetic": False, "fit": "stretch",
                   "threshold": 0.5}
