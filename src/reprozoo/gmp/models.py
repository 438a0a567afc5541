"""Weakly supervised temporal grounding by masked-query reconstruction: the CPL baseline
(Zheng et al., CVPR 2022: K single-Gaussian proposals) and GMP trained with the pull-push scheme
(Kim et al., AAAI 2024: proposal k is a mixture of n_k Gaussians whose importances come from
per-Gaussian reconstruction).

Both models share :class:`MaskedQueryGrounder`: frame/word projections, a proposal generator
(a :class:`~reprozoo.gmp.layers.DualTransformer` in decoding mode 1 that reads the state of a
learnable token appended after the last video clip) and a reconstructor (decoding mode 2) that
sees the video only through a proposal mask and predicts the next word of a query whose
content words were partly masked. A proposal's score is its reconstruction loss (lower is
better). Batches are ``dict``s (see :func:`reprozoo.gmp.data.collate`)::

    video (B, T, D) float   words (B, L) long, 0 = pad   lengths (B,)   weights (B, L) masking prior
    mask_seed (B,) long     the per-sample seed of the word masking (evaluation is deterministic)

With ``GrounderConfig(official=True)`` (the default) the forward follows the official PPS code
(github.com/sunoh-kim/pps); :mod:`reprozoo.gmp.official` loads its checkpoints. Fixes over the
official code, each covered by a test: one width per (sample, mixture)
(``legacy_width_indexing=True`` restores the batch-dependent indexing), every sentence keeps its
end-of-sentence target (``legacy_eos_cut=True`` restores the batch-dependent cut), a learnable
vector as the reconstructor's prediction token (the official code wrote one scalar of a parameter
into the slot), no dead negative generator, no device hard-coding; the K mixtures' importances
are computed in one batched reconstructor pass. ``batch["word_mask"]`` (B, L) bool, when given,
fixes which words are hidden (e.g. to replay another run's draws).
"""

from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn

from reprozoo.errors import ConfigError
from reprozoo.gmp import losses as L
from reprozoo.gmp.config import GrounderConfig, check_batch
from reprozoo.gmp.layers import DualTransformer, sinusoidal_positions
from reprozoo.gmp.proposals import (
    complement_negatives,
    gaussian_masks,
    mixture_mask,
    summed_negative,
)
from reprozoo.gmp.segment_rules import segments_by_rule
from reprozoo.runtime.registry import register_model


def sample_word_masks(lengths: torch.Tensor, weights: torch.Tensor, seeds: torch.Tensor,
                      ratio: float = 1 / 3) -> torch.Tensor:
    """Which words to hide, (B, L) bool: max(floor(n * ratio), 1) of a sentence's n words, drawn
    without replacement with probabilities softmax(weights). Each sample uses its own seed, so a
    sample's masking never depends on the rest of its batch."""
    out = torch.zeros(weights.shape, dtype=torch.bool)
    for b, (n, seed) in enumerate(zip(lengths.tolist(), seeds.tolist())):
        if n == 0:
            continue
        g = torch.Generator().manual_seed(int(seed))
        k = max(int(n * ratio), 1)
        idx = torch.multinomial(torch.softmax(weights[b, :n].float().cpu(), 0), k, replacement=False, generator=g)
        out[b, idx] = True
    return out.to(weights.device)


class AttentionPool(nn.Module):
    """Importance scores a_g = softmax_g(v^T tanh(W h_g))."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, dim, bias=False)
        self.score = nn.Linear(dim, 1, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.score(torch.tanh(self.proj(h))).squeeze(-1)


class MaskedQueryGrounder(nn.Module):
    """Shared encoder, generator and reconstructor; subclasses define the proposals."""

    def __init__(self, config: GrounderConfig, embeddings: torch.Tensor | None = None):
        super().__init__()
        config.validate()
        self.config = c = config
        emb = torch.zeros(c.vocab_size + 1, c.word_dim) if embeddings is None else embeddings.float().clone()
        if emb.shape != (c.vocab_size + 1, c.word_dim):
            raise ConfigError(f"embeddings must have shape ({c.vocab_size + 1}, {c.word_dim}), got {tuple(emb.shape)}")
        self.register_buffer("embeddings", emb)  # frozen word vectors (GloVe or user-given)
        self.frame_fc = nn.Linear(c.frame_dim, c.d_model)
        self.word_fc = nn.Linear(c.word_dim, c.d_model)
        self.input_drop = nn.Dropout(c.dropout)
        self.pred_vec_v = nn.Parameter(torch.zeros(c.frame_dim).normal_(0, 0.02))
        self.start_vec = nn.Parameter(torch.zeros(c.word_dim).normal_(0, 0.02))
        self.mask_vec = nn.Parameter(torch.zeros(c.word_dim).normal_(0, 0.02))
        self.pred_vec_q = nn.Parameter(torch.zeros(c.word_dim).normal_(0, 0.02))
        self.generator = DualTransformer(c.d_model, c.heads, c.ffn, c.layers, c.dropout)
        self.reconstructor = (self.generator if c.share_transformer
                              else DualTransformer(c.d_model, c.heads, c.ffn, c.layers, c.dropout))
        self.fc_comp = nn.Linear(c.d_model, c.vocab_size + 1)
        self.num_proposals = len(c.components)
        # for save_checkpoint: the full config, which any of the registered constructors rebuilds
        self.reprozoo_spec = {"name": "cpl_charades" if isinstance(self, CPL) else "pps_charades", "kwargs": asdict(c)}

    # ------------------------------------------------------------ encoders
    def _check(self, batch: dict) -> None:
        check_batch(batch, self.config)

    def _word_tokens(self, words, lengths, hidden=None, pad_pred=False):
        """[start, w1..wL, PRED] projected, positions added after masking; (B, L+2, d), its key pad
        mask (PRED counted as a pad when ``pad_pred``) and the PRED index L+1."""
        b, n = words.shape
        vec = self.embeddings[words]  # (B, L, word_dim)
        seq = torch.cat([self.start_vec.expand(b, 1, -1), vec, torch.zeros_like(vec[:, :1])], 1)
        pred_at = lengths + 1
        seq = seq.clone()
        seq[torch.arange(b), pred_at] = self.pred_vec_q.to(seq.dtype)  # a full learnable vector token
        tok = self.word_fc(self.input_drop(seq))
        if hidden is not None:
            hide = torch.cat([torch.zeros_like(hidden[:, :1]), hidden, torch.zeros_like(hidden[:, :1])], 1)
            tok = torch.where(hide[..., None], self.word_fc(self.mask_vec).to(tok.dtype), tok)
        pos = sinusoidal_positions(n + 2, tok.shape[-1], tok.device).to(tok.dtype)
        if self.config.choice("zero_start_position"):
            pos = torch.cat([torch.zeros_like(pos[:1]), pos[1:]])  # the official table's padding_idx=0 row
        tok = tok + pos
        last = lengths if pad_pred else pred_at
        pad = torch.arange(n + 2, device=words.device)[None] > last[:, None]
        return tok, pad, pred_at

    def _generator_state(self, batch) -> torch.Tensor:
        video, words, lengths = batch["video"], batch["words"], batch["lengths"]
        b, t = video.shape[:2]
        v = torch.cat([video, self.pred_vec_v.expand(b, 1, -1).to(video.dtype)], 1)
        vtok = self.frame_fc(self.input_drop(v))
        wtok, pad, _ = self._word_tokens(words, lengths, pad_pred=True)  # the generator reads no PRED_q
        video_pad = None
        if self.config.choice("pad_generator_pred"):
            video_pad = (torch.arange(t + 1, device=video.device) == t)[None].expand(b, -1)
        return self.generator.generate(vtok, wtok, pad, video_pad)[:, -1]

    def _hidden_words(self, batch) -> torch.Tensor:
        """Which words the reconstructor sees as [MASK], (B, L) bool: ``batch["word_mask"]`` when
        given (e.g. to replay another run's draws), else drawn with :func:`sample_word_masks`."""
        words, lengths = batch["words"], batch["lengths"]
        given = batch.get("word_mask")
        if given is None:
            return sample_word_masks(lengths, batch["weights"], batch["mask_seed"], self.config.mask_ratio)
        if given.shape != words.shape:
            raise ConfigError(f"word_mask must have the shape of words {tuple(words.shape)}, got {tuple(given.shape)}")
        given = given.to(torch.bool)
        if (given & (torch.arange(words.shape[1], device=words.device)[None] >= lengths[:, None])).any():
            raise ConfigError("word_mask hides a position after the end of its sentence")
        return given

    def _recon_inputs(self, batch):
        c = self.config
        video, words, lengths = batch["video"], batch["words"], batch["lengths"]
        t = video.shape[1]
        idx = torch.linspace(0, t - 1, c.grid, device=video.device).long()
        vtok = self.frame_fc(self.input_drop(video[:, idx]))
        hidden = self._hidden_words(batch)
        wtok, pad, pred_at = self._word_tokens(words, lengths, hidden, c.choice("pad_reconstructor_pred"))
        n = words.shape[1]
        targets = torch.cat([words, torch.zeros_like(words[:, :2])], 1)  # position j predicts w_{j+1}; EOS = 0
        pos = torch.arange(n + 2, device=words.device)[None]
        valid = pos <= lengths[:, None]
        if c.legacy_eos_cut:  # the official bug: the batch's longest sentences lose their EOS target
            valid = valid & (pos < lengths.max())
        return vtok, wtok, pad, pred_at, targets, valid

    def reconstruct(self, inputs, masks: torch.Tensor, need_loss: bool = True):
        """Run the reconstructor once per mask: masks (B, m, T') -> (loss (B, m), pred state (B, m, d))."""
        vtok, wtok, pad, pred_at, targets, valid = inputs
        b, m = masks.shape[:2]

        def rep(x):
            return x[:, None].expand(b, m, *x.shape[1:]).reshape(b * m, *x.shape[1:])

        out = self.reconstructor.reconstruct(rep(vtok), rep(wtok), rep(pad), masks.reshape(b * m, -1))
        out = out.view(b, m, *out.shape[1:])
        state = out[torch.arange(b), :, pred_at]  # (B, m, d) at the PRED slot
        loss = None
        if need_loss:
            logits = self.fc_comp(out)
            loss = L.reconstruction_nll(logits, targets[:, None].expand(-1, m, -1),
                                        valid[:, None].expand(-1, m, -1), self.config.smoothing)
        return loss, state

    # ------------------------------------------------------------ API
    def proposals(self, h: torch.Tensor, inputs=None) -> dict:
        raise NotImplementedError

    def forward(self, batch: dict) -> dict:
        """Proposal masks, segments and reconstruction losses (B, K) of every proposal."""
        self._check(batch)
        h = self._generator_state(batch)
        inputs = self._recon_inputs(batch)
        out = self.proposals(h, inputs)
        loss, _ = self.reconstruct(inputs, out["masks"])
        out["loss"] = loss
        out["h"], out["inputs"] = h, inputs
        return out

    def training_loss(self, batch: dict, progress: float = 1.0) -> dict:
        c = self.config
        out = self(batch)
        inputs, loss_k = out["inputs"], out["loss"]
        b = loss_k.shape[0]
        ones = torch.ones(b, 1, c.grid, device=loss_k.device, dtype=out["masks"].dtype)
        hard, _ = self.reconstruct(inputs, ones)
        hard = hard[:, 0]
        best = loss_k.argmin(-1)
        rows = torch.arange(b, device=best.device)
        pos = loss_k[rows, best]
        easy = self.easy_negatives(out, best, progress)  # (B, n) masks
        easy_loss, _ = self.reconstruct(inputs, easy)
        rec = 0.5 * (pos + hard)
        ivc = L.hinge(pos, hard, c.margin_hard) + L.hinge(pos[:, None], easy_loss, c.margin_easy).mean(-1)
        terms = {"rec": rec.mean(), "ivc": ivc.mean()}
        terms.update(self.regularisers(out))
        total = terms["rec"] + c.alpha_ivc * terms["ivc"] + c.alpha_inter * terms["inter"]
        if "pull" in terms:
            total = total + c.alpha_pull * terms["pull"] + c.alpha_intra * terms["intra"]
        return {"loss": total, **{k: v.detach() for k, v in terms.items()}}

    def easy_negatives(self, out: dict, best: torch.Tensor, progress: float) -> torch.Tensor:
        raise NotImplementedError

    def regularisers(self, out: dict) -> dict:
        return {"inter": L.push_loss(out["masks"], self.config.lambda_inter).mean()}

    def spec(self) -> dict:
        return {"class": type(self).__name__, "config": asdict(self.config)}


class CPL(MaskedQueryGrounder):
    """CPL: K single Gaussians (centre, width) from the generator state; left/right complement
    negatives (or learned ones); the diversity (inter-push) loss over the K proposals."""

    def __init__(self, config: GrounderConfig, embeddings: torch.Tensor | None = None):
        if any(k != 1 for k in config.components):
            raise ConfigError(f"CPL proposals are single Gaussians: model.components must be all 1, got "
                              f"{config.components}")
        super().__init__(config, embeddings)
        c = self.config
        self.fc_gauss = nn.Linear(c.d_model, 2 * self.num_proposals)
        if c.negatives == "learned":
            self.fc_neg = nn.Linear(c.d_model, self.num_proposals * c.n_neg * 2)

    def proposals(self, h, inputs=None):
        c = self.config
        cw = torch.sigmoid(self.fc_gauss(h)).view(h.shape[0], self.num_proposals, 2)
        centres, widths = cw[..., 0], cw[..., 1]
        masks = gaussian_masks(centres, widths, c.grid, c.sigma, c.mask_kind)
        ones = torch.ones_like(centres)
        return {"masks": masks, "centres": centres[..., None], "widths": widths, "importance": ones[..., None],
                "segments": segments_by_rule(c.segment_rule, centres[..., None], widths, ones[..., None], c.shrink,
                                             c.segment_fraction)}

    def easy_negatives(self, out, best, progress):
        c = self.config
        rows = torch.arange(best.shape[0], device=best.device)
        if c.negatives == "learned":
            return _learned_negatives(self.fc_neg(out["h"]), self.num_proposals, c)[rows, best][:, None]
        centre, width = out["centres"][rows, best, 0], out["widths"][rows, best]
        left, right = complement_negatives(centre, width, progress, c.neg_gamma, c.grid, c.sigma)
        return torch.stack([left, right], 1)


def _learned_negatives(raw: torch.Tensor, k: int, c: GrounderConfig) -> torch.Tensor:
    cw = torch.sigmoid(raw).view(raw.shape[0], k, c.n_neg, 2)
    return summed_negative(gaussian_masks(cw[..., 0], cw[..., 1], c.grid, c.sigma_neg, c.mask_kind))


class GMP(MaskedQueryGrounder):
    """Gaussian-mixture proposals trained with the pull-push scheme (PPS).

    Proposal k has ``components[k]`` Gaussians with their own centres and one shared width; its
    importances are a softmax over an attention pool of the reconstructor's PRED state when each
    Gaussian alone masks the video. All Gaussians of all proposals go through the reconstructor
    in one batched pass."""

    def __init__(self, config: GrounderConfig, embeddings: torch.Tensor | None = None):
        super().__init__(config, embeddings)
        c = self.config
        self.fc_mask = nn.ModuleList(nn.Linear(c.d_model, 2 * k) for k in c.components)
        if c.negatives == "learned":
            self.fc_neg = nn.Linear(c.d_model, self.num_proposals * c.n_neg * 2)
        self.pool = AttentionPool(c.d_model)

    def _widths(self, w: torch.Tensor) -> torch.Tensor:
        """(B, k) per-component width outputs -> one width per (sample, mixture), (B,)."""
        k = w.shape[1]
        if self.config.legacy_width_indexing and k > 1:
            return w.reshape(-1)[: w.shape[0]]  # the official code: sample b gets w[b // k, b % k]
        return w[:, 0]

    def proposals(self, h, inputs=None):
        c = self.config
        b = h.shape[0]
        comps, centres, widths = [], [], []
        for k, fc in zip(c.components, self.fc_mask):
            cw = torch.sigmoid(fc(h)).view(b, k, 2)
            width = self._widths(cw[..., 1])
            centres.append(cw[..., 0])
            widths.append(width)
            comps.append(gaussian_masks(cw[..., 0], width[:, None].expand(-1, k), c.grid, c.sigma, c.mask_kind))
        multi = [i for i, k in enumerate(c.components) if k > 1]
        importance = [torch.ones(b, k, device=h.device, dtype=h.dtype) for k in c.components]
        if multi and inputs is not None:
            stacked = torch.cat([comps[i] for i in multi], 1)  # (B, sum k, T'): one batched pass
            _, state = self.reconstruct(inputs, stacked, need_loss=False)
            scores = self.pool(state)
            start = 0
            for i in multi:
                k = c.components[i]
                importance[i] = torch.softmax(scores[:, start:start + k], -1)
                start += k
        masks = torch.stack([mixture_mask(g, a) for g, a in zip(comps, importance)], 1)
        segments = torch.stack([segments_by_rule(c.segment_rule, ce, w, a, c.shrink, c.segment_fraction)
                                for ce, w, a in zip(centres, widths, importance)], 1)
        return {"masks": masks, "components": comps, "centres": centres, "widths": torch.stack(widths, 1),
                "importance": importance, "segments": segments}

    def easy_negatives(self, out, best, progress):
        c = self.config
        rows = torch.arange(best.shape[0], device=best.device)
        if c.negatives == "learned":
            return _learned_negatives(self.fc_neg(out["h"]), self.num_proposals, c)[rows, best][:, None]
        centres = torch.stack([(a * ce).sum(-1) for a, ce in zip(out["importance"], out["centres"])], 1)
        left, right = complement_negatives(centres[rows, best], out["widths"][rows, best], progress,
                                           c.neg_gamma, c.grid, c.sigma)
        return torch.stack([left, right], 1)

    def regularisers(self, out):
        c = self.config
        terms = super().regularisers(out)
        zero = out["masks"].new_zeros(())
        pull, intra = zero, zero
        for k, ce, g in zip(c.components, out["centres"], out["components"]):
            if k > 1:
                pull = pull + L.pull_loss(ce).mean()
                intra = intra + L.push_loss(g, c.lambda_intra).mean()
        terms.update({"pull": pull, "intra": intra})
        return terms


# ---------------------------------------------------------------- constructors
def build_grounder(kind: str, config: GrounderConfig, embeddings: torch.Tensor | None = None) -> MaskedQueryGrounder:
    if kind == "cpl":
        return CPL(config, embeddings)
    if kind in ("gmp", "pps"):
        return GMP(config, embeddings)
    raise ConfigError(f"model kind must be 'cpl' or 'gmp', got '{kind}'")


def charades_config(**kw) -> GrounderConfig:
    """The paper's Charades-STA settings (I3D 1024-d, V = 1111, K = 7, sigma = 9)."""
    return GrounderConfig(**kw)


def activitynet_config(**kw) -> GrounderConfig:
    """The paper's ActivityNet Captions settings (C3D 500-d, V = 8000, K = 5, sigma 4 / 3)."""
    base = dict(vocab_size=8000, frame_dim=500, components=[1, 2, 3, 4, 5], sigma=4.0, n_neg=2, sigma_neg=3.0,
                alpha_ivc=1.0, alpha_pull=0.2, alpha_inter=0.1, alpha_intra=0.01, shrink=0.15)
    base.update(kw)
    return GrounderConfig(**base)


@register_model
def pps_charades(**kw) -> GMP:
    return GMP(charades_config(**kw))


@register_model
def pps_activitynet(**kw) -> GMP:
    return GMP(activitynet_config(**kw))


@register_model
def cpl_charades(**kw) -> CPL:
    base = dict(components=[1] * 8, share_transformer=True, negatives="complement", alpha_ivc=1.0,
                alpha_inter=5.0, lambda_inter=0.15)
    base.update(kw)
    return CPL(charades_config(**base))


def num_reconstructor_passes(config: GrounderConfig, kind: str) -> int:
    """Reconstructor sequences per training sample: proposals + importance + whole video + negatives."""
    k = len(config.components)
    importance = sum(n for n in config.components if n > 1) if kind != "cpl" else 0
    neg = 2 if config.negatives == "complement" else 1
    return k + importance + 1 + neg


__all__ = ["CPL", "GMP", "GrounderConfig", "MaskedQueryGrounder", "activitynet_config", "build_grounder",
           "charades_config", "cpl_charades", "num_reconstructor_passes", "pps_activitynet", "pps_charades",
           "sample_word_masks"]
