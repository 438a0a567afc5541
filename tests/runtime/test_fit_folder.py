"""runtime.fit_folder: the one rule for a training call's output folder, alone and in the trainer."""

import json
import logging

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from reprozoo.errors import ConfigError, OutputExistsError
from reprozoo.runtime.fit_folder import (
    SETTINGS_FILE,
    check_resume,
    fingerprint,
    first_difference,
    prepare_out_dir,
    read_settings,
)
from reprozoo.runtime.trainer import TrainConfig, Trainer

MARK = "checkpoints/last.pt"


def _hold_a_run(folder):
    (folder / "checkpoints").mkdir(parents=True)
    (folder / MARK).write_bytes(b"x")


def test_a_new_folder_starts_a_run_and_keeps_its_settings(tmp_path):
    run = tmp_path / "run"
    assert prepare_out_dir(run, {"lr": 0.1, "betas": (0.9, 0.99)}, resume=False) is False
    assert read_settings(run) == {"lr": 0.1, "betas": [0.9, 0.99]}
    # resume=True where there is nothing to continue starts the run too
    assert prepare_out_dir(tmp_path / "other", {"lr": 0.1}, resume=True) is False
    assert prepare_out_dir(None, {"lr": 0.1}, resume=False) is False


def test_a_folder_holding_a_run_is_refused_without_resume(tmp_path):
    run = tmp_path / "run"
    prepare_out_dir(run, {"lr": 0.1}, resume=False)
    _hold_a_run(run)
    before = (run / SETTINGS_FILE).read_bytes()
    with pytest.raises(OutputExistsError) as info:
        prepare_out_dir(run, {"lr": 0.2}, resume=False)
    assert str(info.value) == (f"{run} already holds a training run ({MARK}); pass resume=True to continue it, "
                               "or a new out_dir")
    assert (run / SETTINGS_FILE).read_bytes() == before  # left as it was
    with pytest.raises(OutputExistsError, match=r"holds a continual run \(state.pt\)"):
        (run / "state.pt").write_bytes(b"x")
        check_resume(run, resume=False, marker="state.pt", what="a continual run")
    with pytest.raises(ConfigError, match="^resume=True needs the out_dir of the run to continue$"):
        prepare_out_dir(None, {}, resume=True)


def test_a_resume_names_the_first_setting_that_differs_and_free_keys_may_change(tmp_path):
    run = tmp_path / "run"
    settings = {"lr": 0.1, "epochs": 2, "device": "cpu", "batch_size": 8}
    prepare_out_dir(run, settings, resume=False)
    _hold_a_run(run)
    with pytest.raises(ConfigError) as info:
        prepare_out_dir(run, {**settings, "lr": 0.2, "batch_size": 4}, resume=True)
    assert str(info.value) == (f"resume=True but batch_size differs from the run in {run}: 8 there, 4 now; "
                               "resume with the run's settings or use a new out_dir")
    with pytest.raises(ConfigError, match="but extra differs .*: None there, 1 now"):
        prepare_out_dir(run, {**settings, "extra": 1}, resume=True)
    assert prepare_out_dir(run, {**settings, "epochs": 3, "device": "cuda"}, resume=True,
                           free=("epochs", "device")) is True
    assert read_settings(run)["epochs"] == 3  # the settings of the call that continued
    assert first_difference({"a": 1}, {"a": 1, "b": None}) is None


def test_a_run_without_a_settings_file_continues_with_a_warning(tmp_path, caplog):
    run = tmp_path / "run"
    _hold_a_run(run)
    with caplog.at_level(logging.WARNING):
        assert prepare_out_dir(run, {"lr": 0.1}, resume=True) is True
    assert "cannot be checked" in caplog.text
    (run / SETTINGS_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match="^cannot read .*fit_settings.json: "):
        prepare_out_dir(run, {"lr": 0.1}, resume=True)


def test_fingerprint_reads_arrays_and_tensors_alike():
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    assert fingerprint(a) == fingerprint(torch.from_numpy(a)) != fingerprint(a.T)
    assert fingerprint(a, a) != fingerprint(a)


# ------------------------------------------------------------------ the trainer
def _trainer(out_dir, epochs=2, lr=0.1, batch_size=8):
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(24, 4, generator=g), torch.randint(0, 2, (24,), generator=g))
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    return Trainer(model, opt, data, TrainConfig(epochs=epochs, batch_size=batch_size, device="cpu"),
                   out_dir=out_dir, progress=False)


def test_the_trainer_refuses_a_run_compares_a_resume_and_continues(tmp_path):
    run = tmp_path / "run"
    _trainer(run, epochs=1).fit()
    saved = json.loads((run / SETTINGS_FILE).read_text())
    assert saved["call"] == "Trainer" and saved["optimizer"] == "SGD" and saved["optimizer.lr"] == 0.1
    last = (run / MARK).read_bytes()
    with pytest.raises(OutputExistsError, match=rf"^{run} already holds a training run \(checkpoints/last.pt\); "
                                                r"pass resume=True to continue it, or a new out_dir$"):
        _trainer(run, epochs=1).fit()
    assert (run / MARK).read_bytes() == last
    with pytest.raises(ConfigError, match=r"^resume=True but optimizer.lr differs from the run in .*: 0.1 there, "
                                          "0.3 now"):
        _trainer(run, lr=0.3).fit(resume=True)
    with pytest.raises(ConfigError, match="^resume=True but batch_size differs"):
        _trainer(run, batch_size=4).fit(resume=True)
    resumed = _trainer(run, epochs=2)  # epochs may grow for the bare trainer
    assert [r["epoch"] for r in resumed.fit(resume=True)] == [1, 2] and resumed.start_epoch == 1
    straight = _trainer(tmp_path / "straight", epochs=2)
    straight.fit()
    assert all(torch.equal(a, b) for a, b in zip(straight.unwrapped_model().parameters(),
                                                 resumed.unwrapped_model().parameters()))
    with pytest.raises(ConfigError, match="has finished 2 epochs, more than epochs=1$"):
        _trainer(run, epochs=1).fit(resume=True)
    with pytest.raises(ConfigError, match="^resume=True needs the out_dir"):
        _trainer(None).fit(resume=True)
