"""runtime.accel: one reading of a device name for the resolver and the trainer's Accelerator.

What a CPU machine can check: the parsing, the errors for a device that is not here, and, with the
CUDA queries and the Accelerator replaced by stand-ins, that ``cuda:N`` selects GPU N (and is refused
in a launched multi-process run)."""

from __future__ import annotations

import pytest
import torch

from reprozoo.errors import ConfigError
from reprozoo.runtime import accel


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:x", "cuda0", "CPU", "", "cuda:-1"])
def test_a_name_that_is_no_device_is_refused_by_both(name):
    for call in (accel.resolve_device, accel.make_accelerator):
        with pytest.raises(ConfigError, match="device must be auto, cpu, cuda, cuda:N or mps"):
            call(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_a_gpu_this_machine_lacks_is_an_error_not_a_cpu_run(name):
    for call in (accel.resolve_device, accel.make_accelerator):
        with pytest.raises(ConfigError, match=f"device '{name}' was asked for but no CUDA GPU is visible"):
            call(name)


def test_cpu_and_auto_build_an_accelerator_on_the_resolved_device():
    assert accel.make_accelerator("cpu").device.type == "cpu"
    assert accel.make_accelerator("auto").device.type == accel.resolve_device("auto")
    assert accel.make_accelerator(torch.device("cpu")).device.type == "cpu"
    assert accel.resolve_device(torch.device("cpu")) == "cpu"


def test_mixed_precision_is_checked():
    with pytest.raises(ConfigError, match="mixed_precision"):
        accel.make_accelerator("cpu", mixed_precision="fp8")


class _Built:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


@pytest.fixture
def two_fake_gpus(monkeypatch):
    """Two visible CUDA devices as far as the resolver can tell; records ``set_device``."""
    chosen: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(accel, "Accelerator", _Built)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    return chosen


def test_cuda_n_selects_gpu_n(two_fake_gpus):
    built = accel.make_accelerator("cuda:1")
    assert two_fake_gpus == [1] and built.kwargs["cpu"] is False
    assert accel.make_accelerator(torch.device("cuda", 0)).kwargs["cpu"] is False and two_fake_gpus == [1, 0]
    accel.make_accelerator("cuda")  # the current GPU: nothing selected
    assert two_fake_gpus == [1, 0]
    assert accel.resolve_device("auto") == "cuda" and accel.resolve_device("cuda:1") == "cuda:1"


def test_a_gpu_index_past_the_visible_ones_is_an_error(two_fake_gpus):
    with pytest.raises(ConfigError, match=r"device 'cuda:2' does not exist: 2 CUDA device\(s\) visible"):
        accel.make_accelerator("cuda:2")
    assert two_fake_gpus == []


def test_cuda_n_is_refused_in_a_launched_multi_process_run(two_fake_gpus, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ConfigError, match="names one GPU"):
        accel.make_accelerator("cuda:1")
    assert two_fake_gpus == []
    assert accel.make_accelerator("auto").kwargs["cpu"] is False  # auto: as launched


def _count_resets(monkeypatch) -> list[int]:
    from accelerate.state import AcceleratorState

    resets: list[int] = []
    real = AcceleratorState._reset_state

    def counted(*args, **kwargs):
        resets.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(AcceleratorState, "_reset_state", staticmethod(counted))
    return resets


def test_one_process_can_change_precision_between_trainings(monkeypatch):
    """Accelerate keeps one state per process; a second training with another precision used to
    stop on accelerate's 'already been initialized' ValueError."""
    resets = _count_resets(monkeypatch)
    assert accel.make_accelerator("cpu").mixed_precision == "no"
    assert accel.make_accelerator("cpu", mixed_precision="bf16").mixed_precision == "bf16"
    assert accel.make_accelerator("cpu").mixed_precision == "no"
    calls = len(resets)
    accel.make_accelerator("cpu")
    accel.make_accelerator("auto")  # the CPU here too: the same state, kept
    assert len(resets) == calls


def test_a_state_on_another_device_is_released_not_reused(monkeypatch):
    """A process whose accelerate state is on a GPU, asked for the CPU, gets the CPU (accelerate
    alone raises), and the reverse; simulated here by marking the state's device as a GPU."""
    from accelerate.state import PartialState

    resets = _count_resets(monkeypatch)
    accel.make_accelerator("cpu")
    PartialState._shared_state["device"] = torch.device("cuda")
    built = accel.make_accelerator("cpu")  # released and built again, on the CPU
    assert built.device.type == "cpu" and len(resets) == 1
    try:
        with monkeypatch.context() as launched:  # in a launched run the state is the launcher's: kept
            launched.setenv("LOCAL_RANK", "0")
            PartialState._shared_state["device"] = torch.device("cuda")
            accel._release_other_state("cpu", "no")
            assert len(resets) == 1
    finally:
        PartialState._shared_state["device"] = torch.device("cpu")
