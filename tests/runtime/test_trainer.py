import csv

import pytest
import torch

from reprozoo.data import TensorDataset, load_digits_tensors
from reprozoo.runtime.seeding import seed_everything
from reprozoo.runtime.trainer import EpochSampler, TrainConfig, Trainer
from tests.runtime.toy import SmallCNN


def _setup(out_dir, epochs=4, init_seed=0):
    x, y = load_digits_tensors()
    train = TensorDataset(x[:320], y[:320])
    val = TensorDataset(x[320:480], y[320:480])
    seed_everything(init_seed)
    model = SmallCNN(dropout=0.3)  # dropout: the resumed run must restore the RNG too
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.8)
    cfg = TrainConfig(epochs=epochs, batch_size=32, seed=3, device="cpu")
    return Trainer(model, opt, train, cfg, scheduler=sched, val_data=val, out_dir=out_dir, progress=False)


class Interrupt(Exception):
    pass


def test_resume_is_bit_exact(tmp_path):
    full = _setup(tmp_path / "full")
    hist_full = full.fit()
    assert hist_full[-1]["val_acc"] > 0.5  # it learns

    def stop_after_second(epoch, row):
        if epoch == 2:  # epoch 3 finished but not checkpointed: its work is lost, as in a crash
            raise Interrupt

    broken = _setup(tmp_path / "resumed")
    broken.on_epoch_end = stop_after_second
    with pytest.raises(Interrupt):
        broken.fit()
    torch.manual_seed(12345)  # the process that resumes has some other RNG state
    resumed = _setup(tmp_path / "resumed", init_seed=99)  # and a different init: all must be restored
    assert resumed.start_epoch == 0
    hist_resumed = resumed.fit(resume=True)
    assert resumed.start_epoch == 2
    a, b = full.unwrapped_model().state_dict(), resumed.unwrapped_model().state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["val_loss"] for r in hist_full] == [r["val_loss"] for r in hist_resumed]
    rows = list(csv.DictReader(open(tmp_path / "resumed" / "train_log.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[-1]["lr"]) == pytest.approx(0.01 * 0.8**4)


def test_epoch_sampler_is_a_function_of_seed_and_epoch():
    s = EpochSampler(50, seed=1)
    s.set_epoch(3)
    first = list(s)
    s.set_epoch(0)
    assert list(s) != first
    s.set_epoch(3)
    assert list(s) == first and sorted(first) == list(range(50))


def test_empty_training_set_is_an_error():
    from reprozoo.errors import ConfigError

    model = SmallCNN()
    with pytest.raises(ConfigError, match="empty"):
        Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1),
                TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)),
                TrainConfig(device="cpu"))
