"""A small convolutional + bidirectional-GRU CTC acoustic model over characters.

    log-mel (B, T, 40) -> Conv2d(1, 32, 3x3, stride 2) + ReLU -> Conv2d(32, 32, 3x3, stride 2) + ReLU
    -> Linear(32 x 10, 192) -> BiGRU (2 layers, 128 per direction, dropout 0.1) -> Linear(256, 29)

Output: (T/4, B, 29) log-posteriors (CTC blank = 0) and their lengths. Registered sizes:
``ctc_crnn_small`` (the model above, 622,397 parameters) and ``ctc_crnn_tiny`` (16 conv channels,
96-wide projection, one BiGRU layer of 96 per direction) for 2-core CPU experiments.
The paper's own model is not described in the abstract; this one is sized for a small command
vocabulary and CPU training. Dropout sits after the projection and before the classifier (and
between GRU layers), so MC-dropout acquisition has stochastic units in every size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.activeasr.text import VOCAB_SIZE
from reprozoo.runtime.registry import register_model


def conv_out_length(lengths: torch.Tensor, n_convs: int = 2) -> torch.Tensor:
    """Frames after ``n_convs`` 3x3 convolutions with stride 2 and padding 1."""
    for _ in range(n_convs):
        lengths = (lengths - 1) // 2 + 1
    return lengths


class CTCConvBiGRU(nn.Module):
    def __init__(self, n_mels: int = 40, channels: int = 32, proj: int = 192, hidden: int = 128, layers: int = 2,
                 drop_rate: float = 0.1, num_classes: int = VOCAB_SIZE):
        super().__init__()
        self.n_mels, self.num_classes = n_mels, num_classes
        self.conv1 = nn.Conv2d(1, channels, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        freq = conv_out_length(torch.tensor(n_mels)).item()
        self.proj = nn.Linear(channels * freq, proj)
        self.drop = nn.Dropout(drop_rate)
        self.rnn = nn.GRU(proj, hidden, num_layers=layers, bidirectional=True, batch_first=True,
                          dropout=drop_rate if layers > 1 else 0.0)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(2 * hidden, num_classes)

    def forward_features(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, n_mels) -> ((B, T', 2 * hidden) encoder states, T' lengths)."""
        x = F.relu(self.conv2(F.relu(self.conv1(feats.unsqueeze(1)))))  # (B, C, T', F')
        b, c, t, f = x.shape
        x = self.drop(F.relu(self.proj(x.permute(0, 2, 1, 3).reshape(b, t, c * f))))
        out_len = conv_out_length(lengths).clamp(min=1, max=t)
        packed = nn.utils.rnn.pack_padded_sequence(x, out_len.cpu(), batch_first=True, enforce_sorted=False)
        y, _ = self.rnn(packed)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=t)
        return y, out_len

    def forward_head(self, states: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.head(self.head_drop(states)), dim=-1).transpose(0, 1)  # (T', B, V)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states, out_len = self.forward_features(feats, lengths)
        return self.forward_head(states), out_len


@register_model
def ctc_crnn_small(**kw) -> CTCConvBiGRU:
    """Conv x2 + 2-layer BiGRU 128/dir CTC model (622,397 parameters at 40 mel bins)."""
    return CTCConvBiGRU(**{"channels": 32, "proj": 192, "hidden": 128, "layers": 2, **kw})


@register_model
def ctc_crnn_tiny(**kw) -> CTCConvBiGRU:
    """Conv x2 (16 channels) + 1-layer BiGRU 96/dir CTC model for 2-core CPU runs."""
    return CTCConvBiGRU(**{"channels": 16, "proj": 96, "hidden": 96, "layers": 1, **kw})


class CTCConvTCN(nn.Module):
    """Convolution-only CTC model: the same 2-D front end, then dilated 1-D convolutions instead of
    the BiGRU (no recurrence, so it trains several times faster on a CPU)."""

    def __init__(self, n_mels: int = 40, channels: int = 16, width: int = 128, dilations: tuple[int, ...] = (1, 2, 4),
                 kernel: int = 5, drop_rate: float = 0.1, num_classes: int = VOCAB_SIZE):
        super().__init__()
        self.n_mels, self.num_classes = n_mels, num_classes
        self.conv1 = nn.Conv2d(1, channels, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        freq = conv_out_length(torch.tensor(n_mels)).item()
        self.proj = nn.Linear(channels * freq, width)
        self.drop = nn.Dropout(drop_rate)
        self.blocks = nn.ModuleList(nn.Conv1d(width, width, kernel, padding=d * (kernel // 2), dilation=d)
                                    for d in dilations)
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in dilations)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(width, num_classes)

    def forward_features(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.conv2(F.relu(self.conv1(feats.unsqueeze(1)))))
        b, c, t, f = x.shape
        x = self.drop(F.relu(self.proj(x.permute(0, 2, 1, 3).reshape(b, t, c * f))))
        out_len = conv_out_length(lengths).clamp(min=1, max=t)
        mask = (torch.arange(t)[None, :] < out_len[:, None]).unsqueeze(-1).to(x.dtype)
        for conv, norm in zip(self.blocks, self.norms):
            y = conv((x * mask).transpose(1, 2)).transpose(1, 2)
            x = x + self.drop(F.relu(norm(y)))
        return x * mask, out_len

    def forward_head(self, states: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.head(self.head_drop(states)), dim=-1).transpose(0, 1)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states, out_len = self.forward_features(feats, lengths)
        return self.forward_head(states), out_len


@register_model
def ctc_tcn_tiny(**kw) -> CTCConvTCN:
    """Conv x2 (16 channels) + three dilated Conv1d residual blocks (128 wide) CTC model."""
    return CTCConvTCN(**kw)
