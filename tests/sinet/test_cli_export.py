from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reprozoo.cli import main
from reprozoo.errors import CheckpointError, DataError, ReproZooError
from reprozoo.sinet import SINet
from reprozoo.sinet.checkpoint import load_segmenter, save_checkpoint, save_segmenter
from reprozoo.sinet.export import export_onnx, max_abs_diff
from reprozoo.sinet.inference import Segmenter, load_checkpoint

MEAN, STD = [0.45, 0.42, 0.4], [0.25, 0.24, 0.26]


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = SINet().eval()
    for m in model.modules():  # non-trivial BN statistics so the test exercises them
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return save_segmenter(model, tmp_path / "sinet.safetensors", mean=MEAN, std=STD, image_size=64)


def test_former_checkpoint_format_is_still_read(checkpoint, tmp_path):
    model = load_segmenter(checkpoint)[0]
    former = save_checkpoint(tmp_path / "sinet.pt", model, mean=MEAN, std=STD, image_size=64, synthetic=True)
    again, info = load_checkpoint(former)  # the former name of load_segmenter
    assert info["image_size"] == 64 and info["mean"] == pytest.approx(MEAN) and info["synthetic"] is True
    assert info["model_kwargs"] == {"num_classes": 2, "decoder": "blocking"}
    assert info["fit"] == "letterbox" and info["threshold"] == 0.5
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    raw = torch.load(former, weights_only=True)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a reprozoo SINet checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    torch.save({**raw, "model_kwargs": {"decoder": "gated"}}, tmp_path / "kw.pt")
    with pytest.raises(CheckpointError, match="cannot rebuild the model from model_kwargs"):
        load_checkpoint(tmp_path / "kw.pt")
    torch.save({"format": raw["format"], "model": raw["model"]}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="lacks model_kwargs, mean, std, image_size"):
        load_checkpoint(tmp_path / "partial.pt")
    torch.save({**raw, "std": [0.2, 0.0, 0.2]}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="'std' must be > 0"):
        load_checkpoint(tmp_path / "bad.pt")


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
    assert main(["segment", str(imgs / "a.png"), "--checkpoint", str(checkpoint), "--out", str(out),
                 "--overwrite"]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["segment", str(empty), "--checkpoint", str(checkpoint), "--out", str(out)]) == 2
    assert "folder holds no images" in capsys.readouterr().err
    assert main(["segment", str(imgs / "a.png"), "--checkpoint", str(checkpoint), "--out", str(imgs / "a.png")]) == 2
    assert "is a file; pass a folder" in capsys.readouterr().err


def test_segmenter_accepts_pil_numpy_and_tensors_with_one_value_range(checkpoint):
    seg = Segmenter.from_checkpoint(checkpoint)
    rng = np.random.default_rng(3)
    hwc = rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)
    chw = torch.from_numpy(hwc.transpose(2, 0, 1).copy())
    ref = seg.probability(chw)
    assert ref.shape == (40, 52)
    assert torch.allclose(seg.probability(Image.fromarray(hwc)), ref)
    assert torch.allclose(seg.probability(hwc), ref)
    assert torch.allclose(seg.probability(hwc.astype(np.float32) / 255), ref, atol=1e-6)
    assert torch.allclose(seg.probability(chw.float() / 255), ref, atol=1e-6)  # not divided by 255 again
    batch = seg.probability(torch.stack([chw, chw.flip(-1)]).float() / 255)
    assert batch.shape == (2, 40, 52) and torch.allclose(batch[0], ref, atol=1e-6)
    with pytest.raises(DataError, match=r"float image must hold finite values in \[0, 1\]"):
        seg.probability(chw.float())
    with pytest.raises(DataError, match=r"\(H, W, 3\)"):
        seg.probability(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(DataError, match="3 RGB channels"):
        seg.probability(torch.zeros(1, 4, 8, 8))


def test_segmenter_letterboxes_keeping_the_aspect_ratio(checkpoint):
    from reprozoo.sinet.inference import letterbox

    x = torch.rand(1, 3, 30, 60, generator=torch.Generator().manual_seed(2))
    boxed, box = letterbox(x, 64)
    assert box == (16, 0, 32, 64)  # 30x60 -> 32x64, centred, gray above and below
    assert torch.all(boxed[:, :, :16] == 0.5) and torch.all(boxed[:, :, 48:] == 0.5)
    seg = Segmenter.from_checkpoint(checkpoint)
    with torch.no_grad():
        full = torch.softmax(seg.net(boxed), 1)[:, 1:, 16:48]
    expect = torch.nn.functional.interpolate(full, size=(30, 60), mode="bilinear", align_corners=False)[0, 0]
    assert torch.allclose(seg.probability(x[0]), expect, atol=1e-6)


def test_checkpoint_with_unusable_preprocessing_is_refused(checkpoint, tmp_path):
    from reprozoo.runtime.checkpoint import save_checkpoint as save_library

    model, info = load_segmenter(checkpoint)
    good = {k: info[k] for k in ("mean", "std", "image_size", "fit", "threshold")}
    for key, value, match in (("std", [0.2, 0.0, 0.2], "'std' must be > 0"),
                              ("std", [0.2, float("nan"), 0.2], "three finite numbers"),
                              ("image_size", -64, "'image_size' must be an integer >= 32"),
                              ("image_size", 0, "'image_size' must be an integer >= 32"),
                              ("fit", "crop", "'fit' must be one of letterbox, stretch"),
                              ("threshold", 1.0, r"'threshold' must be a number in \(0, 1\)")):
        path = save_library(model, tmp_path / "bad.safetensors", **{**good, key: value})
        with pytest.raises(CheckpointError, match=match):
            load_segmenter(path)
        with pytest.raises(CheckpointError, match=match):  # and nothing unusable is written
            save_segmenter(model, tmp_path / "never.safetensors", **{**good, key: value})
        assert not (tmp_path / "never.safetensors").exists()


def test_segment_never_overwrites_one_output_with_another(checkpoint, tmp_path, capsys):
    from reprozoo.sinet.cli import output_names

    imgs = tmp_path / "in"
    imgs.mkdir()
    rng = np.random.default_rng(1)
    for name, shape in (("a_2.png", (20, 30, 3)), ("a.png", (24, 16, 3)), ("a.jpg", (18, 18, 3))):
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(imgs / name)
    out = tmp_path / "out"
    assert main(["segment", str(imgs), "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    assert "segmented 3 image(s)" in capsys.readouterr().out
    masks = {p.name: np.asarray(Image.open(p)).shape for p in out.glob("*_mask.png")}
    assert masks == {"a_2_mask.png": (20, 30), "a_png_mask.png": (24, 16), "a_jpg_mask.png": (18, 18)}
    # same stem and extension in two folders; a third file already called a_png
    assert output_names([Path("a.png"), Path("x/a.png"), Path("a_png.jpg")]) == ["a_png_2", "a_png_3", "a_png"]


def test_segment_refuses_an_input_folder_as_output_and_warns_about_synthetic_training(tmp_path, capsys):
    torch.manual_seed(0)
    ckpt = save_segmenter(SINet().eval(), tmp_path / "syn.safetensors", mean=MEAN, std=STD, image_size=64,
                          synthetic=True)
    imgs = tmp_path / "in"
    imgs.mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(imgs / "a.png")
    assert main(["segment", str(imgs), "--checkpoint", str(ckpt), "--out", str(imgs)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "is also an input folder" in err and str(imgs) in err
    assert sorted(p.name for p in imgs.iterdir()) == ["a.png"]
    assert main(["segment", str(imgs), "--checkpoint", str(ckpt), "--out", str(tmp_path / "o")]) == 0
    assert "trained on generated portraits only" in capsys.readouterr().err


def test_export_to_an_existing_folder_is_one_error_and_leaves_no_temp_file(checkpoint, tmp_path, capsys,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "exists"
    target.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["export", "sinet", "--checkpoint", str(checkpoint), "--onnx", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and f"--onnx {target} is a folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before and not list(target.iterdir())
    with pytest.raises(ReproZooError, match="is a folder"):
        export_onnx(load_checkpoint(checkpoint)[0], target, mean=MEAN, std=STD, image_size=64)


def test_segment_thresholds_at_the_checkpoints_threshold_unless_told(checkpoint, tmp_path):
    image = np.random.default_rng(4).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    prob = Segmenter.from_checkpoint(checkpoint).probability(image).numpy()
    lo, hi = (float(q) for q in np.quantile(prob, [0.3, 0.7]))  # a random model: thresholds from its own range
    strict = save_segmenter(load_segmenter(checkpoint)[0], tmp_path / "strict.safetensors", mean=MEAN, std=STD,
                            image_size=64, threshold=hi)
    for extra, cut in (([], hi), (["--threshold", str(lo)], lo)):
        out = tmp_path / f"out{cut}"
        assert main(["segment", str(tmp_path / "a.png"), "--checkpoint", str(strict), "--out", str(out), *extra]) == 0
        mask = np.asarray(Image.open(out / "a_mask.png")) > 0
        assert np.array_equal(mask, prob > cut) and 0 < mask.sum() < mask.size
