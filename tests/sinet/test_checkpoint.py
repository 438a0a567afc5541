"""SINet checkpoints in the library format (runtime.checkpoint): the segmenter's settings travel in
the metadata, every reader (load_segmenter, Segmenter.from_checkpoint, create_model, the runtime's
load_checkpoint) gets the same weights back; the bundled weights still load with pretrained=True."""

import pytest
import torch

from reprozoo import create_model
from reprozoo.errors import CheckpointError
from reprozoo.runtime.checkpoint import checkpoint_meta, load_checkpoint, save_checkpoint
from reprozoo.sinet.checkpoint import load_segmenter, save_segmenter
from reprozoo.sinet.inference import Segmenter
from reprozoo.sinet.models import SINet, SINetEncoder

torch.set_num_threads(1)
MEAN, STD = [0.45, 0.42, 0.4], [0.25, 0.24, 0.26]


def _model(**kwargs) -> SINet:
    torch.manual_seed(0)
    model = SINet(**kwargs).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_segmenter_checkpoint_round_trip_through_every_reader(tmp_path):
    model = _model(decoder="plain", pooling=False)
    path = save_segmenter(model, tmp_path / "seg.safetensors", mean=MEAN, std=STD, image_size=64, fit="stretch",
                          threshold=0.4, synthetic=True)
    meta = checkpoint_meta(path)
    assert meta["model"] == "sinet" and meta["kwargs"]["decoder"] == "plain" and meta["kwargs"]["pooling"] is False
    assert meta["extra"] == {"mean": MEAN, "std": STD, "image_size": 64, "fit": "stretch", "threshold": 0.4,
                             "synthetic": True}
    loaded, info = load_segmenter(path)
    assert isinstance(loaded, SINet) and not loaded.training and _same_weights(model, loaded)
    assert loaded.decoder == "plain" and info["model_kwargs"] == meta["kwargs"]
    assert _same_weights(model, create_model("sinet", checkpoint_path=path))
    assert _same_weights(model, load_checkpoint(path)[0])

    seg = Segmenter.from_checkpoint(path)
    assert (seg.fit, seg.threshold, seg.image_size, seg.synthetic) == ("stretch", 0.4, 64, True)
    image = torch.rand(3, 40, 50, generator=torch.Generator().manual_seed(1))
    ref = Segmenter(model, MEAN, STD, 64, fit="stretch").probability(image)
    assert torch.equal(seg.probability(image), ref)
    assert torch.equal(seg.mask(image), (ref > 0.4).to(torch.uint8))
    again = Segmenter.from_checkpoint(seg.save(tmp_path / "again.safetensors"))  # Segmenter.save writes the same
    assert _same_weights(again.model, model) and torch.equal(again.probability(image), ref)
    assert checkpoint_meta(tmp_path / "again.safetensors")["extra"] == meta["extra"]


def test_a_plain_sinet_saves_with_the_runtime_writer_and_other_files_are_refused(tmp_path):
    model = _model()
    assert model.reprozoo_spec == {"name": "sinet", "kwargs": {"num_classes": 2, "p": 2, "q": 8, "chnn": 1,
                                                               "pooling": True, "decoder": "blocking"}}
    bare = save_checkpoint(model, tmp_path / "bare.safetensors")  # no create_model needed
    assert _same_weights(model, create_model("sinet", checkpoint_path=bare))
    with pytest.raises(CheckpointError, match="it lacks mean, std, image_size"):
        load_segmenter(bare)
    encoder = save_checkpoint(SINetEncoder(), tmp_path / "encoder.safetensors")
    with pytest.raises(CheckpointError, match="holds model 'sinet_encoder', not a SINet segmenter"):
        load_segmenter(encoder)
    with pytest.raises(CheckpointError, match="a segmenter checkpoint holds a SINet"):
        save_segmenter(SINetEncoder(), tmp_path / "x.safetensors", mean=MEAN, std=STD, image_size=64)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="weights without a segmenter's settings"):
        load_segmenter(tmp_path / "plain.safetensors")
    assert _same_weights(model, create_model("sinet", checkpoint_path=tmp_path / "plain.safetensors"))


def test_pretrained_true_loads_the_bundled_weights():
    from reprozoo.runtime.checkpoint import read_state_dict
    from reprozoo.sinet.official import WEIGHTS

    model = create_model("sinet", pretrained=True)
    bundled = read_state_dict(WEIGHTS)
    state = model.state_dict()
    assert set(bundled) <= set(state) and all(torch.equal(state[k], bundled[k]) for k in bundled)
    assert model.pretrained_cfg["fit"] == "stretch" and not model.training
