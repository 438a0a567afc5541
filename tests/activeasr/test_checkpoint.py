import numpy as np
import pytest
import torch

from reprozoo.activeasr.features import FeatureConfig
from reprozoo.activeasr.inference import Transcriber, load_transcriber, save_transcriber
from reprozoo.errors import CheckpointError
from reprozoo.runtime.checkpoint import save_checkpoint
from reprozoo.runtime.registry import create_model


def test_transcriber_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    features = FeatureConfig(n_mels=20)
    model = create_model("ctc_tcn_tiny", n_mels=20, width=16, drop_rate=0.2).eval()
    path = save_transcriber(model, tmp_path / "m.safetensors", features)
    loaded, feats = load_transcriber(path)
    assert feats == features and loaded.drop.p == 0.2
    x, n = torch.randn(2, 30, 20), torch.tensor([30, 17])
    assert all(torch.equal(a, b) for a, b in zip(model(x, n), loaded(x, n)))
    wave = torch.from_numpy(np.sin(np.arange(8000) / 5.0).astype(np.float32))
    assert Transcriber(model, features).transcribe_waves([wave]) == \
        Transcriber.from_checkpoint(path).transcribe_waves([wave])
    bare = save_checkpoint(model, tmp_path / "bare.safetensors")
    with pytest.raises(CheckpointError, match="not an activeasr checkpoint"):
        load_transcriber(bare)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_transcriber(tmp_path / "none.safetensors")
