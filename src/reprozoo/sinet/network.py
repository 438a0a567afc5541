"""The SINet network (Park et al., WACV 2020): S2-module encoder (:class:`SINetEncoder`) and the
information blocking decoder (:class:`SINet`). The registered constructors are in
:mod:`reprozoo.sinet.models`.
"""

from __future__ import annotations

import torch
from torch import nn

from reprozoo.errors import ConfigError
from reprozoo.sinet.blocks import BN_EPS, BR, CBR, S2Module, SEDSConv, upsample_to

# (kernel, pool) of [branch A, branch B] for the two level-2 and eight level-3 S2-modules
SINET_CONFIG: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (
    ((3, 1), (5, 1)), ((3, 1), (3, 1)),
    ((3, 1), (5, 1)), ((3, 1), (3, 1)), ((5, 1), (3, 2)), ((5, 2), (3, 4)),
    ((3, 1), (3, 1)), ((5, 1), (5, 1)), ((3, 2), (3, 4)), ((3, 1), (5, 2)),
)
DECODERS = ("blocking", "plain", "none")


def _init_kwargs(num_classes, p, q, chnn, config, pooling) -> dict:
    """Constructor arguments as JSON values (``config`` only when it is not the paper's)."""
    kwargs = {"num_classes": int(num_classes), "p": int(p), "q": int(q), "chnn": int(chnn), "pooling": bool(pooling)}
    plain = [[list(branch) for branch in module] for module in config]
    if plain != [[list(branch) for branch in module] for module in SINET_CONFIG]:
        kwargs["config"] = plain
    return kwargs


class SINetEncoder(nn.Module):
    """Levels 1-3 of SINet and the 1x1 classifier on the 1/8-resolution features.

    ``forward`` returns the coarse logits E; ``forward_features`` also returns x1 (1/2) and x2
    (1/4, last level-2 module), which the decoder needs.
    """

    def __init__(self, num_classes: int = 2, p: int = 2, q: int = 8, chnn: int = 1,
                 config=SINET_CONFIG, pooling: bool = True):
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
        if len(config) < p + q:
            raise ConfigError(f"config lists {len(config)} S2-modules but p + q = {p + q}")
        given = config
        if not pooling:  # ablation: same weights, every branch at full resolution
            config = tuple(((k1, 1), (k2, 1)) for (k1, _), (k2, _) in config)
        if isinstance(chnn, bool) or not isinstance(chnn, int) or chnn < 1:
            raise ConfigError(f"chnn must be an integer >= 1, got {chnn!r}")
        self.init_kwargs = _init_kwargs(num_classes, p, q, chnn, given, pooling)
        # the official widths: level 2 (and level3_0's output) 48 + 4(chnn - 1), level 3 96 + 4(chnn - 1)
        c2, c3 = 48 + 4 * (chnn - 1), 96 + 4 * (chnn - 1)
        self.num_classes = num_classes
        self.level1 = CBR(3, 12, 3, 2)
        self.level2_0 = SEDSConv(12, 16, 2, reduction=1)
        self.level2 = nn.Sequential(*[S2Module(16 if i == 0 else c2, c2, config[i], residual=i > 0)
                                      for i in range(p)])
        self.br2 = BR(16 + c2)
        self.level3_0 = SEDSConv(16 + c2, c2, 2, reduction=2)
        self.level3 = nn.Sequential(*[S2Module(c2 if i == 0 else c3, c3, config[p + i], residual=i > 0)
                                      for i in range(q)])
        self.br3 = BR(c2 + c3)
        self.classifier = nn.Conv2d(c2 + c3, num_classes, 1, bias=False)
        self.skip_channels = c2

    @property
    def reprozoo_spec(self) -> dict:
        """The registered name and constructor arguments (what a checkpoint stores)."""
        return {"name": "sinet_encoder", "kwargs": dict(self.init_kwargs)}

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x1 = self.level1(x)
        x2_0 = self.level2_0(x1)
        x2 = self.level2(x2_0)
        x3_0 = self.level3_0(self.br2(torch.cat([x2_0, x2], 1)))
        x3 = self.level3(x3_0)
        e = self.classifier(self.br3(torch.cat([x3_0, x3], 1)))
        return e, x1, x2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]


def confidence(logits: torch.Tensor, single_logit: bool | None = None) -> torch.Tensor:
    """Per-pixel confidence (B, 1, H, W): max softmax probability, or max(s, 1 - s) for a single
    logit (softmax over one channel is identically 1, which would close the gate everywhere)."""
    if single_logit is None:
        single_logit = logits.shape[1] == 1
    if single_logit:
        s = torch.sigmoid(logits)
        return torch.maximum(s, 1 - s)
    return torch.softmax(logits, dim=1).amax(dim=1, keepdim=True)


class SINet(nn.Module):
    """Full SINet. ``decoder``: ``"blocking"`` (gate = 1 - confidence of the coarse map, the paper),
    ``"plain"`` (gate = 1, an ordinary additive skip) or ``"none"`` (no skip). All three have the
    same parameters, so the ablation is parameter-identical.
    """

    def __init__(self, num_classes: int = 2, p: int = 2, q: int = 8, chnn: int = 1,
                 decoder: str = "blocking", config=SINET_CONFIG, pooling: bool = True):
        super().__init__()
        if decoder not in DECODERS:
            raise ConfigError(f"decoder must be one of {', '.join(DECODERS)}, got '{decoder}'")
        self.decoder = decoder
        self.num_classes = num_classes
        self.encoder = SINetEncoder(num_classes, p, q, chnn, config, pooling)
        self.bn_3 = nn.BatchNorm2d(num_classes, eps=BN_EPS)
        self.skip = CBR(self.encoder.skip_channels, num_classes, 1)
        self.bn_2 = nn.BatchNorm2d(num_classes, eps=BN_EPS)
        self.head = nn.Conv2d(num_classes, num_classes, 3, 1, 1, bias=False)

    @property
    def reprozoo_spec(self) -> dict:
        """The registered name and constructor arguments (what a checkpoint stores)."""
        return {"name": "sinet", "kwargs": {**self.encoder.init_kwargs, "decoder": self.decoder}}

    def forward_decoder(self, e: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor,
                        out_size) -> tuple[torch.Tensor, torch.Tensor]:
        d1 = self.bn_3(upsample_to(e, x2.shape[-2:]))
        if self.decoder == "blocking":
            gate = 1 - confidence(d1, self.num_classes == 1)
        elif self.decoder == "plain":
            gate = torch.ones_like(d1[:, :1])
        else:
            gate = torch.zeros_like(d1[:, :1])
        y = d1 if self.decoder == "none" else self.skip(x2) * gate + d1
        d2 = self.bn_2(upsample_to(y, x1.shape[-2:]))
        return self.head(upsample_to(d2, out_size)), gate

    def forward_with_gate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, C, H, W) and the information blocking map (B, 1, H/4, W/4)."""
        e, x1, x2 = self.encoder.forward_features(x)
        return self.forward_decoder(e, x1, x2, x.shape[-2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_gate(x)[0]
