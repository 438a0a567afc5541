"""Load weights saved by the released TVQ-VAE document-analysis code (github.com/yjyoo3312/TVQ-VAE,
``document_analysis/model.py``, ``TopicVectorQuantizedVAE``) into reprozoo's networks.

The released state dict holds a BERT (``bert.*``, dropped here: reprozoo takes token vectors from its
own encoder), the VQ autoencoder (``ae.*``), the topic model (``topic_model_bow.*``), the word map
``alpha.*`` and the word BatchNorm ``alpha_bn.*``. ``emb`` is the codebook tensor registered a second
time. ``alpha.f_sigma*`` is computed by the released code but never used, and is dropped. Sizes (input
and code dimension, hidden widths, codes, topics, words, ``alpha_hidden``) are read from the shapes;
the number of nearest codes per token is not stored and is an argument (released default 5).

Key map (released -> reprozoo):

=============================================  ==========================================
``ae.encoder.{i}.0.*`` (Linear + ReLU)          ``vq.encoder.{2i}.*``
``ae.encoder.{last}.*`` (Linear)                ``vq.encoder.{2 last}.*``
``ae.decoder.*``                                the same rule, ``vq.decoder.*``
``ae.vq_vae._embedding.weight``                 ``vq.codebook`` and ``decoder.codebook``
``topic_model_bow.prior_mean / prior_variance``  ``encoder.prior_mean / prior_var``
``topic_model_bow.inf_net.input_layer.*``       ``encoder.body.0.*``
``topic_model_bow.inf_net.hiddens.l_{j}.0.*``   ``encoder.body.{2j + 2}.*``
``topic_model_bow.inf_net.f_mu(_batchnorm).*``  ``encoder.mu.0.* (encoder.mu.1.*)``
``topic_model_bow.inf_net.f_sigma(_batchnorm)``  ``encoder.logvar.0.* (encoder.logvar.1.*)``
``topic_model_bow.beta / beta_batchnorm.*``     ``decoder.beta / decoder.code_bn.*``
``alpha.input_layer.*``, ``alpha.hiddens.l_{j}.0.*``, ``alpha.f_mu.*``  ``decoder.alpha.net.{0, 2j + 2, 2 (J + 1)}.*``
``alpha.f_mu_batchnorm.*``                      ``decoder.topic_bn.*`` (BN over the K topics)
``alpha_bn.*``                                  ``decoder.word_bn.*``
=============================================  ==========================================
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from reprozoo.errors import CheckpointError
from reprozoo.tvqvae.models import TopicEncoder, TopicModel, TVQDecoder, VQAutoEncoder

_DROPPED = ("bert.", "alpha.f_sigma")
_FIXED = {
    "topic_model_bow.prior_mean": "encoder.prior_mean", "topic_model_bow.prior_variance": "encoder.prior_var",
    "topic_model_bow.beta": "decoder.beta",
}
_PREFIXES = {
    "topic_model_bow.inf_net.f_mu_batchnorm.": "encoder.mu.1.", "topic_model_bow.inf_net.f_mu.": "encoder.mu.0.",
    "topic_model_bow.inf_net.f_sigma_batchnorm.": "encoder.logvar.1.",
    "topic_model_bow.inf_net.f_sigma.": "encoder.logvar.0.",
    "topic_model_bow.inf_net.input_layer.": "encoder.body.0.", "topic_model_bow.beta_batchnorm.": "decoder.code_bn.",
    "alpha.f_mu_batchnorm.": "decoder.topic_bn.", "alpha.input_layer.": "decoder.alpha.net.0.",
    "alpha_bn.": "decoder.word_bn.",
}


def _read(source: str | Path | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if isinstance(source, dict):
        return dict(source)
    path = Path(source)
    if not path.is_file():
        raise CheckpointError(f"no released TVQ-VAE checkpoint at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is one user error
        raise CheckpointError(f"cannot read {path} as a tensor checkpoint: {str(err).splitlines()[0]}") from None
    sd = sd.get("state_dict", sd.get("model", sd)) if isinstance(sd, dict) else sd
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path} holds no state dict")
    return sd


def _mlp_layers(sd: dict[str, torch.Tensor], prefix: str) -> list[tuple[str, int]]:
    """[(released layer prefix, out width), ...] of the released ``ae.encoder`` / ``ae.decoder``."""
    idx = sorted({int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))})
    if not idx or idx != list(range(len(idx))):
        raise CheckpointError(f"the checkpoint has no complete '{prefix}*' layers; is it a released TVQ-VAE model?")
    return [(f"{prefix}{i}.0." if i < idx[-1] else f"{prefix}{i}.", i) for i in idx]


def official_key_map(sd: dict[str, torch.Tensor]) -> dict[str, str]:
    """``{released key: reprozoo key}`` for every kept key of a released state dict (reprozoo keys
    carry the prefix ``vq.`` for the autoencoder and ``topic.`` for the topic model)."""
    out: dict[str, str] = {}
    for part in ("encoder", "decoder"):
        for prefix, i in _mlp_layers(sd, f"ae.{part}."):
            for name in ("weight", "bias"):
                out[prefix + name] = f"vq.{part}.{2 * i}.{name}"
    out["ae.vq_vae._embedding.weight"] = "vq.codebook"
    n_alpha = len({m.group(1) for k in sd if (m := re.match(r"alpha\.hiddens\.l_(\d+)\.", k))})
    for key in sd:
        if key.startswith(_DROPPED) or key in out or key == "emb" or key.startswith("ae."):
            continue
        if key in _FIXED:
            out[key] = "topic." + _FIXED[key]
        elif m := re.match(r"topic_model_bow\.inf_net\.hiddens\.l_(\d+)\.0\.(.+)", key):
            out[key] = f"topic.encoder.body.{2 * int(m.group(1)) + 2}.{m.group(2)}"
        elif m := re.match(r"alpha\.hiddens\.l_(\d+)\.0\.(.+)", key):
            out[key] = f"topic.decoder.alpha.net.{2 * int(m.group(1)) + 2}.{m.group(2)}"
        elif key.startswith("alpha.f_mu."):
            out[key] = f"topic.decoder.alpha.net.{2 * n_alpha + 2}.{key[len('alpha.f_mu.'):]}"
        else:
            prefix = next((p for p in _PREFIXES if key.startswith(p)), None)
            if prefix is None:
                raise CheckpointError(f"unexpected key '{key}' in the released TVQ-VAE checkpoint")
            out[key] = "topic." + _PREFIXES[prefix] + key[len(prefix):]
    return out


def load_official_weights(source: str | Path | dict[str, torch.Tensor], *,
                          n_neighbors: int = 5) -> tuple[VQAutoEncoder, TopicModel]:
    """``(vq_autoencoder, topic_model)`` from a released TVQ-VAE state dict (a dict, a ``.pt`` /
    ``.pth`` file read with ``weights_only=True``, or a ``.safetensors`` file). The autoencoder
    takes raw token vectors (no input standardisation, as released); the topic model uses the
    released loss weights (word reconstruction + KL) and is returned in eval mode."""
    sd = {k: v for k, v in _read(source).items() if not k.startswith("bert.")}
    mapped = {new: sd[old] for old, new in official_key_map(sd).items()}
    if "emb" in sd and not torch.equal(sd["emb"], sd.get("ae.vq_vae._embedding.weight", sd["emb"])):
        raise CheckpointError("'emb' and 'ae.vq_vae._embedding.weight' differ; the released model ties them")
    try:
        enc = [mapped[f"vq.encoder.{2 * i}.weight"] for _, i in _mlp_layers(sd, "ae.encoder.")]
        codebook = mapped["vq.codebook"]
        beta = mapped["topic.decoder.beta"]
        body = sorted(int(m.group(1)) for k in mapped if (m := re.fullmatch(r"topic\.encoder\.body\.(\d+)\.weight", k)))
        hidden = [mapped[f"topic.encoder.body.{i}.weight"].shape[0] for i in body]
        n_words = mapped["topic.decoder.word_bn.running_mean"].shape[0]
    except KeyError as err:
        raise CheckpointError(f"the checkpoint lacks {err}; is it a released TVQ-VAE model?") from None
    n_alpha = sum(1 for k in mapped if re.fullmatch(r"topic\.decoder\.alpha\.net\.\d+\.weight", k)) - 2
    input_dim, widths = enc[0].shape[1], tuple(w.shape[0] for w in enc[:-1])
    vq = VQAutoEncoder(input_dim, widths, codebook.shape[1], codebook.shape[0], n_neighbors)
    encoder = TopicEncoder(codebook.shape[0], beta.shape[0], hidden=tuple(hidden))
    model = TopicModel(encoder, TVQDecoder(beta.shape[0], codebook, n_words, alpha_hidden=max(n_alpha, 1)))
    vq_sd = {k[3:]: v for k, v in mapped.items() if k.startswith("vq.")}
    vq_sd.update(in_mean=torch.zeros(input_dim), in_std=torch.ones(input_dim))
    topic_sd = {k[6:]: v for k, v in mapped.items() if k.startswith("topic.")}
    topic_sd["decoder.codebook"] = codebook
    for module, state in ((vq, vq_sd), (model, topic_sd)):
        try:
            module.load_state_dict(state)
        except RuntimeError as err:
            raise CheckpointError(f"the released checkpoint does not fit: {' '.join(str(err).split())[:300]}") from None
    return vq.eval(), model.eval()
