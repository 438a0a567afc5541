"""train_supernet(out_dir=..., resume=...): the library's output-folder rule, and a resume that ends as
the run never stopped (weights, theta_init and the sampled path sequence)."""

import pytest
import torch
from torch.utils.data import TensorDataset

from reprozoo import create_model
from reprozoo.errors import ConfigError, OutputExistsError
from reprozoo.genas import SupernetConfig, train_supernet

g = torch.Generator().manual_seed(0)
DATA = TensorDataset(torch.randn(32, 1, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g))
CFG = SupernetConfig(epochs=3, batch_size=16)


def _net(seed=0):
    torch.manual_seed(seed)
    return create_model("nb201_tiny_supernet")


def test_a_stopped_supernet_training_resumes_bit_for_bit(tmp_path, trainer_epochs):
    straight = _net()
    theta = train_supernet(straight, DATA, CFG, seed=1, out_dir=tmp_path / "a", device="cpu")
    trainer_epochs(stop_at=2)  # interrupted in the third epoch
    with pytest.raises(KeyboardInterrupt):
        train_supernet(_net(), DATA, CFG, seed=1, out_dir=tmp_path / "b", device="cpu")
    trainer_epochs()  # no more interruptions
    resumed = _net(seed=7)  # other initial weights: the run's theta_init and checkpoint are restored
    theta_again = train_supernet(resumed, DATA, CFG, seed=1, out_dir=tmp_path / "b", resume=True, device="cpu")
    assert theta_again.keys() == theta.keys() and all(torch.equal(theta[k], theta_again[k]) for k in theta)
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_a_supernet_folder_is_refused_without_resume_and_a_changed_setting_is_named(tmp_path):
    run = tmp_path / "run"
    one = SupernetConfig(epochs=1, batch_size=16)
    train_supernet(_net(), DATA, one, out_dir=run, device="cpu")
    last = (run / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(OutputExistsError, match=r"run already holds a training run \(checkpoints/last.pt\); pass "
                                                "resume=True to continue it, or a new out_dir$"):
        train_supernet(_net(), DATA, one, out_dir=run, device="cpu")
    assert (run / "checkpoints" / "last.pt").read_bytes() == last
    with pytest.raises(ConfigError, match=r"^resume=True but lr differs from the run in .*: 0.05 there, 0.1 now"):
        train_supernet(_net(), DATA, SupernetConfig(epochs=1, batch_size=16, lr=0.1), out_dir=run, resume=True)
    with pytest.raises(ConfigError, match="^resume=True but seed differs"):
        train_supernet(_net(), DATA, one, seed=3, out_dir=run, resume=True)
    with pytest.raises(ConfigError, match="^resume=True needs the out_dir"):
        train_supernet(_net(), DATA, one, resume=True)
