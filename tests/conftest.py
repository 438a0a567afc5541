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
