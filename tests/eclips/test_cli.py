import json
from types import SimpleNamespace

import pytest
import torch
from torchvision.io import write_png

from reprozoo.cli import main
from reprozoo.eclips.cli import antispoof
from reprozoo.eclips.inference import AntiSpoofer, load_antispoofer, save_antispoofer
from reprozoo.eclips.models import Ensemble, base_learner, predict
from reprozoo.eclips.training import normalize
from reprozoo.errors import CheckpointError, DataError

CFG = SimpleNamespace(width=4, embed_dim=8, dropout=0.5, feature_norm=True, size=16, test_mc_samples=3, mc_test=False)


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = Ensemble([base_learner(4, 8) for _ in range(2)]).eval()
    with torch.no_grad():
        model.alpha.copy_(torch.tensor([0.5, -0.5]))
    return save_antispoofer(model, tmp_path / "eclips.safetensors", CFG, threshold=0.42, arm="eclips"), model


def _video(folder, n, seed):
    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(seed)
    for i in range(n):
        write_png(torch.randint(0, 256, (3, 16, 16), generator=g, dtype=torch.uint8), str(folder / f"{i}.png"))
    return folder


def test_checkpoint_roundtrip(checkpoint):
    path, model = checkpoint
    loaded, meta = load_antispoofer(path)
    assert meta["threshold"] == 0.42 and meta["live_label"] == 1 and meta["threshold_source"] == "val_eer"
    x = torch.randn(3, 3, 16, 16)
    assert torch.equal(loaded(x), model(x))
    assert loaded.fusion == model.fusion and loaded.members[0].head.drop.p == 0.5


def test_antispoof_scores_videos(checkpoint, tmp_path, capsys):
    path, model = checkpoint
    v1, v2 = _video(tmp_path / "a", 5, 0), _video(tmp_path / "b", 3, 1)
    rows = antispoof([v1, v2], path, frames="all")
    assert [r["n_frames"] for r in rows] == [5, 3]
    from reprozoo.data.fas_videos import read_frames

    expected = predict(model, normalize(read_frames(v1)))["prob"].double()
    assert rows[0]["live_probability"] == pytest.approx(float(expected.mean()))
    assert rows[0]["frame_std"] == pytest.approx(float(expected.std(unbiased=False)))
    assert rows[0]["decision"] == ("live" if rows[0]["live_probability"] >= 0.42 else "spoof")
    assert rows[0]["uncertainty"] > 0
    assert AntiSpoofer.from_checkpoint(path).score_video("x", read_frames(v1)).to_dict() == {**rows[0], "video": "x"}
    assert main(["antispoof", "--checkpoint", str(path), "--json", str(v1)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["threshold"] == 0.42 and out[0]["n_frames"] == 5
    assert main(["antispoof", "--checkpoint", str(path), str(v1), str(v2)]) == 0
    text = capsys.readouterr().out
    assert "validation EER threshold" in text and text.count("\n") == 4


def test_antispoof_bad_inputs(checkpoint, tmp_path, capsys):
    path, _ = checkpoint
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: the folder holds no frames"):
        antispoof([tmp_path / "empty"], path)
    assert main(["antispoof", "--checkpoint", str(path), str(tmp_path / "nope.mp4")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="does not exist"):
        antispoof([tmp_path], tmp_path / "missing.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a reprozoo.checkpoint/1 file"):
        load_antispoofer(tmp_path / "other.pt")
