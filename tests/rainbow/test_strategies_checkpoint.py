"""A trained continual learner's model is saved in the library's checkpoint format (backbone name, its
final head size, the normalisation) and loads back to the same outputs."""

import pytest
import torch

from reprozoo.errors import CheckpointError
from reprozoo.rainbow import Normalized
from reprozoo.rainbow.models import MLP
from reprozoo.rainbow.strategies import load_model, save_model
from reprozoo.runtime.checkpoint import checkpoint_meta
from reprozoo.runtime.registry import create_model


def test_a_normalized_model_round_trips_with_its_grown_head(tmp_path):
    torch.manual_seed(0)
    net = create_model("rm_mlp_digits")
    net.reset_head(4)  # a learner grows the head with the classes seen so far
    model = Normalized(net, (0.25,), (0.5,)).eval()
    path = save_model(model, tmp_path / "m.safetensors", seed=3)
    meta = checkpoint_meta(path)
    assert meta["model"] == "rm_mlp_digits" and meta["kwargs"]["num_classes"] == 4
    assert meta["extra"] == {"mean": [0.25], "std": [0.5], "seed": 3}
    loaded, extra = load_model(path)
    x = torch.rand(3, 1, 8, 8)
    assert isinstance(loaded, Normalized) and extra["seed"] == 3
    assert torch.equal(loaded(x), model(x))
    bare, _ = load_model(save_model(net, tmp_path / "bare.safetensors"))
    assert not isinstance(bare, Normalized) and torch.equal(bare.eval()(x), net.eval()(x))


def test_a_backbone_not_built_by_create_model_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="build the backbone with reprozoo.create_model"):
        save_model(Normalized(MLP(in_features=64), (0.0,), (1.0,)), tmp_path / "m.safetensors")
