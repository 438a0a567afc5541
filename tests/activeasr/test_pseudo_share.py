"""The mechanism gate's measurement: the pseudo-labelled share (``kept``) the trainer logs per round."""

import math

import pytest
import torch

from reprozoo.activeasr.training import CTCTrainer, SpeechSet, TrainSettings
from reprozoo.runtime.registry import create_model


class FixedConfidence(torch.nn.Module):
    """Stand-in CTC model: every utterance decodes to a non-empty transcript; even batch positions with
    per-frame max posterior 0.8, odd ones 0.5 (so the confidence exp(mean log max) is 0.8 or 0.5)."""

    def __init__(self, frames: int = 12, vocab: int = 29):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.frames, self.vocab = frames, vocab

    def forward(self, feats, lengths):
        b = feats.shape[0]
        lp = torch.empty(self.frames, b, self.vocab)
        for i in range(b):
            p = 0.8 if i % 2 == 0 else 0.5
            probs = torch.full((self.frames, self.vocab), (1 - p) / (self.vocab - 1))
            probs[torch.arange(self.frames), torch.tensor([1, 0] * (self.frames // 2))] = p  # "a" blank "a" ...
            lp[:, i] = probs.log()
        return lp + 0 * self.w, torch.full((b,), self.frames, dtype=torch.long)


def _data(n: int = 12) -> SpeechSet:
    g = torch.Generator().manual_seed(0)
    return SpeechSet([0.1 * torch.randn(4000, generator=g) for _ in range(n)], ["on off"] * n,
                     [str(i) for i in range(n)], [0.25] * n)


@pytest.mark.parametrize("tau, expected", [(0.65, 0.5), (0.4, 1.0), (0.9, 0.0)])
def test_kept_is_the_share_of_the_unlabelled_batch_above_tau(tau, expected):
    torch.set_num_threads(1)
    tr = CTCTrainer(FixedConfidence(), TrainSettings(batch_size=2, mu=2, tau=tau, ramp_frac=0.0), total_steps=3,
                    generator=torch.Generator().manual_seed(0))
    out = tr.train(_data(), [0, 1], list(range(2, 12)), 3, "cr")
    assert out["kept"] == pytest.approx(expected)  # 4 unlabelled per step: 2 of them at confidence 0.8
    assert math.isfinite(out["sup"])


def test_before_start_step_cr_is_exactly_supervised_training():
    """With ``start_step`` after round 0 (the quick / full presets), the CR arms' round 0 draws the same
    batches and reaches the same weights as a supervised arm's: their round-0 CERs are identical."""
    torch.set_num_threads(1)
    data = _data()
    states, logs = [], []
    for mode in ("none", "cr"):
        torch.manual_seed(0)
        tr = CTCTrainer(create_model("ctc_tcn_tiny"), TrainSettings(batch_size=2, mu=1, tau=0.0, start_step=3),
                        total_steps=6, generator=torch.Generator().manual_seed(0))
        logs.append(tr.train(data, [0, 1, 2], list(range(3, 12)), 3, mode))
        states.append({k: v.clone() for k, v in tr.model.state_dict().items()})
        after = tr.train(data, [0, 1, 2], list(range(3, 12)), 2, mode)  # round 1: CR starts
        if mode == "cr":
            assert after["kept"] > 0
    assert logs[0] == logs[1] and logs[1]["kept"] == 0.0
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
