"""Settings of the CPL and GMP/PPS grounding models (:class:`GrounderConfig`).

Four details of the official PPS code (github.com/sunoh-kim/pps) are options here. Three are
plain design choices and follow the official code by default (``official=True``); setting one of
them to ``False`` (or ``official=False`` for all three) gives the variant reprozoo used before:

* ``zero_start_position``: the start token gets a zero positional vector (the official
  sinusoidal table has ``padding_idx=0``, which zeroes row 0) instead of sin/cos of position 0;
* ``pad_generator_pred``: the generator's PRED_v token (appended after the last clip) is a padded
  key: no video token attends to it, itself included; it still reads the clips as a query;
* ``pad_reconstructor_pred``: the reconstructor's PRED_q slot (after the last word) is a padded
  key in the same way; its output is still the state the importance pooling reads.

The fourth is a bug of the official code and is fixed by default; ``legacy_eos_cut=True``
reproduces it: the official loss drops the end-of-sentence target of the longest sentences of a
batch only, so a sample's reconstruction loss depends on the rest of its batch. The other official
bug kept as an option is ``legacy_width_indexing`` (see :class:`reprozoo.gmp.models.GMP`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reprozoo.errors import ConfigError, DataError
from reprozoo.runtime.checks import finite_tensor

OFFICIAL_CHOICES = ("zero_start_position", "pad_generator_pred", "pad_reconstructor_pred")


@dataclass
class GrounderConfig:
    """Architecture and loss settings shared by CPL and GMP/PPS (defaults: the paper's Charades-STA)."""

    vocab_size: int = 1111  # words (ids 1..V); id 0 is pad / end of sentence
    word_dim: int = 300
    frame_dim: int = 1024
    d_model: int = 256
    heads: int = 4
    layers: int = 3
    ffn: int = 512
    dropout: float = 0.1
    grid: int = 50  # T': proposal grid points (= reconstructor video tokens)
    mask_kind: str = "gauss"  # gauss | laplace
    sigma: float = 9.0  # s = w / sigma
    components: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7])  # per proposal (CPL: all 1)
    share_transformer: bool = False  # CPL: one DualTransformer for both roles; PPS: two
    # negatives: "learned" (PPS: n_neg learnable Gaussians per proposal) | "complement" (CPL: left/right)
    negatives: str = "learned"
    n_neg: int = 3
    sigma_neg: float = 9.0
    neg_gamma: float = 0.5  # CPL's complement schedule exponent
    mask_ratio: float = 1 / 3
    smoothing: float = 0.1
    margin_hard: float = 0.1
    margin_easy: float = 0.15
    alpha_ivc: float = 3.0
    alpha_pull: float = 5.0
    alpha_intra: float = 0.001
    alpha_inter: float = 1.0
    lambda_intra: float = 0.15
    lambda_inter: float = 0.15
    shrink: float = 0.0  # gamma of the segment rule (0.15 on ActivityNet)
    # mask -> segment: "centre" (the paper's importance-weighted centre +- w/2) | "density" (the span
    # where the mixture is >= segment_fraction of its peak; see reprozoo.gmp.segment_rules)
    segment_rule: str = "centre"
    segment_fraction: float = 0.5
    legacy_width_indexing: bool = False  # reproduce the official code's batch-dependent width bug
    legacy_eos_cut: bool = False  # reproduce the official batch-dependent end-of-sentence target (bug)
    official: bool = True  # the official code's choices for the three options below when they are None
    zero_start_position: bool | None = None  # official: the start token has no positional vector
    pad_generator_pred: bool | None = None  # official: the generator's PRED_v token is a padded key
    pad_reconstructor_pred: bool | None = None  # official: the reconstructor's PRED_q slot is a padded key

    def choice(self, name: str) -> bool:
        """The effective value of one of :data:`OFFICIAL_CHOICES` (``None`` follows ``official``)."""
        if name not in OFFICIAL_CHOICES:
            raise ConfigError(f"unknown official-code choice '{name}'; one of {list(OFFICIAL_CHOICES)}")
        value = getattr(self, name)
        return bool(self.official if value is None else value)

    def validate(self) -> None:
        ints = {"vocab_size": 1, "word_dim": 1, "frame_dim": 1, "d_model": 1, "heads": 1, "layers": 1,
                "ffn": 1, "grid": 2, "n_neg": 1}
        for name, low in ints.items():
            if getattr(self, name) < low:
                raise ConfigError(f"model.{name} must be >= {low}, got {getattr(self, name)}")
        if self.d_model % self.heads:
            raise ConfigError(f"model.d_model ({self.d_model}) must be divisible by model.heads ({self.heads})")
        if not self.components or any(k < 1 for k in self.components):
            raise ConfigError(f"model.components must list >= 1 Gaussian per proposal, got {self.components}")
        if self.mask_kind not in ("gauss", "laplace"):
            raise ConfigError(f"model.mask_kind must be 'gauss' or 'laplace', got '{self.mask_kind}'")
        if self.segment_rule not in ("centre", "density"):
            raise ConfigError(f"model.segment_rule must be 'centre' or 'density', got '{self.segment_rule}'")
        if not 0 < self.segment_fraction < 1:
            raise ConfigError(f"model.segment_fraction must be in (0, 1), got {self.segment_fraction}")
        if self.negatives not in ("learned", "complement"):
            raise ConfigError(f"model.negatives must be 'learned' or 'complement', got '{self.negatives}'")
        for name in ("sigma", "sigma_neg"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"model.{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.mask_ratio <= 1:
            raise ConfigError(f"model.mask_ratio must be in (0, 1], got {self.mask_ratio}")
        if not 0 <= self.dropout < 1 or not 0 <= self.smoothing < 1 or not 0 <= self.shrink < 1:
            raise ConfigError("model.dropout, model.smoothing and model.shrink must be in [0, 1)")
        for name in ("margin_hard", "margin_easy", "alpha_ivc", "alpha_pull", "alpha_intra", "alpha_inter",
                     "lambda_intra", "lambda_inter", "neg_gamma"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name} must be >= 0, got {getattr(self, name)}")
        for name in OFFICIAL_CHOICES:
            if getattr(self, name) not in (None, True, False):
                raise ConfigError(f"model.{name} must be true, false or null, got {getattr(self, name)!r}")


def check_batch(batch: dict, config: GrounderConfig) -> None:
    """A model input batch: finite (B, T >= 1, frame_dim) video features, (B, L) integer word ids
    in 0..vocab_size (0 = padding) and one length in 1..L per sentence."""
    import torch

    v = batch["video"]
    if v.ndim != 3 or v.shape[-1] != config.frame_dim or v.shape[1] < 1:
        raise ConfigError(f"video features must be (B, T>=1, {config.frame_dim}), got {tuple(v.shape)}")
    finite_tensor("video features", v)
    w, n = batch["words"], config.vocab_size
    if w.dtype.is_floating_point or w.dtype == torch.bool or w.ndim != 2 or w.shape[0] != v.shape[0]:
        raise DataError(f"words must be (B, L) integer ids, got {w.dtype} of shape {tuple(w.shape)}")
    if w.numel() and (int(w.min()) < 0 or int(w.max()) > n):
        bad = int(w.max()) if int(w.max()) > n else int(w.min())
        raise DataError(f"word id {bad} is outside the vocabulary: ids are 1..{n} (0 = padding)")
    lengths = batch["lengths"]
    if lengths.shape != (w.shape[0],) or (w.shape[1] and (int(lengths.min()) < 1 or int(lengths.max()) > w.shape[1])):
        raise DataError(f"lengths must give one length in 1..{w.shape[1]} per sentence, got {lengths.tolist()[:8]}")
