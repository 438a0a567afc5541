"""`reprozoo bench sinet`'s throughput-mode and end-to-end goals: decided from the measured numbers
(faked here: no timing in tests), with the limiting stage named when the video goal is missed."""

from fractions import Fraction

import numpy as np
import pytest

from reprozoo.sinet import benchmark, benchmark_video
from reprozoo.sinet.benchmark import NAMES, PRETRAINED


def _fps(sinet: float, lraspp: float, pretrained: float, size: int = 224) -> dict:
    fps = {(NAMES[0], "onnxruntime deploy", 1, size): 200.0, (NAMES[0], "onnxruntime deploy spin", 1, size): 250.0}
    for name, best in ((NAMES[0], sinet), (NAMES[1], lraspp), (PRETRAINED, pretrained)):
        fps[(name, "throughput sessions", 48, size)] = best
        fps[(name, "throughput batch", 48, size)] = best * 0.8
    return fps


def test_throughput_goal_met_at_2x_and_300_fps():
    ratios = {}
    cpu = {(NAMES[0], "throughput sessions", 48, 224): 4.0, (NAMES[0], "throughput batch", 48, 224): 5.0,
           (NAMES[1], "throughput sessions", 48, 224): 9.0, (NAMES[1], "throughput batch", 48, 224): 8.4}
    out = benchmark._throughput_goal(_fps(420.0, 200.0, 300.0), 224, 2, ratios, cpu)
    assert out["goals"] == {"throughput_speedup_2x": True, "throughput_fps_300": True}
    assert ratios["sinet_vs_lraspp_throughput"] == pytest.approx(2.1)
    assert ratios["sinet_pretrained_vs_lraspp_throughput"] == pytest.approx(1.5)
    assert ratios["sinet_throughput_vs_batch1_deploy"] == pytest.approx(420 / 250)
    assert ratios["sinet_vs_lraspp_throughput_cpu_time"] == pytest.approx(8.4 / 4.0)  # each at its cheaper mode
    assert "by CPU time 2.10x" in out["goal"]
    assert "2.10x: met" in out["goal"] and "420.0 FPS: met" in out["goal"] and "throughput sessions" in out["goal"]


@pytest.mark.parametrize("sinet, lraspp, goals", [(390.0, 200.0, (False, True)), (290.0, 140.0, (True, False))])
def test_throughput_goal_not_met(sinet, lraspp, goals):
    out = benchmark._throughput_goal(_fps(sinet, lraspp, 250.0), 224, 2, {})
    assert (out["goals"]["throughput_speedup_2x"], out["goals"]["throughput_fps_300"]) == goals
    assert "not met" in out["goal"]


class _FakeEngine:
    mode = "sessions"

    def __init__(self, **kw):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


@pytest.mark.parametrize("seconds, met", [(1.0, True), (2.5, False)])
def test_end_to_end_row_splits_the_time_by_stage(monkeypatch, tmp_path, seconds, met):
    pytest.importorskip("av")
    from reprozoo.sinet import throughput, video

    stages = {"decode": 0.1, "inference": 0.2, "composite": 0.4, "encode": 0.25}  # seconds for 75 frames
    calls = []

    def fake_segment_video(src, dst, engine, background, overwrite):
        calls.append(src)
        scale = 2.0 if len(calls) == 1 else 1.0  # the warm-up run is slower and not counted
        total = seconds * scale
        return video.VideoResult(dst, 75, total, None, {k: v * total / 1.0 for k, v in stages.items()})

    monkeypatch.setattr(video, "segment_video", fake_segment_video)
    monkeypatch.setattr(throughput, "FrameEngine", _FakeEngine)
    monkeypatch.setattr(benchmark_video, "synthetic_clip", lambda path: path)
    out = benchmark.end_to_end(tmp_path, threads=2, runs=2)
    assert len(calls) == 3 and out["warmup_fps"] == pytest.approx(75 / (2 * seconds), abs=0.1)
    assert out["row"]["fps"] == pytest.approx(75 / seconds, abs=0.1)
    assert out["limiting_stage"] == "composite"
    assert out["stage_ms_per_frame"]["composite"] == pytest.approx(0.4 * seconds * 1000 / 75, abs=1e-3)
    assert out["goals"] == {"end_to_end_fps_60": met}
    assert ("would allow" in out["goal"]) is (not met)


def test_synthetic_clip_is_a_640x480_video(tmp_path):
    pytest.importorskip("av")
    from reprozoo.sinet.video_io import VideoReader, probe_video

    path = benchmark.synthetic_clip(tmp_path / "clip.mp4", width=64, height=48, seconds=0.4, fps=10)
    info = probe_video(path)
    assert (info.width, info.height, info.fps) == (64, 48, Fraction(10))
    with VideoReader(path) as reader:
        frames = list(reader.frames())
    assert len(frames) == 4 and frames[0].shape == (48, 64, 3)
    assert not np.array_equal(frames[0], frames[2])  # the window moves
