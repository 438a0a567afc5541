"""The library's checkpoint format: safetensors weights + JSON metadata, rebuilt through the registry."""

import json

import numpy as np
import pytest
import torch

from reprozoo.errors import CheckpointError, ConfigError
from reprozoo.runtime.checkpoint import FORMAT, checkpoint_meta, load_checkpoint, save_checkpoint
from reprozoo.runtime.registry import create_model, register_model


class _Tied(torch.nn.Module):
    def __init__(self, width: int, classes: int):
        super().__init__()
        self.embed = torch.nn.Embedding(classes, width)
        self.head = torch.nn.Linear(width, classes, bias=False)
        self.head.weight = self.embed.weight  # tied: one storage under two keys
        self.norm = torch.nn.BatchNorm1d(width)

    def forward(self, x):
        return self.head(self.norm(self.embed(x)))


@register_model
def _ckpt_tied(width: int = 4, num_classes: int = 5):
    return _Tied(width, num_classes)


@register_model
def _ckpt_array(init=None):
    net = torch.nn.Linear(2, 1)
    net.weight.data.copy_(init[None])
    return net


def _randomised(model):
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn_like(t))
    return model


def test_round_trip_is_bit_identical_and_keeps_extra(tmp_path):
    torch.manual_seed(0)
    model = _randomised(create_model("_ckpt_tied", width=6))
    path = save_checkpoint(model, tmp_path / "m.safetensors", vocab=["a", "b"], mean=np.array([0.5, 0.25]),
                           threshold=0.42, size=(8, 8))
    loaded, extra = load_checkpoint(path)
    assert extra == {"vocab": ["a", "b"], "mean": [0.5, 0.25], "threshold": 0.42, "size": [8, 8]}
    assert not loaded.training and loaded.embed.weight.shape == (5, 6)
    assert loaded.head.weight is loaded.embed.weight  # still tied after loading
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    meta = checkpoint_meta(path)
    assert meta["format"] == FORMAT and meta["model"] == "_ckpt_tied" and meta["kwargs"] == {"width": 6}
    assert meta["version"]
    # any safetensors reader sees the weights and the JSON
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        assert json.loads(f.metadata()["reprozoo"])["model"] == "_ckpt_tied" and "embed.weight" in f.keys()


def test_create_model_checkpoint_path_uses_stored_kwargs_and_refuses_another_model(tmp_path):
    model = _randomised(create_model("_ckpt_tied", width=3))
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    again = create_model("_ckpt_tied", checkpoint_path=path)
    assert torch.equal(again.embed.weight, model.embed.weight)
    with pytest.raises(CheckpointError, match="does not fit model '_ckpt_tied'.*shape mismatch"):
        create_model("_ckpt_tied", checkpoint_path=path, width=4)
    with pytest.raises(CheckpointError, match="holds model '_ckpt_tied', not '_ckpt_other'"):
        create_model("_ckpt_other", checkpoint_path=path)


@register_model
def _ckpt_other(width: int = 3, num_classes: int = 5):
    return _Tied(width, num_classes)


def test_plain_state_dicts_load_strictly_through_checkpoint_path(tmp_path):
    model = _randomised(create_model("_ckpt_tied"))
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "w.pth")
    assert torch.equal(create_model("_ckpt_tied", checkpoint_path=tmp_path / "w.pth").norm.running_var,
                       model.norm.running_var)
    with pytest.raises(CheckpointError, match="nothing was loaded"):
        create_model("_ckpt_tied", checkpoint_path=tmp_path / "w.pth", num_classes=7)


def test_misuse_is_a_one_line_checkpoint_error(tmp_path):
    model = create_model("_ckpt_tied")
    with pytest.raises(CheckpointError, match=r"name the file \*\.safetensors"):
        save_checkpoint(model, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="cannot be stored"):
        save_checkpoint(model, tmp_path / "m.safetensors", fn=print)
    with pytest.raises(CheckpointError, match=r"built with an array argument \(init=\.\.\.\)"):
        save_checkpoint(create_model("_ckpt_array", init=torch.ones(2)), tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match="not built by create_model"):
        save_checkpoint(_Tied(2, 2), tmp_path / "m.safetensors")
    path = save_checkpoint(_Tied(2, 2), tmp_path / "m.safetensors", model_name="_ckpt_tied",
                           model_kwargs={"width": 2, "num_classes": 2})
    assert load_checkpoint(path)[0].embed.weight.shape == (2, 2)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="not a reprozoo.checkpoint/1 file"):
        load_checkpoint(tmp_path / "plain.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "junk.safetensors")
    assert not list(tmp_path.glob(".*.tmp"))


def test_unknown_kwargs_behind_a_kwargs_constructor_are_config_errors():
    @register_model
    def _ckpt_passes_on(**kw):
        return torch.nn.Linear(2, 2, **kw)

    with pytest.raises(ConfigError, match=r"model '_ckpt_passes_on' does not take drop_rate="):
        create_model("_ckpt_passes_on", drop_rate=0.1)
