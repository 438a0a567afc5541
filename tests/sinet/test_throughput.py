"""FrameEngine (throughput mode): ONNX Runtime's deployment export agrees with eager PyTorch, both
ORT modes give the same probabilities, chunks that do not divide the batch work, and bad input is a
one-line reprozoo error."""

import numpy as np
import pytest
import torch

from reprozoo.errors import ConfigError, DataError
from reprozoo.sinet.inference import Segmenter
from reprozoo.sinet.models import SINet
from reprozoo.sinet.throughput import FrameEngine, flush_denormals, mirror_steep_prelus

pytest.importorskip("onnxruntime")

# ORT runs the deployment graph (BN folded, PReLU as conv pairs, ...): the same function with other
# rounding. On the pretrained model the two agreed to ~1e-6 in probability; 1e-4 leaves room for
# other CPUs' kernels and is still far below anything visible in a mask (1/255 = 3.9e-3).
TOL = 1e-4


@pytest.fixture(scope="module")
def seg():
    return Segmenter.pretrained()


@pytest.fixture(scope="module")
def engines(seg):
    made = {"eager": FrameEngine(seg, kind="eager", batch_size=3),
            "batch": FrameEngine(seg, kind="ort", mode="batch", batch_size=3, threads=2),
            "sessions": FrameEngine(seg, kind="ort", mode="sessions", batch_size=3, threads=2)}
    yield made
    for engine in made.values():
        engine.close()


def _random_frames(n=7, h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _portrait_frames(n=5, size=96):
    from reprozoo.data.portraits import render_portrait

    frames = []
    for i in range(n):
        img, mask, _ = render_portrait(0, i + 1, size=size)
        frames.append(img.mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy())
    return np.stack(frames)


@pytest.mark.parametrize("kind", ["batch", "sessions"])
def test_ort_matches_eager_on_random_and_real_frames(engines, kind):
    for frames in (_random_frames(), _portrait_frames()):
        ref = engines["eager"].probabilities(frames)
        out = engines[kind].probabilities(frames)
        assert out.shape == ref.shape == (len(frames), 224, 224) and out.dtype == np.float32
        assert float(np.abs(out - ref).max()) < TOL
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_real_frames_have_a_person_and_a_background(engines):
    prob = engines["sessions"].probabilities(_portrait_frames())
    fg = (prob > 0.5).mean(axis=(1, 2))
    assert ((fg > 0.1) & (fg < 0.9)).all(), fg  # neither all person nor all background


def test_eager_engine_matches_the_segmenter_it_wraps(seg, engines):
    """Same model and filter as Segmenter.probability; the resize runs in uint8 here (float there),
    (3x faster: 2.1 vs 6.2 ms per 640x480 frame on 2 threads), which moves inputs by <= 0.5/255:
    probabilities moved by 1.3e-3 on average and 0.026 at most (at the person's edge, where the
    probability is steep) here; the bounds are about 4x those."""
    frames = _portrait_frames(3)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    resized = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        ref = torch.softmax(seg.net(resized), 1)[:, 1].numpy()
    diff = np.abs(engines["eager"].probabilities(frames) - ref)
    assert float(diff.mean()) < 5e-3 and float(diff.max()) < 0.1


def test_both_modes_give_identical_outputs_for_any_chunking(engines):
    frames = _random_frames(n=11, seed=1)
    a, b = engines["batch"].probabilities(frames), engines["sessions"].probabilities(frames)
    assert float(np.abs(a - b).max()) <= 1e-6
    for n in (1, 2, 4, 5):  # 11 = 3+3+3+2 in one session; 6+5 split over two sessions of batch 3
        part = engines["sessions"].probabilities(frames[:n])
        assert float(np.abs(part - b[:n]).max()) <= 1e-6


def test_no_frames_give_an_empty_result(engines):
    out = engines["sessions"].probabilities(np.zeros((0, 48, 64, 3), np.uint8))
    assert out.shape == (0, 224, 224) and out.dtype == np.float32


def test_letterbox_returns_the_frames_box_and_pads_gray():
    torch.manual_seed(0)
    kw = dict(mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25], image_size=64, fit="letterbox")
    eager = FrameEngine(SINet().eval(), kind="eager", **kw)
    ort = FrameEngine(SINet().eval(), kind="ort", mode="batch", batch_size=2, threads=1, **kw)
    assert eager.box(48, 96) == (16, 0, 32, 64)
    frames = _random_frames(n=3, h=48, w=96)
    x = eager.preprocess(frames)
    assert np.allclose(x[:, :, :16], 0.0) and np.allclose(x[:, :, 48:], 0.0)  # (0.5 - 0.5) / 0.25
    out = eager.probabilities(frames)
    assert out.shape == (3, 32, 64)
    assert float(np.abs(ort.probabilities(frames) - out).max()) < TOL


def test_denormal_weights_are_flushed_without_changing_the_model(seg):
    net, flushed = flush_denormals(seg.net.model)
    assert flushed > 1000  # the official weights hold thousands of subnormal values
    tiny = torch.finfo(torch.float32).tiny
    assert all(not ((p != 0) & (p.abs() < tiny)).any() for p in net.parameters())
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(net(x), seg.net.model(x), atol=1e-6)


def test_steep_prelu_slopes_are_mirrored_exactly():
    torch.manual_seed(0)
    seq = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Identity(), torch.nn.PReLU(4))
    with torch.no_grad():
        seq[2].weight.copy_(torch.tensor([1.3, 0.25, -0.1, 2.0]))  # two slopes > 1, one negative
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        ref = seq(x)
        assert mirror_steep_prelus(seq) == 1
        assert bool((seq[2].weight <= 1).all()) and len(seq) == 4
        assert torch.allclose(seq(x), ref, atol=1e-6)


def test_the_pretrained_engine_fuses_every_prelu_and_leaves_the_callers_thread_alone(engines):
    engine = engines["sessions"]
    assert engine.prelus_mirrored == 1 and engine.deploy_info["prelu_kept"] == 0
    engine.probabilities(_random_frames(n=2))  # its threads flush denormals; this one must not
    assert torch.tensor([1e-40]).item() != 0.0


@pytest.mark.parametrize("bad, words", [
    (np.zeros((2, 8, 8, 3), np.float32), "uint8"),
    (np.zeros((8, 8, 3), np.uint8), "(N, H, W, 3)"),
    (np.zeros((2, 8, 8, 4), np.uint8), "(N, H, W, 3)"),
    (np.zeros((2, 0, 8, 3), np.uint8), "H, W >= 1"),
    ([[0, 0, 0]], "numpy uint8 array"),
])
def test_bad_frames_raise_one_line_errors(engines, bad, words):
    for engine in (engines["eager"], engines["sessions"]):
        with pytest.raises(DataError) as err:
            engine.probabilities(bad)
        assert words in str(err.value) and "\n" not in str(err.value)


def test_infer_takes_only_preprocessed_input(engines):
    with pytest.raises(DataError, match="float32"):
        engines["sessions"].infer(np.zeros((1, 3, 64, 64), np.float32))
    x = engines["sessions"].preprocess(_random_frames(n=2))
    assert np.array_equal(engines["sessions"].infer(x), engines["sessions"].probabilities(_random_frames(n=2)))


@pytest.mark.parametrize("kw, words", [
    ({"kind": "tensorrt"}, "kind must be"), ({"mode": "threads"}, "mode must be"),
    ({"batch_size": 0}, "batch_size"), ({"threads": 0}, "threads"), ({"fit": "crop"}, "fit must be"),
])
def test_bad_settings_raise_one_line_errors(seg, kw, words):
    with pytest.raises(ConfigError) as err:
        FrameEngine(seg, **kw)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_plain_model_needs_its_preprocessing():
    with pytest.raises(ConfigError, match="mean, std and image_size"):
        FrameEngine(SINet().eval())
