"""Portrait segmentation of video: background replacement frame by frame (the library twin of
``reprozoo segment clip.mp4 --out out.mp4``).

:func:`segment_frames` takes any iterable of RGB frames (uint8 ``(H, W, 3)``) and yields the
composited frames, in small batches through an *engine* (``engine.probabilities(frames uint8
(N, H, W, 3)) -> float32 (N, h, w)``: the foreground probability at the model's resolution, covering
the whole frame). Each probability map is optionally smoothed over time (an exponential moving
average, ``smooth`` = weight of the past), feathered by a small Gaussian blur (sigma 1 px at the
model's resolution, about 2 px of a 480-line frame) and upsampled bilinearly to the frame, so edges
are soft, not blocky; the result is the alpha of the person over the new background: ``blur`` (the
frame itself, strongly blurred), ``color:#RRGGBB`` or ``image:PATH`` (scaled to cover the frame,
centre-cropped; the compositing is in :mod:`reprozoo.sinet.video_composite`). ``mask_only`` yields
the alpha as a gray frame instead. :func:`segment_video` runs it file to file through :mod:`reprozoo.sinet.video_io`
(streaming; frame rate, size and audio kept) and reports the frames per second end to end.

    >>> from reprozoo.sinet.video import segment_frames
    >>> frames = (np.zeros((48, 64, 3), np.uint8) for _ in range(3))
    >>> out = list(segment_frames(frames, background="color:#00ff00"))
    >>> len(out), out[0].shape
    (3, (48, 64, 3))
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from reprozoo.errors import DataError, OutputError, ReproZooError
from reprozoo.sinet.preprocess import letterbox
from reprozoo.sinet.video_composite import (
    Background,
    Compositor,
    feather_probability,
    gaussian_blur,
    parse_background,
    upsample_alpha,
)

__all__ = ["Background", "Compositor", "EagerEngine", "StageTimes", "VideoResult", "default_engine", "engine_for",
           "feather_probability", "gaussian_blur", "parse_background", "segment_frames", "segment_video",
           "upsample_alpha"]


class EagerEngine:
    """The eager :class:`~reprozoo.sinet.inference.Segmenter` behind the engine interface:
    ``probabilities(frames uint8 (N, H, W, 3)) -> float32 (N, h, w)`` at the model's resolution
    (``fit="stretch"``: the whole square output; letterbox: the part of the square that holds the
    frame)."""

    def __init__(self, segmenter):
        self.segmenter = segmenter

    @torch.no_grad()
    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        seg = self.segmenter
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255)
        size = seg.image_size
        if seg.fit == "stretch":
            boxed = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            top, left, nh, nw = 0, 0, size, size
        else:
            boxed, (top, left, nh, nw) = letterbox(x, size)
        logits = seg.net(boxed)
        prob = torch.sigmoid(logits)[:, 0] if logits.shape[1] == 1 else torch.softmax(logits, 1)[:, 1]
        return prob[:, top:top + nh, left:left + nw].contiguous().numpy().astype(np.float32, copy=False)


def engine_for(segmenter, compile: bool = False):
    """The throughput engine (:class:`reprozoo.sinet.throughput.FrameEngine`: ONNX Runtime when it is
    installed, else eager) for ``segmenter``; with ``compile``, :class:`EagerEngine` (torch.compile)."""
    from reprozoo.sinet.throughput import FrameEngine

    return EagerEngine(segmenter) if compile else FrameEngine(segmenter)


def default_engine(checkpoint: str | Path | None = None, compile: bool = False):
    """:func:`engine_for` the pretrained SINet (the official EG1800 weights) or ``checkpoint``."""
    from reprozoo.sinet.inference import Segmenter

    seg = Segmenter.pretrained(compile=compile) if checkpoint is None else \
        Segmenter.from_checkpoint(checkpoint, compile=compile)
    return engine_for(seg, compile)


@dataclass
class StageTimes:
    """Seconds per stage: ``decode`` (waiting for the next input frame: decoding and audio remux),
    ``preprocess`` (resizing and normalising for the model, when the engine reports it apart),
    ``inference`` (the model, plus smoothing; with the preprocessing when the engine does not split
    it), ``composite`` (feathering, upsampling, blending) and ``encode`` (encoding and muxing)."""

    decode: float = 0.0
    preprocess: float = 0.0
    inference: float = 0.0
    composite: float = 0.0
    encode: float = 0.0
    frames: int = 0

    def as_dict(self) -> dict[str, float]:
        return {"decode": self.decode, "preprocess": self.preprocess, "inference": self.inference,
                "composite": self.composite, "encode": self.encode}


def _batches(frames: Iterable[np.ndarray], size: int, times: StageTimes) -> Iterator[np.ndarray]:
    it, batch = iter(frames), []
    while True:
        t = time.perf_counter()
        frame = next(it, None)
        times.decode += time.perf_counter() - t
        if frame is not None:
            frame = np.asarray(frame)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
                raise DataError(f"frames must be uint8 (H, W, 3) RGB arrays, got {frame.dtype} {frame.shape}")
            if batch and frame.shape != batch[0].shape:
                raise DataError(f"frame size changed from {batch[0].shape[:2]} to {frame.shape[:2]} mid-stream")
            batch.append(frame)
        if batch and (frame is None or len(batch) == size):
            yield np.stack(batch)
            batch = []
        if frame is None:
            return


def _probabilities(engine: Any, batch: np.ndarray) -> tuple[np.ndarray, float]:
    """(``engine.probabilities(batch)``, seconds of preprocessing): an engine that splits it into
    ``preprocess`` / ``infer`` / ``box`` (:class:`~reprozoo.sinet.throughput.FrameEngine`) is called
    in its two steps so that the preprocessing time is reported on its own (else 0)."""
    if not all(hasattr(engine, k) for k in ("preprocess", "infer", "box")):
        return engine.probabilities(batch), 0.0
    t = time.perf_counter()
    x = engine.preprocess(batch)
    pre = time.perf_counter() - t
    prob = engine.infer(x)
    top, left, nh, nw = engine.box(*batch.shape[1:3])
    if (nh, nw) != prob.shape[1:]:
        prob = prob[:, top:top + nh, left:left + nw]
    return prob, pre


def segment_frames(frames: Iterable[np.ndarray], engine: Any = None, background: str | Background | None = "blur",
                   *, smooth: float = 0.0, mask_only: bool = False, feather: float = 1.0, batch_size: int = 8,
                   times: StageTimes | None = None) -> Iterator[np.ndarray]:
    """Yield each frame with its background replaced (or, ``mask_only``, its alpha as gray).

    ``engine``: anything with ``probabilities(uint8 (N, H, W, 3)) -> (N, h, w)`` (default:
    :func:`default_engine`, the pretrained SINet); ``smooth`` in [0, 1): weight of the previous
    (smoothed) probability map, 0 = off; ``batch_size`` frames go through the engine at once (they
    are held in memory together, nothing more); ``times`` collects the seconds per stage."""
    if not 0.0 <= smooth < 1.0:
        raise DataError(f"--smooth must be in [0, 1) (0: off; 0.3-0.6 is light), got {smooth}")
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    compositor = Compositor(background, feather)
    engine = default_engine() if engine is None else engine
    times = StageTimes() if times is None else times
    try:
        yield from _segment(frames, engine, compositor, smooth, mask_only, batch_size, times)
    finally:
        compositor.close()


def _segment(frames, engine, compositor, smooth, mask_only, batch_size, times) -> Iterator[np.ndarray]:
    state = None
    for batch in _batches(frames, batch_size, times):
        t0 = time.perf_counter()
        prob, pre = _probabilities(engine, batch)
        prob = np.asarray(prob, dtype=np.float32)
        if smooth > 0:
            prob = prob.copy()
            for i in range(len(prob)):
                if state is not None and state.shape == prob[i].shape:
                    prob[i] = smooth * state + (1 - smooth) * prob[i]
                state = prob[i]
        t1 = time.perf_counter()
        out = compositor(batch, prob, mask_only)
        t2 = time.perf_counter()
        times.preprocess += pre
        times.inference += t1 - t0 - pre
        times.composite += t2 - t1
        times.frames += len(out)
        yield from out


@dataclass
class VideoResult:
    """What :func:`segment_video` did: frames written, wall seconds, frames per second end to end,
    the input's description and the seconds per stage."""

    path: Path
    frames: int
    seconds: float
    info: Any
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def segment_video(src: str | Path, dst: str | Path, engine: Any = None, background: str | Background | None = "blur",
                  *, smooth: float = 0.0, mask_video: bool = False, overwrite: bool = False,
                  batch_size: int = 8, feather: float = 1.0, on_frame=None) -> VideoResult:
    """Segment the video ``src`` into ``dst`` (streaming; frame rate, size and audio kept).
    Inputs are checked before anything is written; the output is written under a temporary name in
    its folder and renamed at the end, so a failure leaves no partial file and an existing ``dst``
    (with ``overwrite``) untouched until the new one is complete. ``on_frame(done, fps)`` is called
    after every written frame (progress bars). ``engine=None``: :func:`default_engine`."""
    from reprozoo.sinet.video_io import VideoReader, VideoWriter, check_output, probe_video, temp_path

    src, dst = Path(src), Path(dst)
    info = probe_video(src)
    check_output(src, dst, overwrite)
    background = parse_background(background)
    if not 0.0 <= smooth < 1.0:
        raise DataError(f"--smooth must be in [0, 1) (0: off; 0.3-0.6 is light), got {smooth}")
    engine = default_engine() if engine is None else engine
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create the folder of {dst}: {err.strerror or err}") from None
    tmp = temp_path(dst)
    times = StageTimes()
    start = time.perf_counter()
    writer = None
    try:
        with VideoReader(src) as reader:
            writer = VideoWriter(tmp, info, audio_from=reader.audio)
            reader.audio_sink = writer.write_audio
            frames = segment_frames(reader.frames(), engine, background, smooth=smooth, mask_only=mask_video,
                                    feather=feather, batch_size=batch_size, times=times)
            for frame in frames:
                t = time.perf_counter()
                if writer.count == 0 and reader.first_time:  # a video that starts late stays in sync
                    writer.start = max(0, round(reader.first_time * info.fps))
                writer.write(frame)
                times.encode += time.perf_counter() - t
                if on_frame is not None:
                    on_frame(writer.count, writer.count / (time.perf_counter() - start))
            t = time.perf_counter()
            writer.close()
            times.encode += time.perf_counter() - t
            writer = None
        tmp.replace(dst)
    except BaseException as err:
        if writer is not None:
            writer.abort()
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and not isinstance(err, ReproZooError):
            raise OutputError(f"cannot write {dst}: {err.strerror or err}") from None
        raise
    seconds = time.perf_counter() - start
    return VideoResult(dst, times.frames, seconds, info, times.as_dict())
