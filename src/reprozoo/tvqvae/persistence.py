"""Saving and loading a fitted :class:`~reprozoo.tvqvae.estimator.TVQVAE` (no pickle).

``save`` writes the library's checkpoint format (``reprozoo.checkpoint/1``, see
:mod:`reprozoo.runtime.checkpoint`): one ``.safetensors`` file with the weights of the VQ autoencoder
(``vq.*``) and of the topic model (``topic.*``), and as JSON metadata the model name ``TVQVAE``,
the estimator's parameters as its keyword arguments, the library version and, as extra fields, the
token-vector dimension (``input_dim``) and the output vocabulary.

``load`` reads that file, and also a folder written by the former ``save`` (``weights.safetensors``
+ ``config.json``, format 1), so models saved before keep loading.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from reprozoo.errors import CheckpointError, ReproZooError
from reprozoo.runtime.checkpoint import checkpoint_meta, load_strict, read_state_dict, save_checkpoint
from reprozoo.tvqvae.models import TopicEncoder, TopicModel, TVQDecoder, VQAutoEncoder
from reprozoo.tvqvae.preprocess import Vocabulary

if TYPE_CHECKING:
    from reprozoo.tvqvae.estimator import TVQVAE

MODEL_NAME = "TVQVAE"
FORMER_VERSION = 1  # the folder format of the former save


def checkpoint_file(path: str | Path) -> Path:
    """``path`` as the checkpoint file it names: ``.safetensors`` is appended when the name has
    another ending (``save("tvq_model")`` writes ``tvq_model.safetensors``)."""
    path = Path(path)
    return path if path.suffix == ".safetensors" else path.with_name(path.name + ".safetensors")


def save(est: TVQVAE, path: str | Path) -> Path:
    """Write the fitted ``est`` to ``path`` (see the module docstring); returns the file written."""
    check_is_fitted(est)
    params = est.get_params(deep=False)
    params["vq_hidden"] = [int(h) for h in params["vq_hidden"]]
    if not (params["random_state"] is None or isinstance(params["random_state"], numbers.Integral)):
        params["random_state"] = None  # a RandomState object is not saved
    target = checkpoint_file(path)
    if target.is_dir():
        raise CheckpointError(f"{target} is a folder; give a file path ending in .safetensors")
    both = nn.ModuleDict({"vq": est.vq_, "topic": est.model_})
    return save_checkpoint(both, target, model_name=MODEL_NAME, model_kwargs=params,
                           input_dim=int(est.input_dim_), vocabulary=est.vocab_.to_list())


def load(cls: type[TVQVAE], path: str | Path) -> TVQVAE:
    """A fitted estimator from a file written by :func:`save` or a folder of the former format."""
    p = Path(path)
    if p.is_dir():
        return _load_former(cls, p)
    if not p.exists() and p.suffix != ".safetensors" and checkpoint_file(p).is_file():
        p = checkpoint_file(p)
    if not p.is_file():
        raise CheckpointError(f"{p} is not a saved TVQVAE (a .safetensors file written by TVQVAE.save, or the "
                              "folder of an older save with config.json and weights.safetensors)")
    meta = checkpoint_meta(p)
    if meta is None or meta["model"] != MODEL_NAME:
        held = "another format" if meta is None else f"the model '{meta['model']}'"
        raise CheckpointError(f"{p} is not a saved TVQVAE: it holds {held}")
    extra = meta["extra"]
    if not isinstance(extra.get("vocabulary"), list) or not isinstance(extra.get("input_dim"), int):
        raise CheckpointError(f"{p} is a TVQVAE checkpoint without its vocabulary or input_dim")
    return _build(cls, meta["kwargs"], extra["input_dim"], extra["vocabulary"], read_state_dict(p), str(p))


def _load_former(cls: type[TVQVAE], p: Path) -> TVQVAE:
    from safetensors.torch import load_file

    if not (p / "config.json").is_file() or not (p / "weights.safetensors").is_file():
        raise CheckpointError(f"{p} is not a saved TVQVAE (needs config.json and weights.safetensors)")
    try:
        meta = json.loads((p / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"cannot read {p}/config.json: {type(err).__name__}: {str(err).splitlines()[0]}") from None
    if (not isinstance(meta, dict) or meta.get("class") != "TVQVAE" or meta.get("format") != FORMER_VERSION
            or not isinstance(meta.get("params"), dict) or not isinstance(meta.get("vocabulary"), list)
            or not isinstance(meta.get("input_dim"), int)):
        raise CheckpointError(f"{p}/config.json is not a TVQVAE save of format {FORMER_VERSION}")
    try:
        tensors = load_file(str(p / "weights.safetensors"))
    except Exception as err:  # noqa: BLE001  (safetensors raises its own SafetensorError)
        raise CheckpointError(f"cannot read {p}/weights.safetensors: {type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else 'corrupt file'}") from None
    return _build(cls, meta["params"], meta["input_dim"], meta["vocabulary"], tensors, f"{p}/config.json")


def _build(cls: type[TVQVAE], params: dict[str, Any], input_dim: int, words: list, tensors: dict[str, torch.Tensor],
           where: str) -> TVQVAE:
    """The estimator of ``params`` holding ``tensors`` (``vq.*`` and ``topic.*``), loaded strictly."""
    params = dict(params)
    if isinstance(params.get("vq_hidden"), list):
        params["vq_hidden"] = tuple(params["vq_hidden"])
    try:
        est = cls(**params)
        est._validate()
    except (TypeError, ReproZooError) as err:
        raise CheckpointError(f"{where} has invalid parameters: {str(err).splitlines()[0]}") from None
    vocab = Vocabulary(words)
    vq = VQAutoEncoder(input_dim, tuple(est.vq_hidden), est.code_dim, est.n_codes, est.n_neighbors,
                       quantize=est.quantize)
    model = TopicModel(TopicEncoder(est.n_codes, est.n_topics, prior_mean=est.prior_mean),
                       TVQDecoder(est.n_topics, torch.zeros(est.n_codes, est.code_dim), len(vocab), est.alpha_hidden),
                       w_code=est.w_code, w_word=est.w_word, w_kl=est.w_kl)
    topic_sd = {k[6:]: v for k, v in tensors.items() if k.startswith("topic.")}
    if model.decoder.topic_bn is not None and "decoder.topic_bn.running_mean" not in topic_sd:
        # saves made before the topic BatchNorm held running statistics: start them at 0 / 1
        topic_sd.update({f"decoder.topic_bn.{k}": v for k, v in model.decoder.topic_bn.state_dict().items()})
    unknown = sorted(k for k in tensors if not k.startswith(("vq.", "topic.")))
    if unknown:
        raise CheckpointError(f"{where}: weights {unknown[:3]} belong to neither the VQ autoencoder nor the topic model")
    load_strict(vq, {k[3:]: v for k, v in tensors.items() if k.startswith("vq.")}, what="the TVQVAE's VQ autoencoder",
                hint=f"the weights do not match the parameters in {where}")
    load_strict(model, topic_sd, what="the TVQVAE's topic model", hint=f"the weights do not match the parameters in {where}")
    est.vq_, est.model_, est.vocab_, est.input_dim_ = vq.eval(), model.eval(), vocab, input_dim
    est._set_topics()
    return est
