"""Small generated videos for the video tests: a procedural portrait (``reprozoo.data.portraits``)
seen through a moving window, with its exact person mask per frame, optionally with a sine-tone
audio track."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch.nn.functional as F

from reprozoo.data.portraits import render_portrait

RENDER_MAX = 360


def portrait_frames(width: int, height: int, n: int, seed: int = 0, index: int = 1,
                    hardness: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` RGB frames uint8 (n, H, W, 3) and their person masks bool (n, H, W): one portrait
    rendered at 1.125x the frame's longer side (upscaled from at most
    ``RENDER_MAX``), cropped by a window that sways left-right over the whole
    margin and bobs up and down (one period over the ``n`` frames), so the person moves smoothly
    (at most ~3.4 px per frame at 640x480 over 75 frames)."""
    side = round(1.125 * max(width, height))
    img, mask, _ = render_portrait(seed, index, size=min(side, RENDER_MAX), hardness=hardness)
    if side > RENDER_MAX:  # rendering is slow at large sizes (seconds at 720): upscale a 360 render
        img = F.interpolate(img[None], size=(side, side), mode="bilinear", align_corners=False)[0]
        mask = F.interpolate(mask[None, None].float(), size=(side, side), mode="bilinear",
                             align_corners=False)[0, 0] >= 0.5
    img = img.mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
    mask = mask.numpy().astype(bool)
    mx, my = side - width, side - height
    frames = np.empty((n, height, width, 3), np.uint8)
    masks = np.empty((n, height, width), bool)
    for t in range(n):
        phase = 2 * math.pi * t / max(n, 1)
        x0 = round(mx / 2 * (1 + math.sin(phase)))
        y0 = round(my * (0.35 + 0.15 * math.sin(2 * phase)))
        frames[t] = img[y0:y0 + height, x0:x0 + width]
        masks[t] = mask[y0:y0 + height, x0:x0 + width]
    return frames, masks


def write_video(path: Path, frames: np.ndarray, fps: int = 25, audio: bool = False,
                audio_rate: int = 44_100, codec: str = "libx264", video_start: int = 0) -> Path:
    """Encode ``frames`` (nearly lossless: crf 12) with an optional 440 Hz mono AAC tone as long as
    the video; ``video_start``: frames of delay before the first video frame (the audio starts at 0)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps, options={"crf": "12", "preset": "veryfast"}
                                if codec == "libx264" else {})
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        sound = None
        if audio:
            sound = out.add_stream("aac", rate=audio_rate)
            sound.layout = "mono"
        for i, frame in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts, vf.time_base = video_start + i, Fraction(1, fps)
            out.mux(stream.encode(vf))
        out.mux(stream.encode(None))
        if sound is not None:
            n = round(len(frames) / fps * audio_rate)
            t = np.arange(n) / audio_rate
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, n, 1024):
                chunk = tone[start:start + 1024][None]
                af = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                af.sample_rate, af.pts, af.time_base = audio_rate, start, Fraction(1, audio_rate)
                out.mux(sound.encode(af))
            out.mux(sound.encode(None))
    return path


def read_video(path: Path) -> dict:
    """Everything the tests check: frames (n, H, W, 3) uint8, fps, the first frame's time (s), the
    audio stream's codec, rate and duration."""
    import av

    with av.open(str(path)) as inp:
        v = inp.streams.video[0]
        decoded = [(f.time, f.to_ndarray(format="rgb24")) for f in inp.decode(v)]
        frames = np.stack([f for _, f in decoded])
        fps, start = v.average_rate, decoded[0][0] or 0.0
    audio = None
    with av.open(str(path)) as inp:
        if inp.streams.audio:
            a = inp.streams.audio[0]
            samples = sum(f.samples for f in inp.decode(a))
            audio = {"codec": a.codec_context.name, "rate": a.codec_context.sample_rate,
                     "seconds": samples / a.codec_context.sample_rate}
    return {"frames": frames, "fps": Fraction(fps), "audio": audio, "video_start": start}
