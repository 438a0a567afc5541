"""CTCTrainer(out_dir=..., resume=...): the state after every train call, the output-folder rule, and a
trainer restored from its folder that continues as the one never stopped."""

import pytest
import torch

from reprozoo import create_model
from reprozoo.activeasr.training import CTCTrainer, SpeechSet, TrainSettings
from reprozoo.errors import ConfigError, OutputExistsError

SETTINGS = TrainSettings(batch_size=2, mu=1, tau=0.0, ramp_frac=0.0, teacher="ema", ema_decay=0.9)


def _data(n=6):
    g = torch.Generator().manual_seed(0)
    waves = [0.1 * torch.randn(1600 + 400 * (i % 3), generator=g) for i in range(n)]
    texts = ["call anna" if i % 2 else "play jazz" for i in range(n)]
    return SpeechSet(waves, texts, [str(i) for i in range(n)], [w.numel() / 16000 for w in waves])


def _trainer(out_dir=None, resume=False, seed=0, settings=SETTINGS, init=0):
    torch.manual_seed(init)
    return CTCTrainer(create_model("ctc_tcn_tiny"), settings, total_steps=2,
                      generator=torch.Generator().manual_seed(seed), out_dir=out_dir, resume=resume)


def _rounds(trainer, data, calls):
    return [trainer.train(data, [0, 1, 2], [3, 4, 5], steps=1, mode="cr") for _ in range(calls)]


def test_a_trainer_restored_from_its_folder_continues_bit_for_bit(tmp_path):
    data = _data()
    straight = _trainer(tmp_path / "a")
    full = _rounds(straight, data, 2)
    _rounds(_trainer(tmp_path / "b"), data, 1)  # as if the process had stopped after its first call
    torch.manual_seed(77)  # another global RNG state: the folder restores the run's
    resumed = _trainer(tmp_path / "b", resume=True, init=5)  # other initial weights: restored too
    assert resumed.calls == 1 and resumed.step == 1
    assert _rounds(resumed, data, 1) == full[1:]
    assert resumed.log == straight.log and resumed.step == 2
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    for a, b in zip(straight.ema.model.parameters(), resumed.ema.model.parameters()):
        assert torch.equal(a, b)


def test_a_ctc_folder_is_refused_without_resume_and_a_changed_setting_is_named(tmp_path):
    data = _data()
    run = tmp_path / "run"
    _rounds(_trainer(run), data, 1)
    with pytest.raises(OutputExistsError, match=r"run already holds a CTC training run \(checkpoints/last.pt\); "
                                                "pass resume=True to continue it, or a new out_dir$"):
        _trainer(run)
    with pytest.raises(ConfigError, match=r"^resume=True but lr differs from the run in .*: 0.001 there, 0.01 now"):
        _trainer(run, resume=True, settings=TrainSettings(lr=1e-2, batch_size=2, mu=1, tau=0.0, ramp_frac=0.0,
                                                          teacher="ema", ema_decay=0.9))
    with pytest.raises(ConfigError, match="^resume=True but generator differs"):
        _trainer(run, resume=True, seed=1)
    with pytest.raises(ConfigError, match="^resume=True needs the out_dir"):
        _trainer(resume=True)
