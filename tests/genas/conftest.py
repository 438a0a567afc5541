"""Shared fixtures of the GeNAS tests."""

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test of this package runs on one torch thread (the shared fixture of tests/conftest.py)."""
