"""Load checkpoints of the official PPS code (github.com/sunoh-kim/pps) into :class:`~reprozoo.gmp.models.GMP`.

The official runner saves ``{"num_updates", "config", "model_parameters"}`` with ``torch.save``;
``config`` is the run's ``config.json`` (sections ``model`` and ``loss``)::

    from reprozoo.gmp.official import load_official_checkpoint
    model = load_official_checkpoint("checkpoints/charades/model-30.pt", embeddings=glove_table)

Key map (official -> reprozoo), checked strictly both ways with shapes:

* ``trans_mask_generator.gauss.*`` -> ``generator.*``, ``trans_reconstructor.*`` -> ``reconstructor.*``;
  inside them ``decoder{1,2}.decoder_layers.{i}`` -> ``dec{1,2}.layers.{i}``, ``self_attn`` /
  ``encoder_attn`` -> ``self_attn`` / ``cross_attn`` (the fused ``in_proj_{weight,bias}`` split into
  ``q``, ``k``, ``v`` by rows, ``out_proj`` -> ``out``), ``{self_attn,encoder_attn,final}_layer_norm``
  -> ``norm{1,2,3}``, ``fc1`` / ``fc2`` -> ``ffn.0`` / ``ffn.2``;
* ``fc_mask.gauss.{i}`` (``fc_mask.laplace.{i}``) -> ``fc_mask.{i}``; ``fc_mask.l_gauss.{gauss,laplace}``
  -> ``fc_neg``; ``attn_func.feat2att`` / ``attn_func.to_alpha`` -> ``pool.proj`` / ``pool.score``;
  ``frame_fc``, ``word_fc``, ``fc_comp``, ``start_vec``, ``mask_vec``, ``pred_vec_v`` keep their names;
* ``pred_vec_q`` (``hidden_dim`` entries; the official code writes the scalar entry b into the
  PRED slot of the b-th sample of a batch, a bug) -> ``pred_vec_q`` filled with entry 0, what the
  official code uses for a sample run alone; the loader says so when the entries differ;
* skipped, because the official forward never uses them: the second generator
  ``trans_mask_generator.l_gauss.*`` and the pooled-feature layer ``attn_func.fc.*``.

The model comes back with ``official=True`` (see :mod:`reprozoo.gmp.config`) and the official
bugs fixed; pass ``legacy_width_indexing=True, legacy_eos_cut=True`` to reproduce them as well.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from reprozoo.errors import CheckpointError, ConfigError
from reprozoo.gmp.config import GrounderConfig
from reprozoo.gmp.models import GMP

logger = logging.getLogger(__name__)

SKIPPED_PREFIXES = ("trans_mask_generator.l_gauss.", "trans_mask_generator.l_inv_gauss.", "attn_func.fc.")
_LAYER_PARTS = {"self_attn_layer_norm": "norm1", "encoder_attn_layer_norm": "norm2", "final_layer_norm": "norm3",
                "fc1": "ffn.0", "fc2": "ffn.2"}
_ATTN = {"self_attn": "self_attn", "encoder_attn": "cross_attn"}


def official_config(config: Mapping[str, Any], clips: int | None = None, **overrides) -> GrounderConfig:
    """A :class:`GrounderConfig` from an official ``config.json`` (a dict with ``model`` and ``loss``).

    ``clips`` is the number of clips T a video has (the official grid is ``T // 4`` points);
    default: ``dataset.max_num_segments`` of the config (200 in the released configs)."""
    try:
        m, loss = config["model"], config["loss"]
        trans = m["DualTransformer"]
        if clips is None:
            clips = int(config.get("dataset", {}).get("max_num_segments", 0)) or None
        if clips is None:
            raise ConfigError("official_config: the config has no dataset.max_num_segments; pass clips=T")
        if m.get("name", "PPS") != "PPS" or not m.get("use_attn", True):
            raise ConfigError("official_config: only the PPS model with use_attn=true is supported")
        if m["neg_type"] != "learnable_gaussian":
            raise ConfigError(f"official_config: neg_type '{m['neg_type']}' is not supported (learnable_gaussian)")
        if trans["num_decoder_layers1"] != trans["num_decoder_layers2"]:
            raise ConfigError("official_config: decoder1 and decoder2 must have the same number of layers")
        if trans["d_model"] != m["hidden_dim"] or trans["dropout"] != m["dropout"]:
            raise ConfigError("official_config: DualTransformer d_model/dropout must equal hidden_dim/dropout")
        if loss.get("num_train_prop", 1) != 1:
            raise ConfigError("official_config: only num_train_prop = 1 is supported")
        kind = {"gaussian": "gauss", "laplace": "laplace"}[m["mask_type"]]
        base = dict(
            vocab_size=int(m["vocab_size"]) - 1, word_dim=int(m["word_feat_dim"]), frame_dim=int(m["frame_feat_dim"]),
            d_model=int(m["hidden_dim"]), heads=int(trans["num_heads"]), layers=int(trans["num_decoder_layers1"]),
            ffn=2 * int(m["hidden_dim"]), dropout=float(m["dropout"]), grid=int(clips) // 4, mask_kind=kind,
            sigma=float(m["sigma_gauss"] if kind == "gauss" else m["sigma_laplace"]),
            components=list(range(1, int(m["num_props"]) + 1)), negatives="learned", n_neg=int(m["num_neg_mask"]),
            sigma_neg=float(m["sigma_neg_gauss"]), mask_ratio=1.0 / float(m["masked_words_ratio"]),
            shrink=float(m["pred_gamma"]), margin_hard=float(loss["margin_hneg"]),
            margin_easy=float(loss["margin_eneg"]), alpha_ivc=float(loss["alpha_ivc"]),
            alpha_pull=float(loss["alpha_pull"]), alpha_inter=float(loss["alpha_inter_push"]),
            alpha_intra=float(loss["alpha_intra_push"]), lambda_inter=float(loss["lambda_inter_push"]),
            lambda_intra=float(loss["lambda_intra_push"]), official=True)
    except KeyError as err:
        raise ConfigError(f"official_config: the official config lacks the entry {err}") from err
    base.update(overrides)
    out = GrounderConfig(**base)
    out.validate()
    return out


def _layer_map(official_prefix: str, ours_prefix: str, layers: int, d: int) -> dict[str, tuple[str, slice | None]]:
    """ours key -> (official key, row slice) for one DualTransformer."""
    out: dict[str, tuple[str, slice | None]] = {}
    for dec in (1, 2):
        for i in range(layers):
            src, dst = f"{official_prefix}.decoder{dec}.decoder_layers.{i}", f"{ours_prefix}.dec{dec}.layers.{i}"
            for off_name, our_name in _ATTN.items():
                for j, part in enumerate("qkv"):
                    rows = slice(j * d, (j + 1) * d)
                    out[f"{dst}.{our_name}.{part}.weight"] = (f"{src}.{off_name}.in_proj_weight", rows)
                    out[f"{dst}.{our_name}.{part}.bias"] = (f"{src}.{off_name}.in_proj_bias", rows)
                for p in ("weight", "bias"):
                    out[f"{dst}.{our_name}.out.{p}"] = (f"{src}.{off_name}.out_proj.{p}", None)
            for off_name, our_name in _LAYER_PARTS.items():
                for p in ("weight", "bias"):
                    out[f"{dst}.{our_name}.{p}"] = (f"{src}.{off_name}.{p}", None)
    return out


def official_key_map(config: GrounderConfig) -> dict[str, tuple[str, slice | None]]:
    """For every parameter of ``GMP(config)`` (not the word-vector buffer): (official key, row slice)."""
    kind = "gauss" if config.mask_kind == "gauss" else "laplace"
    out = _layer_map(f"trans_mask_generator.{kind}", "generator", config.layers, config.d_model)
    out.update(_layer_map("trans_reconstructor", "reconstructor", config.layers, config.d_model))
    for name in ("frame_fc", "word_fc", "fc_comp"):
        for p in ("weight", "bias"):
            out[f"{name}.{p}"] = (f"{name}.{p}", None)
    for name in ("start_vec", "mask_vec", "pred_vec_v"):
        out[name] = (name, None)
    for i in range(len(config.components)):
        for p in ("weight", "bias"):
            out[f"fc_mask.{i}.{p}"] = (f"fc_mask.{kind}.{i}.{p}", None)
    for p in ("weight", "bias"):
        out[f"fc_neg.{p}"] = (f"fc_mask.l_gauss.{kind}.{p}", None)
    out["pool.proj.weight"] = ("attn_func.feat2att.weight", None)
    out["pool.score.weight"] = ("attn_func.to_alpha.weight", None)
    return out


def convert_official_state_dict(official: Mapping[str, torch.Tensor], config: GrounderConfig) -> dict[str, torch.Tensor]:
    """An official PPS state dict -> the state dict of ``GMP(config)`` without ``embeddings``.
    Raises :class:`CheckpointError` on any missing, unexpected or mis-shaped key."""
    if tuple(config.components) != tuple(range(1, len(config.components) + 1)) or config.negatives != "learned":
        raise ConfigError("official checkpoints have mixtures 1..K and learned negatives (use official_config)")
    shapes = {k: v.shape for k, v in GMP(config).state_dict().items() if k != "embeddings"}
    key_map = official_key_map(config)
    used = {"pred_vec_q"}
    out: dict[str, torch.Tensor] = {}
    for ours, (key, rows) in key_map.items():
        if key not in official:
            raise CheckpointError(f"official checkpoint lacks '{key}' (for '{ours}'); is the config the run's?")
        value = official[key] if rows is None else official[key][rows]
        if tuple(value.shape) != tuple(shapes[ours]):
            raise CheckpointError(f"official '{key}' has shape {tuple(value.shape)}; the config needs "
                                  f"{tuple(shapes[ours])} for '{ours}'")
        out[ours] = value.detach().clone().float()
        used.add(key)
    if "pred_vec_q" not in official:
        raise CheckpointError("official checkpoint lacks 'pred_vec_q'")
    q = official["pred_vec_q"].detach().float().reshape(-1)
    if q.numel() != config.d_model:
        raise CheckpointError(f"official 'pred_vec_q' has {q.numel()} entries; the config needs {config.d_model}")
    if not torch.all(q == q[0]):
        warnings.warn("official pred_vec_q entries differ (the official code gives sample b of a batch entry b); "
                      "reprozoo uses entry 0 in every word dimension", stacklevel=2)
    out["pred_vec_q"] = q[0].expand(config.word_dim).clone()
    unexpected = [k for k in official if k not in used and not k.startswith(SKIPPED_PREFIXES)]
    skipped = [k for k in official if k.startswith(SKIPPED_PREFIXES)]
    logger.info("official checkpoint: %d tensors placed, %d never-used ones skipped", len(used), len(skipped))
    if unexpected:
        raise CheckpointError(f"official checkpoint has keys reprozoo cannot place: {unexpected[:5]} "
                              f"({len(unexpected)} in all)")
    missing = sorted(set(shapes) - set(out))
    if missing:  # the key map does not cover the model: a reprozoo bug, not the user's
        raise CheckpointError(f"no official key for {missing[:5]}")
    return out


def _read(source) -> Mapping[str, Any]:
    if isinstance(source, Mapping):
        return source
    path = Path(source)
    if not path.is_file():
        raise CheckpointError(f"no official checkpoint at {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise CheckpointError(f"{path} is not a readable checkpoint: {err}") from err


def load_official_checkpoint(source, config: Mapping[str, Any] | str | Path | GrounderConfig | None = None, *,
                             clips: int | None = None, embeddings: torch.Tensor | None = None, **overrides) -> GMP:
    """A :class:`GMP` in eval mode with the weights of an official PPS checkpoint.

    ``source``: a ``model-N.pt`` of the official runner, a ``.safetensors`` / torch file of the
    official state dict, or such a dict. ``config``: the official ``config.json`` (path or dict),
    a ready :class:`GrounderConfig`, or ``None`` to use the ``config`` stored in the checkpoint.
    ``clips``: clips per video T (grid T // 4). ``embeddings``: the (V + 1, word_dim) word-vector
    table the official collate read the words from (GloVe; row 0 = 0); zeros when not given.
    ``overrides``: further :class:`GrounderConfig` fields (e.g. ``legacy_eos_cut=True``)."""
    state = _read(source)
    params = state.get("model_parameters", state)
    if isinstance(config, (str, Path)):
        try:
            config = json.loads(Path(config).read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot read the official config {config}: {err}") from err
    if config is None:
        config = state.get("config")
        if not isinstance(config, Mapping):
            raise ConfigError("the checkpoint holds no config: pass the run's config.json as config=")
    if not isinstance(config, GrounderConfig):
        config = official_config(config, clips=clips, **overrides)
    elif overrides:
        config = GrounderConfig(**{**config.__dict__, **overrides})
    converted = convert_official_state_dict(params, config)
    model = GMP(config, embeddings)
    missing, unexpected = model.load_state_dict(converted, strict=False)
    if unexpected or set(missing) - {"embeddings"}:
        raise CheckpointError(f"official checkpoint: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()


__all__ = ["SKIPPED_PREFIXES", "convert_official_state_dict", "load_official_checkpoint", "official_config",
           "official_key_map"]
