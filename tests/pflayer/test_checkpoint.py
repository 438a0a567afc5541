"""PfLayer checkpoints are the library's one format: save_pretrained writes weights + model name +
kwargs, and create_model / load_checkpoint / pflayer.load rebuild the model from the file alone."""

import pytest
import torch

from reprozoo.errors import CheckpointError
from reprozoo.pflayer import PiTMax, load_pretrained, save_pretrained
from reprozoo.pflayer.checkpoint import load
from reprozoo.runtime.checkpoint import checkpoint_meta, load_checkpoint
from reprozoo.runtime.registry import create_model


@pytest.mark.parametrize("name, kwargs", [
    ("r50_hybrid", {"layers": (1, 1, 1, 1), "width_mult": 0.25, "num_classes": 5}),
    ("vit_ti_max", {"img_size": 32, "patch_size": 8, "depth": 2, "num_classes": 3}),
])
def test_save_pretrained_round_trips_through_create_model(name, kwargs, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, **kwargs).eval()
    path = save_pretrained(model, tmp_path / "m.safetensors", note="tiny")
    meta = checkpoint_meta(path)
    assert meta["model"] == name and meta["extra"] == {"note": "tiny"}
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        for loaded in (create_model(name, checkpoint_path=path), load_checkpoint(path)[0], load(path)[0]):
            assert torch.equal(loaded.eval()(x), ref)
    again = load_pretrained(create_model(name, **kwargs), path)  # the layout reader takes our files too
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))


def test_a_model_built_from_the_class_needs_its_name(tmp_path):
    net = PiTMax(img_size=32, patch_size=8, stride=4, base_dims=(8, 8), depth=(1, 1), heads=(1, 2), num_classes=2)
    with pytest.raises(CheckpointError, match="pass model_name=... and model_kwargs=..."):
        save_pretrained(net, tmp_path / "p.safetensors")
    kwargs = dict(img_size=32, patch_size=8, stride=4, base_dims=(8, 8), depth=(1, 1), heads=(1, 2), num_classes=2)
    path = save_pretrained(net, tmp_path / "p.safetensors", model_name="pit_ti_max", model_kwargs=kwargs)
    loaded, _ = load(path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), net.state_dict().values()))
    with pytest.raises(CheckpointError, match="holds model 'pit_ti_max', not 'pit_s_max'"):
        create_model("pit_s_max", checkpoint_path=path)
