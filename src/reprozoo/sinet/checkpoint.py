"""SINet segmenter checkpoints in the library's one format, and the reader of the former one.

:func:`save_segmenter` writes :func:`reprozoo.runtime.checkpoint.save_checkpoint`'s file (one
``.safetensors``: the weights, and JSON metadata with the model name ``sinet``, its constructor
arguments and the library version) with what :class:`~reprozoo.sinet.inference.Segmenter` needs
as extras:

* ``mean``, ``std``: the normalisation, three numbers each on the [0, 1] RGB scale (std > 0);
* ``image_size``: the square input side the model runs at (an integer >= 32);
* ``fit``: ``"letterbox"`` (keep the aspect ratio, pad with gray) or ``"stretch"`` (resize to a square);
* ``threshold``: the foreground probability above which :meth:`Segmenter.mask` says person;
* ``synthetic``: True when the model saw only generated portraits (``reprozoo segment`` warns), None
  if unknown.

:func:`load_segmenter` reads it back (and so do ``Segmenter.from_checkpoint`` and
``create_model("sinet", checkpoint_path=...)``, the latter without the extras). As a fallback it
also reads the former SINet format (``reprozoo.sinet/1``: a ``torch.save`` dict with ``model``,
``model_kwargs``, ``mean``, ``std``, ``image_size``), which the portrait experiment still writes as
``sinet.pt``. Official checkpoints are read by :mod:`reprozoo.sinet.official`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from reprozoo.errors import CheckpointError, ReproZooError
from reprozoo.runtime import checkpoint as library
from reprozoo.runtime.checks import one_line
from reprozoo.sinet.network import SINet

FORMER = "reprozoo.sinet/1"
FITS = ("letterbox", "stretch")
DEFAULTS: dict[str, Any] = {"fit": "letterbox", "threshold": 0.5, "synthetic": None}
NEEDED = ("mean", "std", "image_size")


def save_segmenter(model: SINet, path: str | Path, *, mean, std, image_size: int, fit: str = "letterbox",
                   threshold: float = 0.5, synthetic: bool | None = None) -> Path:
    """Write ``model`` and its preprocessing as a library checkpoint (``*.safetensors``, atomically)."""
    if not isinstance(model, SINet):
        raise CheckpointError(f"a segmenter checkpoint holds a SINet, got {type(model).__name__}")
    info = {"mean": [float(v) for v in mean], "std": [float(v) for v in std], "image_size": image_size,
            "fit": fit, "threshold": float(threshold), "synthetic": None if synthetic is None else bool(synthetic)}
    check_info(Path(path), info)
    return library.save_checkpoint(model, path, **info)


def load_segmenter(path: str | Path) -> tuple[SINet, dict[str, Any]]:
    """``(model in eval mode, info)`` of a segmenter checkpoint: the library format, or the former
    one. ``info`` holds ``mean``, ``std``, ``image_size``, ``fit``, ``threshold``, ``synthetic``
    and ``model_kwargs``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; train one with `reprozoo run sinet-portrait` "
                              "(it writes sinet.safetensors) or pass the right --checkpoint")
    meta = library.checkpoint_meta(path)
    if meta is None:
        if path.suffix == ".safetensors":
            raise CheckpointError(f"{path} holds weights without a segmenter's settings; load them with "
                                  "create_model('sinet', checkpoint_path=...) and pass mean/std to Segmenter")
        return _load_former(path)
    if meta["model"] != "sinet":
        raise CheckpointError(f"{path} holds model '{meta['model']}', not a SINet segmenter ('sinet')")
    missing = [k for k in NEEDED if k not in meta["extra"]]
    if missing:
        raise CheckpointError(f"{path}: not a segmenter checkpoint (it lacks {', '.join(missing)}); "
                              "write it with reprozoo.sinet.checkpoint.save_segmenter")
    info = {**DEFAULTS, **meta["extra"], "model_kwargs": dict(meta["kwargs"])}
    check_info(path, info)
    try:
        model, _ = library.load_checkpoint(path)
    except CheckpointError:
        raise
    except ReproZooError as err:  # stored arguments the model refuses
        raise CheckpointError(f"{path}: cannot rebuild the model from its stored arguments ({err})") from None
    return model, info


def check_info(path: Path, info: dict[str, Any]) -> None:
    """mean/std: three finite numbers, std > 0; image_size: an integer >= 32; fit: one of FITS;
    threshold in (0, 1)."""
    for key in ("mean", "std"):
        values = info[key]
        ok = isinstance(values, (list, tuple)) and len(values) == 3
        ok = ok and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
        if not ok:
            raise CheckpointError(f"{path}: '{key}' must be three finite numbers (R, G, B), got {values!r}")
    if min(info["std"]) <= 0:
        raise CheckpointError(f"{path}: 'std' must be > 0 for every channel, got {info['std']!r} "
                              "(dividing by it would give a garbage mask)")
    size = info["image_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 32:
        raise CheckpointError(f"{path}: 'image_size' must be an integer >= 32, got {size!r}")
    if info.get("fit", "letterbox") not in FITS:
        raise CheckpointError(f"{path}: 'fit' must be one of {', '.join(FITS)}, got {info['fit']!r}")
    threshold = info.get("threshold", 0.5)
    if not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0:
        raise CheckpointError(f"{path}: 'threshold' must be a number in (0, 1), got {threshold!r}")


# ------------------------------------------------------------------ the former format (fallback)
def save_checkpoint(path: str | Path, model: SINet, *, mean, std, image_size: int,
                    model_kwargs: dict[str, Any] | None = None, synthetic: bool | None = None) -> Path:
    """The portrait experiment's writer (path first): a ``*.safetensors`` path gets the library
    format (:func:`save_segmenter`), any other the former ``reprozoo.sinet/1`` dict (``model_kwargs``
    are used by the former format only; the library format stores the model's own arguments)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return save_segmenter(model, path, mean=mean, std=std, image_size=image_size, synthetic=synthetic)
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = dict(model_kwargs or {})
    kwargs.setdefault("num_classes", model.num_classes)
    kwargs.setdefault("decoder", model.decoder)
    state = {"format": FORMER, "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "model_kwargs": kwargs, "mean": [float(v) for v in mean], "std": [float(v) for v in std],
             "image_size": int(image_size)}
    if synthetic is not None:
        state["synthetic"] = bool(synthetic)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def _load_former(path: Path) -> tuple[SINet, dict[str, Any]]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable checkpoint ({one_line(err)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMER:
        raise CheckpointError(f"{path} is not a reprozoo SINet checkpoint (write one with save_segmenter)")
    missing = [k for k in ("model", "model_kwargs", *NEEDED) if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: the checkpoint lacks {', '.join(missing)}; re-save it with save_segmenter")
    info = {**DEFAULTS, **ckpt}
    check_info(path, info)
    try:
        model = SINet(**ckpt["model_kwargs"])
    except (TypeError, ReproZooError) as err:
        raise CheckpointError(f"{path}: cannot rebuild the model from model_kwargs "
                              f"{ckpt['model_kwargs']!r} ({err})") from None
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit the SINet it describes ({first})") from None
    del info["model"]
    return model.eval(), info
