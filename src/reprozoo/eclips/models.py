"""Base learners, the ECLIPS ensemble, MC dropout and predictive uncertainty.

* :class:`SmallCNN`: a tiny conv backbone for CPU demos (conv3x3 w-2w-4w, BN, ReLU, max-pool, GAP).
* :class:`Backbone`: wraps any image model (reprozoo, timm, torchvision, or a CLIP visual
  encoder via :func:`clip_visual_encoder`) so it returns one feature vector per image.
* :class:`FASHead`: the FLIP-style embedder + classifier: Linear(d, 512) (weights N(0, 0.005),
  bias 0.1), ReLU, Dropout(0.5), optional feature normalisation (divide by sqrt(||f||) * sqrt(2)) and
  Linear(512, 2) (weights N(0, 0.01), bias 0) whose weight is L2-normalised along the class axis
  before every forward when normalising.
* :class:`BaseLearner` = backbone + head -> 2 logits (index 1 = live).
* :class:`Ensemble`: K members, decision fusion ``p(y|x) = sum_k w_k p_k(y|x)`` with
  ``w = softmax(alpha / tau)`` (``alpha`` learnable, initialised 0 = uniform), fixed uniform weights
  (``fusion="mean"``) or an input-dependent gate (``fusion="gate"``: MLP 2K -> 16 -> K on the
  member logits). ``forward`` returns the *log* of the fused probabilities, so
  ``softmax(model(x))`` is the fused probability for a single learner and for an ensemble alike.
* :func:`mc_dropout`: a context manager that puts the model in eval mode and re-enables only its
  Dropout modules (BatchNorm keeps its running statistics).
* :class:`GroupedMembers`: K CNN members as one grouped-convolution network (inference).
* :func:`predict`: predictive mean and uncertainty over T MC-dropout passes x K members
  (variance of the member-sample live probabilities, or BALD mutual information).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import CheckpointError, ConfigError, DataError
from reprozoo.runtime.extras import require
from reprozoo.runtime.registry import register_model
from reprozoo.runtime.seeding import generator_scope

FUSIONS = ("learned", "mean", "gate")
UNCERTAINTIES = ("variance", "bald")


# ------------------------------------------------------------------------------------ backbones
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


# ------------------------------------------------------------------------------------ head
class FASHead(nn.Module):
    """Embedder (Linear-ReLU-Dropout) + optional FLIP feature normalisation + 2-way classifier."""

    def __init__(self, in_features: int, embed_dim: int = 512, dropout: float = 0.5, feature_norm: bool = True):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        self.embed = nn.Linear(in_features, embed_dim)
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(embed_dim, 2)
        self.feature_norm = feature_norm
        nn.init.normal_(self.embed.weight, 0.0, 0.005)
        nn.init.constant_(self.embed.bias, 0.1)
        nn.init.normal_(self.classifier.weight, 0.0, 0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        z = self.drop(F.relu(self.embed(feat)))
        if not self.feature_norm:
            return self.classifier(z)
        z = z / (z.norm(p=2, dim=1, keepdim=True).clamp_min(1e-12).sqrt() * math.sqrt(2.0))
        w = F.normalize(self.classifier.weight, p=2, dim=0)  # along the class axis
        return F.linear(z, w, self.classifier.bias)


class BaseLearner(nn.Module):
    """Backbone + :class:`FASHead`; ``forward(x)`` -> 2 logits (index 1 = live)."""

    def __init__(self, backbone: nn.Module, embed_dim: int = 512, dropout: float = 0.5, feature_norm: bool = True):
        super().__init__()
        self.backbone = backbone
        self.head = FASHead(int(backbone.num_features), embed_dim, dropout, feature_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


# ------------------------------------------------------------------------------------ ensemble
class Ensemble(nn.Module):
    """K base learners with decision fusion; ``forward(x)`` -> log fused probabilities (B, 2)."""

    def __init__(self, members: Sequence[nn.Module], fusion: str = "learned", tau: float = 1.0):
        super().__init__()
        if len(members) < 1:
            raise ConfigError("an ensemble needs at least one member")
        if fusion not in FUSIONS:
            raise ConfigError(f"fusion must be one of {', '.join(FUSIONS)}, got '{fusion}'")
        if not tau > 0:
            raise ConfigError(f"tau must be > 0, got {tau}")
        self.members = nn.ModuleList(members)
        self.fusion, self.tau = fusion, float(tau)
        k = len(members)
        if fusion == "learned":
            self.alpha = nn.Parameter(torch.zeros(k))
        else:
            self.register_buffer("alpha", torch.zeros(k))
        self.gate = nn.Sequential(nn.Linear(2 * k, 16), nn.ReLU(), nn.Linear(16, k)) if fusion == "gate" else None

    @property
    def k(self) -> int:
        return len(self.members)

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(K, B, 2)."""
        return torch.stack([m(x) for m in self.members])

    def weights(self, logits: torch.Tensor | None = None) -> torch.Tensor:
        """Fusion weights: (K,) for learned/mean fusion, (B, K) for the gate."""
        if self.gate is not None:
            if logits is None:
                raise ValueError("the gate's weights depend on the input; pass member logits")
            return torch.softmax(self.gate(logits.permute(1, 0, 2).flatten(1)) / self.tau, dim=1)
        return torch.softmax(self.alpha / self.tau, dim=0)

    def fuse(self, logits: torch.Tensor) -> torch.Tensor:
        """Log of ``sum_k w_k softmax(logits_k)`` computed stably: (B, 2)."""
        w = self.weights(logits)
        logw = torch.log(w).T[:, :, None] if w.ndim == 2 else torch.log(w)[:, None, None]
        return torch.logsumexp(logw + torch.log_softmax(logits, dim=-1), dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.member_logits(x))


def ensemble_loss(model: Ensemble, x: torch.Tensor, y: torch.Tensor, *, lambda_mem: float = 1.0,
                  beta_w: float = 0.0, sample_weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """NLL of the fused mixture + ``lambda_mem`` x mean member cross-entropy (keeps every member
    competent so the fusion weights do not collapse) - ``beta_w`` x entropy of the weights."""
    logits = model.member_logits(x)
    fused = model.fuse(logits)
    sw = sample_weight if sample_weight is not None else torch.ones_like(y, dtype=fused.dtype)
    sw = sw / sw.mean()
    nll = (F.nll_loss(fused, y, reduction="none") * sw).mean()
    member = torch.stack([(F.cross_entropy(lg, y, reduction="none") * sw).mean() for lg in logits]).mean()
    loss = nll + lambda_mem * member
    w = model.weights(logits)
    entropy = -(w * torch.log(w.clamp_min(1e-12))).sum(-1).mean()
    if beta_w:
        loss = loss - beta_w * entropy
    return {"loss": loss, "nll": nll.detach(), "member_ce": member.detach(), "w_entropy": entropy.detach()}


# ------------------------------------------------------------------------------------ MC dropout
_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


@contextlib.contextmanager
def mc_dropout(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Eval mode with only the Dropout modules stochastic (BatchNorm stays in eval mode); the
    previous train/eval state of every module is restored on exit."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    if enabled:
        for m in model.modules():
            if isinstance(m, _DROPOUTS):
                m.train()
    try:
        yield model
    finally:
        for m, mode in modes.items():
            m.training = mode


def member_probs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Live probabilities per member, (K, B); a single learner counts as K = 1."""
    if isinstance(model, Ensemble):
        return torch.softmax(model.member_logits(x), dim=-1)[..., 1]
    return torch.softmax(model(x), dim=-1)[None, :, 1]


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, mc_samples: int = 0, uncertainty: str = "variance",
            generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """``{"prob": (B,), "uncertainty": (B,), "samples": (T, K, B)}``.

    ``mc_samples = 0``: deterministic (eval mode), ``prob`` is the fused probability, uncertainty
    the spread over the K members (0 for a single learner). ``mc_samples = T > 0``: T passes with
    dropout on; ``prob = (1/T) sum_t sum_k w_k p_k^(t)``; uncertainty = variance of the T*K member
    samples (``"variance"``) or the mutual information between prediction and sample (``"bald"``).
    ``generator`` makes the dropout masks reproducible without touching the global RNG."""
    if uncertainty not in UNCERTAINTIES:
        raise ConfigError(f"uncertainty must be one of {', '.join(UNCERTAINTIES)}, got '{uncertainty}'")
    if mc_samples < 0:
        raise ConfigError(f"mc_samples must be >= 0, got {mc_samples}")
    t = max(1, mc_samples)
    samples, fused = [], []
    with mc_dropout(model, enabled=mc_samples > 0), generator_scope(generator):
        for _ in range(t):
            if isinstance(model, Ensemble):
                logits = model.member_logits(x)
                samples.append(torch.softmax(logits, -1)[..., 1])
                fused.append(model.fuse(logits).exp()[:, 1])
            else:
                p = torch.softmax(model(x), -1)[:, 1]
                samples.append(p[None])
                fused.append(p)
    s = torch.stack(samples)  # (T, K, B)
    if not bool(torch.isfinite(s).all()):
        raise DataError("the model's probabilities are not finite (NaN or inf in the input frames or diverged "
                        "weights); check the frames and the checkpoint")
    prob = torch.stack(fused).mean(0).clamp(0, 1)
    flat = s.reshape(-1, s.shape[-1])
    if uncertainty == "variance":
        u = flat.var(0, unbiased=False)
    else:
        u = _entropy(flat.mean(0)) - _entropy(flat).mean(0)
    return {"prob": prob, "uncertainty": u.clamp_min(0), "samples": s}


def _entropy(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(p * p.log() + (1 - p) * (1 - p).log())


# ------------------------------------------------------------------------------------ batched members
def stacked_forward(members: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Eval-mode logits of identical-architecture members in one vectorised pass
    (``torch.func.stack_module_state`` + ``vmap``): (K, B, 2), equal to looping over the members."""
    from torch.func import functional_call, stack_module_state, vmap

    params, buffers = stack_module_state(list(members))
    base = members[0]

    def one(p: dict[str, Any], b: dict[str, Any], inp: torch.Tensor) -> torch.Tensor:
        return functional_call(base, (p, b), (inp,))

    return vmap(one, in_dims=(0, 0, None))(params, buffers, x)


class GroupedMembers(nn.Module):
    """K :class:`SmallCNN` base learners fused into one network for inference: the first conv
    concatenates the members' filters, the later convs are grouped (``groups=K``), BatchNorm runs
    over the K x C channels with the members' running statistics, and the heads are batched matrix
    products. ``forward(x)`` -> (K, B, 2), equal to looping over the members in eval mode.
    A snapshot: build it again after the members change."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        members = list(members)
        if not members or not all(isinstance(m, BaseLearner) and isinstance(m.backbone, Backbone)
                                  and isinstance(m.backbone.model, SmallCNN) for m in members):
            raise ConfigError("GroupedMembers needs SmallCNN base learners (see base_learner); "
                              "use stacked_forward for other members")
        self.k = k = len(members)
        stages = [list(m.backbone.model.features) for m in members]
        layers: list[nn.Module] = []
        first = True
        for i, mod in enumerate(stages[0]):
            if isinstance(mod, nn.Conv2d):
                w = torch.cat([s[i].weight.detach() for s in stages])
                conv = nn.Conv2d(mod.in_channels * (1 if first else k), mod.out_channels * k, mod.kernel_size,
                                 padding=mod.padding, bias=False, groups=1 if first else k)
                conv.weight.data.copy_(w)
                layers.append(conv)
                first = False
            elif isinstance(mod, nn.BatchNorm2d):
                bn = nn.BatchNorm2d(mod.num_features * k, eps=mod.eps)
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(bn, name).data.copy_(torch.cat([getattr(s[i], name).detach() for s in stages]))
                layers.append(bn)
            else:
                layers.append(copy.deepcopy(mod))  # ReLU / max-pool: no parameters
        self.features = nn.Sequential(*layers)
        heads = [m.head for m in members]
        self.feature_norm = heads[0].feature_norm
        self.register_buffer("w1", torch.stack([h.embed.weight.detach() for h in heads]))  # (K, E, D)
        self.register_buffer("b1", torch.stack([h.embed.bias.detach() for h in heads]))  # (K, E)
        w2 = torch.stack([h.classifier.weight.detach() for h in heads])  # (K, 2, E)
        self.register_buffer("w2", F.normalize(w2, p=2, dim=1) if self.feature_norm else w2)
        self.register_buffer("b2", torch.stack([h.classifier.bias.detach() for h in heads]))  # (K, 2)
        super().train(False)

    def train(self, mode: bool = True) -> GroupedMembers:
        if mode:
            raise ConfigError("GroupedMembers is for inference only (it holds a snapshot of the members)")
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x).mean((2, 3))  # (B, K * D)
        f = f.view(f.shape[0], self.k, -1).transpose(0, 1)  # (K, B, D)
        z = F.relu(torch.baddbmm(self.b1[:, None], f, self.w1.transpose(1, 2)))  # (K, B, E)
        if self.feature_norm:
            z = z / (z.norm(p=2, dim=2, keepdim=True).clamp_min(1e-12).sqrt() * math.sqrt(2.0))
        return torch.baddbmm(self.b2[:, None], z, self.w2.transpose(1, 2))  # (K, B, 2)


# ------------------------------------------------------------------------------------ constructors
def base_learner(width: int = 32, embed_dim: int = 64, dropout: float = 0.5, feature_norm: bool = True,
                 in_chans: int = 3) -> BaseLearner:
    """The CPU base learner: :class:`SmallCNN` (width w) + a ``4w -> embed_dim -> 2`` head."""
    return BaseLearner(Backbone(SmallCNN(width, in_chans), strip_head=False), embed_dim, dropout, feature_norm)


@register_model
def eclips_cnn_small(width: int = 32, embed_dim: int = 64, drop_rate: float = 0.5, feature_norm: bool = True,
                     in_chans: int = 3) -> BaseLearner:
    """Single CPU base learner (conv 32-64-128, embedder 128 -> 64, Dropout 0.5, 64 -> 2)."""
    return base_learner(width, embed_dim, drop_rate, feature_norm, in_chans)


@register_model
def eclips_cnn_ensemble(k: int = 4, width: int = 32, embed_dim: int = 64, drop_rate: float = 0.5,
                        feature_norm: bool = True, fusion: str = "learned", tau: float = 1.0,
                        in_chans: int = 3) -> Ensemble:
    """ECLIPS-lite: K CPU base learners with learnable softmax decision fusion (temperature ``tau``)."""
    return Ensemble([base_learner(width, embed_dim, drop_rate, feature_norm, in_chans) for _ in range(k)],
                    fusion=fusion, tau=tau)
