"""Streaming video decode/encode through PyAV (the ``video`` extra), keeping frame rate, size and audio.

Nothing here holds more than the frame being decoded or encoded: :class:`VideoReader` demuxes the
input packet by packet and yields RGB frames (uint8 ``(H, W, 3)``); audio packets met on the way go
straight to the :class:`VideoWriter`, which remuxes them unchanged when the output container can hold
their codec and transcodes them otherwise (AAC for MP4/MOV/MKV, Opus for WebM, MP3 for AVI). Video is
encoded with H.264 (``libx264`` ultrafast, ``yuv420p``; ``yuv444p`` for odd sizes) into MP4/MOV/MKV, VP9 into
WebM and MPEG-4 part 2 into AVI, at the input's frame rate and size.

    >>> info = probe_video("clip.mp4")                                    # doctest: +SKIP
    >>> with VideoReader("clip.mp4") as reader, VideoWriter("out.mp4", info) as writer:  # doctest: +SKIP
    ...     reader.audio_sink = writer.write_audio
    ...     for frame in reader.frames():
    ...         writer.write(frame)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from reprozoo.errors import DataError, MissingDependencyError, OutputError, OutputExistsError, ReproZooError

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
INSTALL = "pip install 'reprozoo[video]'"

# output video codec and the audio codecs each container takes as they are (else: transcode)
_VIDEO_CODEC = {".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264",
                ".webm": "libvpx-vp9", ".avi": "mpeg4"}
_MP4_AUDIO = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}
_REMUX_AUDIO: dict[str, set[str] | None] = {
    ".mp4": _MP4_AUDIO, ".m4v": _MP4_AUDIO, ".mov": _MP4_AUDIO | {"pcm_s16le", "pcm_s24le", "pcm_f32le"},
    ".mkv": None, ".webm": {"opus", "vorbis"}, ".avi": {"mp3", "ac3", "pcm_s16le"}}  # None: any codec
_AUDIO_ENCODER = {".webm": "libopus", ".avi": "libmp3lame"}  # default: aac
# H.264 "ultrafast": 2.0 ms per 640x480 frame here vs 5.5 for "veryfast" (a third of a 60 FPS budget),
# for files about twice as large at the same CRF (845 vs 405 kbit/s on the generated test clip)
_ENCODER_OPTIONS = {"libx264": {"preset": "ultrafast", "crf": "20"},
                    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0"},
                    "mpeg4": {"qscale": "3"}}


def require_av():
    """The ``av`` module, or :class:`MissingDependencyError` with the install line."""
    try:
        import av
    except ImportError:
        raise MissingDependencyError(f"video files need PyAV (FFmpeg bindings): {INSTALL}") from None
    return av


def is_video_path(path: str | Path) -> bool:
    """Whether ``path`` names a video by its extension (``VIDEO_SUFFIXES``)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds: size, frame rate, an estimate of the frame count (0: unknown) and the
    audio codec (``None``: no audio)."""

    path: Path
    width: int
    height: int
    fps: Fraction
    frames: int
    audio: str | None
    audio_rate: int = 0


def _ffmpeg_errors(av) -> tuple[type[BaseException], ...]:
    return (av.error.FFmpegError, OSError, ValueError, EOFError)


def _open_input(path: Path):
    av = require_av()
    if not path.is_file():
        raise DataError(f"{path}: no such video file")
    try:
        return av.open(str(path), "r")
    except _ffmpeg_errors(av) as err:
        raise DataError(f"{path} is not a readable video ({_reason(err)})") from None


def _reason(err: BaseException) -> str:
    return (getattr(err, "strerror", None) or str(err) or type(err).__name__).strip().splitlines()[0]


def _frame_rate(stream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return Fraction(rate).limit_denominator(100_000)
    return Fraction(25)


def probe_video(path: str | Path) -> VideoInfo:
    """Open ``path``, check it has a video stream with at least one decodable frame, and describe it.
    Raises :class:`DataError` for a missing file, a file that is not a video, or zero frames."""
    path = Path(path)
    av = require_av()
    container = _open_input(path)
    try:
        if not container.streams.video:
            raise DataError(f"{path} holds no video stream (or no frames)")
        stream = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        first = None
        try:
            for frame in container.decode(stream):
                first = frame
                break
        except _ffmpeg_errors(av) as err:
            raise DataError(f"{path}: cannot decode its video ({_reason(err)})") from None
        if first is None:
            raise DataError(f"{path} holds zero video frames")
        fps = _frame_rate(stream)
        frames = int(stream.frames or 0)
        if frames <= 0 and stream.duration is not None and stream.time_base is not None:
            frames = round(float(stream.duration * stream.time_base * fps))
        elif frames <= 0 and container.duration:
            frames = round(container.duration / 1_000_000 * float(fps))
        return VideoInfo(path, first.width, first.height, fps, max(frames, 0),
                         audio.codec_context.name if audio is not None else None,
                         int(audio.codec_context.sample_rate or 0) if audio is not None else 0)
    finally:
        container.close()


class VideoReader:
    """Decode one video stream frame by frame; ``audio_sink(packet)``, when set, receives the audio
    packets of the first audio stream in file order (for :meth:`VideoWriter.write_audio`)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.container = _open_input(self.path)
        if not self.container.streams.video:
            self.close()
            raise DataError(f"{self.path} holds no video stream")
        self.video = self.container.streams.video[0]
        self.audio = self.container.streams.audio[0] if self.container.streams.audio else None
        self.video.thread_type = "AUTO"  # frame threads: decode overlaps the caller's work
        self.audio_sink: Callable[[Any], None] | None = None
        self.first_time: float | None = None  # seconds of the first video frame on the file's clock

    def frames(self) -> Iterator[np.ndarray]:
        """RGB uint8 ``(H, W, 3)`` frames in display order."""
        av = require_av()
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        try:
            for packet in self.container.demux(streams):
                if packet.stream.type == "audio":
                    if self.audio_sink is not None and packet.dts is not None:
                        try:
                            self.audio_sink(packet)
                        except _ffmpeg_errors(av) as err:  # the writer's fault, not the input's
                            raise OutputError(f"cannot write the audio: {_reason(err)}") from None
                    continue
                for frame in packet.decode():
                    if self.first_time is None:
                        self.first_time = frame.time or 0.0
                    yield frame.to_ndarray(format="rgb24")
        except ReproZooError:
            raise
        except _ffmpeg_errors(av) as err:
            raise DataError(f"{self.path}: cannot decode its video ({_reason(err)})") from None

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_output(src: Path, dst: Path, overwrite: bool) -> None:
    """Refuse an output that is the input, a folder, an existing file without ``overwrite``, an
    unknown video type or a place that cannot be written (before anything is created)."""
    if dst.is_dir():
        raise OutputError(f"--out {dst} is a folder; pass a video file name such as {dst / 'out.mp4'}")
    if not is_video_path(dst):
        raise OutputError(f"--out {dst}: a video input needs a video output ({', '.join(VIDEO_SUFFIXES)})")
    if dst.exists() and dst.resolve() == src.resolve():
        raise OutputError(f"--out {dst} is the input video; pass another file name")
    if dst.exists() and not overwrite:
        raise OutputExistsError(f"--out {dst} exists; pass --overwrite to replace it")
    parent = dst.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {dst}: {parent} is not a folder")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {dst}: {parent} is not writable")


def temp_path(path: Path) -> Path:
    """The name a video is written under before it is renamed to ``path`` (same folder and suffix,
    so the container format is the same)."""
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


class VideoWriter:
    """Encode RGB frames into ``path`` at ``info``'s size and a constant ``info.fps`` (a variable
    frame rate input is retimed to its average rate), with the input's audio when ``audio_from`` (its
    audio stream, a PyAV stream) is given; ``start`` delays the first frame by that many frame
    periods (the input's video start, so that audio stays in sync). Closing flushes the encoders.
    The file is written as is; :func:`reprozoo.sinet.video.segment_video` writes to :func:`temp_path`
    and renames."""

    def __init__(self, path: str | Path, info: VideoInfo, audio_from: Any = None):
        av = require_av()
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _VIDEO_CODEC:
            raise DataError(f"--out {self.path}: unknown video type '{suffix}'; use one of "
                            f"{', '.join(VIDEO_SUFFIXES)}")
        try:
            self.container = av.open(str(self.path), "w")
        except _ffmpeg_errors(av) as err:
            raise OutputError(f"cannot write {self.path}: {_reason(err)}") from None
        codec = _VIDEO_CODEC[suffix]
        self.video = self.container.add_stream(codec, rate=info.fps, options=dict(_ENCODER_OPTIONS.get(codec, {})))
        self.video.width, self.video.height = info.width, info.height
        odd = info.width % 2 or info.height % 2
        self.video.pix_fmt = "yuv444p" if odd and codec == "libx264" else "yuv420p"
        self.video.codec_context.time_base = Fraction(1) / info.fps
        self.audio_in = audio_from
        self.audio = None
        self._transcode = False
        if audio_from is not None:
            allowed = _REMUX_AUDIO[suffix]
            if allowed is None or audio_from.codec_context.name in allowed:
                self.audio = self.container.add_stream_from_template(audio_from)
            else:
                name = _AUDIO_ENCODER.get(suffix, "aac")
                rate = 48_000 if name == "libopus" else (info.audio_rate or 48_000)
                self.audio = self.container.add_stream(name, rate=rate)
                self.audio.layout = audio_from.codec_context.layout.name if audio_from.codec_context.layout else "stereo"
                self._transcode = True
        self.count = 0
        self.start = 0  # frames of delay before the first one (to keep a late video start in sync)

    def write(self, frame: np.ndarray) -> None:
        """Encode one RGB uint8 ``(H, W, 3)`` frame."""
        av = require_av()
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = self.start + self.count
        vf.time_base = self.video.codec_context.time_base
        self.count += 1
        self.container.mux(self.video.encode(vf))

    def write_audio(self, packet) -> None:
        """Remux (or transcode) one packet of the input's audio stream."""
        if self.audio is None:
            return
        if not self._transcode:
            packet.stream = self.audio
            self.container.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # the encoder's own clock (its sample counter) times the output
            self.container.mux(self.audio.encode(frame))

    def close(self) -> None:
        """Flush the encoders and finish the file."""
        try:
            self.container.mux(self.video.encode(None))
            if self._transcode:
                self.container.mux(self.audio.encode(None))
        finally:
            self.container.close()

    def abort(self) -> None:
        """Close without flushing (after an error; the caller deletes the file)."""
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the file is deleted anyway
            pass
