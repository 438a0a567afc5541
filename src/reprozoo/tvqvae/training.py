"""Training loops for the VQ autoencoder (stage B) and the topic networks (stage D).

Both stages train small networks on tensors that fit in memory, so the loops are plain AdamW
loops over seeded permutations (a ``torch.Generator``), on one device. A loss that turns NaN or
infinite stops training with the stage, the step and the value.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from reprozoo.errors import ReproZooError
from reprozoo.runtime.progress import progress_bar
from reprozoo.tvqvae.models import TopicModel, VQAutoEncoder

logger = logging.getLogger(__name__)


class NonFiniteLossError(ReproZooError, FloatingPointError):
    """A training loss became NaN or infinite (the message names the stage, step and value)."""


def _check(loss: torch.Tensor, stage: str, step: int) -> float:
    value = float(loss.detach())
    if not math.isfinite(value):
        raise NonFiniteLossError(f"{stage}: the loss became {value} at step {step}; lower the learning rate "
                                 "or check the inputs for NaN/inf values")
    return value


def _batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """A seeded permutation cut into batches; a last batch of one row joins the previous one
    (BatchNorm needs two rows)."""
    perm = torch.randperm(n, generator=gen)
    out = list(perm.split(batch_size))
    if len(out) > 1 and len(out[-1]) < 2:
        out[-2] = torch.cat([out[-2], out.pop()])
    return out


def train_vq(model: VQAutoEncoder, vectors: torch.Tensor, doc: np.ndarray, *, epochs: int, lr: float = 5e-4,
             batch_docs: int = 256, max_tokens: int = 0, gen: torch.Generator, device: torch.device,
             init: str = "uniform", standardize: bool = False, restart_dead: bool = False,
             progress: bool | None = None) -> list[dict[str, float]]:
    """Stage B: AdamW on batches of ``batch_docs`` documents (all their tokens). ``max_tokens > 0``
    subsamples that many tokens per epoch (a budget cap for CPU runs); ``init="data"`` first sets
    the codebook from encoded tokens (:func:`init_codebook_from_data`); ``standardize`` sets the
    input statistics from ``vectors``; ``restart_dead`` moves codes no token chose during an epoch
    onto encodings of random tokens. Returns per-epoch logs."""
    if standardize:
        model.set_input_stats(vectors)
    model.to(device).train()
    if init == "data" and epochs > 0:
        init_codebook_from_data(model, vectors, gen, device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    n_docs = int(doc.max()) + 1 if doc.size else 0
    starts = np.searchsorted(doc, np.arange(n_docs + 1))
    history, step = [], 0
    with progress_bar(epochs, "VQ autoencoder", progress) as bar:
        for epoch in range(epochs):
            if max_tokens and max_tokens < len(vectors):
                keep = torch.randperm(len(vectors), generator=gen)[:max_tokens].sort().values.numpy()
                sub_doc = doc[keep]
            else:
                keep, sub_doc = None, doc
            sub_starts = np.searchsorted(sub_doc, np.arange(n_docs + 1)) if keep is not None else starts
            sums = {"loss": 0.0, "recon": 0.0, "vq": 0.0, "usage": 0.0}
            nb = 0
            used = torch.zeros(model.n_codes, device=device)
            for b in _batches(n_docs, batch_docs, gen):
                idx = np.concatenate([np.arange(sub_starts[d], sub_starts[d + 1]) for d in b.tolist()])
                if idx.size < 2:
                    continue
                rows = torch.from_numpy(keep[idx] if keep is not None else idx)
                out = model(vectors[rows].to(device))
                opt.zero_grad(set_to_none=True)
                step += 1
                sums["loss"] += _check(out["loss"], "VQ autoencoder", step)  # stop before a NaN update
                out["loss"].backward()
                opt.step()
                for k in ("recon", "vq", "usage"):
                    sums[k] += float(out[k].detach())
                used += out["h"].sum(0)
                nb += 1
            dead = torch.nonzero(used == 0).flatten()
            if restart_dead and dead.numel() and epoch + 1 < epochs:
                _restart_codes(model, dead, vectors, gen, device)
            history.append({"epoch": epoch + 1, **{k: v / max(nb, 1) for k, v in sums.items()},
                            "dead_codes": int(dead.numel())})
            logger.debug("VQ autoencoder epoch %d/%d: loss %.4f, %d dead codes", epoch + 1, epochs,
                         history[-1]["loss"], history[-1]["dead_codes"])
            bar.update()
    model.eval()
    return history


@torch.no_grad()
def _restart_codes(model: VQAutoEncoder, dead: torch.Tensor, vectors: torch.Tensor, gen: torch.Generator,
                   device: torch.device) -> None:
    pick = torch.randint(len(vectors), (dead.numel(),), generator=gen)
    was = model.training
    model.eval()
    z = model.encode(vectors[pick].to(device))
    scale = model.n_neighbors if model.quantize == "sum" else 1
    model.codebook.data[dead.to(model.codebook.device)] = z / scale
    model.train(was)


@torch.no_grad()
def init_codebook_from_data(model: VQAutoEncoder, vectors: torch.Tensor, gen: torch.Generator,
                            device: torch.device) -> None:
    """Codes = encodings of randomly drawn tokens, divided by ``n_neighbors`` when codes are summed
    (so a sum of n codes near z has z's scale). The released code draws codes from U(-1, 1), whose
    sums are ~13x longer than the unit-norm z; with few epochs most tokens then share the same few
    codes (codebook collapse)."""
    pick = torch.randperm(len(vectors), generator=gen)[:model.n_codes]
    if len(pick) < model.n_codes:  # fewer tokens than codes: repeat with small noise
        pick = pick[torch.randint(len(pick), (model.n_codes,), generator=gen)]
    was = model.training
    model.eval()
    z = model.encode(vectors[pick].to(device))
    z = z + 1e-3 * torch.randn(z.shape, generator=gen).to(device)
    scale = model.n_neighbors if model.quantize == "sum" else 1
    model.codebook.data.copy_(z / scale)
    model.train(was)


@torch.no_grad()
def code_histograms(model: VQAutoEncoder, vectors: torch.Tensor, doc: np.ndarray, n_docs: int,
                    device: torch.device, chunk: int = 8192) -> torch.Tensor:
    """Stage C: x_d = sum of the multi-hot code vectors of document d's tokens, ``(n_docs, N_rho)``."""
    model.eval()
    x = torch.zeros(n_docs, model.n_codes)
    doc_t = torch.from_numpy(np.asarray(doc, dtype=np.int64))
    for i in range(0, len(vectors), chunk):
        h = model.multi_hot(model.codes(model.encode(vectors[i:i + chunk].to(device)))).cpu()
        x.index_add_(0, doc_t[i:i + chunk], h)
    return x


def train_topic_model(model: TopicModel, x: torch.Tensor, words: torch.Tensor, *, epochs: int, lr: float = 1e-3,
                      batch_size: int = 256, gen: torch.Generator, device: torch.device,
                      progress: bool | None = None, name: str = "topic model") -> list[dict[str, float]]:
    """Stage D: AdamW on the ELBO; noise drawn from ``gen``. Returns per-epoch mean losses."""
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    x, words = x.to(device), words.to(device)
    history, step = [], 0
    with progress_bar(epochs, name, progress) as bar:
        for epoch in range(epochs):
            sums: dict[str, float] = {}
            nb = 0
            for b in _batches(len(x), batch_size, gen):
                b = b.to(device)
                eps = torch.randn(len(b), model.encoder.n_topics, generator=gen).to(device)
                out = model(x[b], words[b], eps)
                opt.zero_grad(set_to_none=True)
                step += 1
                _check(out["loss"], name, step)  # stop before a NaN update
                out["loss"].backward()
                opt.step()
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                nb += 1
            history.append({"epoch": epoch + 1, **{k: v / max(nb, 1) for k, v in sums.items()}})
            logger.debug("%s epoch %d/%d: loss %.4f", name, epoch + 1, epochs, history[-1].get("loss", math.nan))
            bar.update()
    model.eval()
    return history
