import os

import pytest
import torch

os.environ.setdefault("REPROZOO_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # two xdist workers on two cores: one intra-op thread each avoids oversubscription
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("REPROZOO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread for the test, the caller's count restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def trainer_epochs(monkeypatch):
    """``trainer_epochs(stop_at=None)`` makes every ``runtime.trainer.Trainer`` record the epochs it
    starts (the list is returned) and raise KeyboardInterrupt, as Ctrl-C would, when it starts epoch
    ``stop_at`` (0-based); call it again to start a new list or to stop interrupting."""
    from reprozoo.runtime.trainer import Trainer

    original = Trainer.train_epoch

    def patch(stop_at: int | None = None) -> list[int]:
        started: list[int] = []

        def train_epoch(self, epoch):
            started.append(epoch)
            if epoch == stop_at:
                raise KeyboardInterrupt
            return original(self, epoch)

        monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
        return started

    return patch
