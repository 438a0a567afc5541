import numpy as np
import pytest
import torch
from PIL import Image

from reprozoo.cli import main
from reprozoo.errors import CheckpointError
from reprozoo.sinet import SINet
from reprozoo.sinet.export import export_onnx, max_abs_diff
from reprozoo.sinet.inference import Segmenter, load_checkpoint, save_checkpoint

MEAN, STD = [0.45, 0.42, 0.4], [0.25, 0.24, 0.26]


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = SINet().eval()
    for m in model.modules():  # non-trivial BN statistics so the test exercises them
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return save_checkpoint(tmp_path / "sinet.pt", model, mean=MEAN, std=STD, image_size=64)


def test_checkpoint_roundtrip_and_errors(checkpoint, tmp_path):
    model, ckpt = load_checkpoint(checkpoint)
    assert ckpt["image_size"] == 64 and ckpt["mean"] == pytest.approx(MEAN)
    assert ckpt["model_kwargs"] == {"num_classes": 2, "decoder": "blocking"}
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a reprozoo SINet checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    torch.save({**ckpt, "model_kwargs": {"decoder": "gated"}}, tmp_path / "kw.pt")
    with pytest.raises(CheckpointError, match="cannot rebuild the model from model_kwargs"):
        load_checkpoint(tmp_path / "kw.pt")
    torch.save({"format": ckpt["format"], "model": ckpt["model"]}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="lacks model_kwargs, mean, std, image_size"):
        load_checkpoint(tmp_path / "partial.pt")


def test_segmenter_returns_input_size(checkpoint):
    seg = Segmenter.from_checkpoint(checkpoint)
    image = torch.randint(0, 256, (3, 50, 77), dtype=torch.uint8)
    prob = seg.probability(image)
    assert prob.shape == (50, 77) and 0 <= prob.min() and prob.max() <= 1
    assert set(seg.mask(image).unique().tolist()) <= {0, 1}


def test_onnx_export_matches_pytorch(checkpoint, tmp_path):
    model, ckpt = load_checkpoint(checkpoint)
    path = export_onnx(model, tmp_path / "sinet.onnx", mean=MEAN, std=STD, image_size=64)
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))  # batch 3: dynamic batch
    assert max_abs_diff(model, path, x, mean=MEAN, std=STD) <= 1e-4


def test_cli_export(checkpoint, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "sinet", "--checkpoint", str(checkpoint), "--onnx", str(out)]) == 0
    text = capsys.readouterr().out
    diff = float(text.split("max |ONNX Runtime - PyTorch| = ")[1].split()[0])
    assert out.is_file() and diff <= 1e-4
    assert main(["export", "sinet", "--checkpoint", str(tmp_path / "none.pt"), "--onnx", str(out)]) == 2
    assert "error: no checkpoint at" in capsys.readouterr().err


def test_cli_segment_keeps_going_past_bad_files(checkpoint, tmp_path, capsys):
    imgs = tmp_path / "in"
    imgs.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(imgs / "a.png")
    Image.fromarray(np.full((20, 20), 100, np.uint8)).save(imgs / "gray.png")  # converted to RGB
    rgba = np.zeros((16, 24, 4), np.uint8)
    Image.fromarray(rgba).save(imgs / "alpha.png")
    (imgs / "broken.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    code = main(["segment", str(imgs / "a.png"), str(imgs / "broken.png"), str(imgs / "gray.png"),
                 str(imgs / "alpha.png"), str(tmp_path / "missing.jpg"),
                 "--checkpoint", str(checkpoint), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    assert "segmented 3 image(s)" in captured.out
    assert "broken.png: not a readable image" in captured.err and "missing.jpg: no such file" in captured.err
    assert "error: 2 of 5 input(s) failed" in captured.err
    mask = np.asarray(Image.open(out / "a_mask.png"))
    assert mask.shape == (40, 30) and set(np.unique(mask)) <= {0, 255}
    assert np.asarray(Image.open(out / "a_overlay.png")).shape == (40, 30, 3)
    assert (out / "gray_mask.png").is_file() and (out / "alpha_mask.png").is_file()
    assert not (out / "broken_mask.png").exists()
    # all inputs good -> exit 0; an empty folder is reported
    assert main(["segment", str(imgs / "a.png"), "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["segment", str(empty), "--checkpoint", str(checkpoint), "--out", str(out)]) == 2
    assert "folder holds no images" in capsys.readouterr().err
    assert main(["segment", str(imgs / "a.png"), "--checkpoint", str(checkpoint), "--out", str(imgs / "a.png")]) == 2
    assert "is a file; pass a folder" in capsys.readouterr().err
