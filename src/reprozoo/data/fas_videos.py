"""Readers for face anti-spoofing video collections (OULU-NPU / CASIA / Replay-Attack / MSU style).

A *video* is either a video file or a folder of frame images; it has a label (live / spoof) and a
domain (dataset or camera). Two layouts are read:

* **CSV manifest** (:func:`read_manifest`): columns ``path,label`` and optionally ``domain`` and
  ``video_id``. ``path`` is relative to the CSV's folder and points at a video file, a frame folder,
  or a single frame image; rows that share a ``video_id`` are frames of one video (grouping is always
  explicit, never parsed from file names). Without a ``video_id`` column each row is its own video.
* **folders** (:func:`scan_folders`): ``root/<domain>/<live|spoof>/<video>``, where ``<video>`` is a
  frame folder or a video file; the video id is its path relative to ``root``.

Labels are ``live``/``real``/``bona_fide``/``genuine`` or ``spoof``/``attack``/``fake``/``print``/
``replay``, or the integers 1 (live) / 0 (spoof) (``live_label`` flips the integer polarity).
Frames are decoded with torchvision (PNG/JPEG/...); video files (GIF/TIFF stacks natively, MP4/AVI
with PyAV installed) through imageio. Every problem names the offending item.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from reprozoo.errors import DataError, MissingDependencyError
from reprozoo.runtime.extras import require

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_SUFFIXES = (".gif", ".tif", ".tiff", ".mp4", ".avi", ".mov", ".mkv", ".webm")
LIVE_NAMES = ("live", "real", "bona_fide", "bonafide", "genuine")
SPOOF_NAMES = ("spoof", "attack", "fake", "print", "replay")


@dataclass
class VideoItem:
    """One video: its id, label (1 = live), domain and the files behind it (a video file, a frame
    folder, or explicit frame images)."""

    video_id: str
    label: int
    domain: str
    paths: list[Path] = field(default_factory=list)


def parse_label(value: str, where: str, live_label: int = 1) -> int:
    text = str(value).strip().lower()
    if text in LIVE_NAMES:
        return 1
    if text in SPOOF_NAMES:
        return 0
    if text in ("0", "1"):
        return int(int(text) == live_label)
    if not text:
        raise DataError(f"{where}: the label is missing (use live/spoof or 1/0)")
    raise DataError(f"{where}: unknown label '{value}' (use live/spoof or 1/0)")


def sample_indices(n: int, frames: str | int = "all") -> list[int]:
    """Frame indices: ``"all"``, ``"uniform:M"`` (M evenly spaced, all if fewer) or an int M."""
    if isinstance(frames, int) or (isinstance(frames, str) and frames.isdigit()):
        frames = f"uniform:{int(frames)}"
    if frames == "all":
        return list(range(n))
    if isinstance(frames, str) and frames.startswith("uniform:"):
        try:
            m = int(frames.split(":", 1)[1])
        except ValueError:
            m = 0
        if m < 1:
            raise DataError(f"frames must be 'all' or 'uniform:M' with M >= 1, got '{frames}'")
        if n <= m:
            return list(range(n))
        return np.unique(np.linspace(0, n - 1, m).round().astype(int)).tolist()
    raise DataError(f"frames must be 'all' or 'uniform:M', got '{frames}'")


def read_image(path: Path) -> torch.Tensor:
    """One RGB frame as uint8 (3, H, W)."""
    from torchvision.io import ImageReadMode, decode_image, read_file

    try:
        return decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
    except Exception as err:  # noqa: BLE001
        raise DataError(f"cannot read frame {path}: {type(err).__name__}: {err}") from None


def _read_video_file(path: Path) -> list[np.ndarray]:
    iio = require("imageio.v3", what=f"reading {path.suffix} videos")

    try:
        frames = iio.imread(path, index=None)
    except (ImportError, ModuleNotFoundError) as err:
        raise MissingDependencyError(f"reading {path.suffix} videos needs PyAV: pip install 'reprozoo[video]' ({err})") from None
    except Exception as err:  # noqa: BLE001
        msg = str(err)
        if "plugin" in msg.lower() or "backend" in msg.lower():
            raise MissingDependencyError(f"reading {path.suffix} videos needs PyAV: pip install 'reprozoo[video]'") from None
        raise DataError(f"cannot read video {path}: {type(err).__name__}: {err}") from None
    arr = np.asarray(frames)
    if arr.ndim == 2:  # one grayscale frame
        arr = arr[None]
    if arr.ndim == 3:  # (T, H, W) grayscale stack
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 4:
        raise DataError(f"cannot read video {path}: unexpected frame array of shape {arr.shape}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return [f[..., :3] for f in arr]


def frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_frames(source: Path | Sequence[Path], frames: str | int = "all", name: str | None = None) -> torch.Tensor:
    """A video's frames as uint8 ``(T, 3, H, W)`` from a video file, a frame folder, or a list of
    frame images (in the given order); ``frames`` selects which (see :func:`sample_indices`)."""
    if isinstance(source, (str, Path)):
        source = Path(source)
        label = name or str(source)
        if source.is_dir():
            files = frame_files(source)
            if not files:
                raise DataError(f"video {label}: the folder holds no frames ({', '.join(IMAGE_SUFFIXES)})")
            return torch.stack([read_image(files[i]) for i in sample_indices(len(files), frames)])
        if not source.exists():
            raise DataError(f"video {label}: {source} does not exist")
        if source.suffix.lower() in IMAGE_SUFFIXES:
            return read_image(source)[None]
        if source.suffix.lower() not in VIDEO_SUFFIXES:
            raise DataError(f"video {label}: unsupported file type '{source.suffix}' "
                            f"(frames: {', '.join(IMAGE_SUFFIXES)}; videos: {', '.join(VIDEO_SUFFIXES)})")
        arr = _read_video_file(source)
        if not arr:
            raise DataError(f"video {label}: the file has no frames")
        sel = sample_indices(len(arr), frames)
        return torch.stack([torch.from_numpy(np.ascontiguousarray(arr[i])).permute(2, 0, 1) for i in sel]).to(
            torch.uint8)
    paths = [Path(p) for p in source]
    label = name or "video"
    if not paths:
        raise DataError(f"video {label}: no frames")
    return torch.stack([read_image(paths[i]) for i in sample_indices(len(paths), frames)])


def read_manifest(csv_path: str | Path, live_label: int = 1, default_domain: str = "") -> list[VideoItem]:
    """Videos listed in a CSV (see the module docstring), in first-appearance order."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"manifest {csv_path} does not exist")
    raw = csv_path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{csv_path}: not UTF-8 text (byte {err.object[err.start]:#04x} on line "
                        f"{err.object[:err.start].count(10) + 1}); save the manifest as UTF-8") from None
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        cols = [c.strip() for c in (reader.fieldnames or [])]
        if "path" not in cols or "label" not in cols:
            raise DataError(f"{csv_path}: needs columns path,label (optional domain, video_id); got {cols}")
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if isinstance(k, str) and isinstance(v, str)}
                for row in reader]
    except csv.Error as err:
        raise DataError(f"{csv_path}: not a readable CSV file ({err})") from None
    if not rows:
        raise DataError(f"{csv_path}: the manifest lists no videos")
    items: dict[str, VideoItem] = {}
    for line, row in enumerate(rows, start=2):
        where = f"{csv_path}:{line}"
        if not row.get("path"):
            raise DataError(f"{where}: the path is missing")
        vid = row.get("video_id") if "video_id" in cols else row["path"]
        if "video_id" in cols and not vid:
            raise DataError(f"{where}: the video_id is missing")
        label = parse_label(row.get("label", ""), f"{where} (video '{vid}')", live_label)
        domain = row.get("domain", "") if "domain" in cols else default_domain
        if "domain" in cols and not domain:
            raise DataError(f"{where} (video '{vid}'): the domain is missing")
        path = csv_path.parent / row["path"]
        if vid in items:
            it = items[vid]
            if it.label != label or it.domain != domain:
                raise DataError(f"{where}: video '{vid}' has frames with different labels or domains")
            it.paths.append(path)
        else:
            items[vid] = VideoItem(vid, label, domain, [path])
    return list(items.values())


def scan_folders(root: str | Path) -> list[VideoItem]:
    """``root/<domain>/<live|spoof>/<video>`` (a frame folder or a video file per video)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    items = []
    for dom in sorted(p for p in root.iterdir() if p.is_dir()):
        for cls in sorted(p for p in dom.iterdir() if p.is_dir()):
            label = parse_label(cls.name, f"folder {cls}")
            for video in sorted(cls.iterdir()):
                if video.is_dir() or video.suffix.lower() in VIDEO_SUFFIXES:
                    items.append(VideoItem(str(video.relative_to(root)), label, dom.name, [video]))
    if not items:
        raise DataError(f"{root}: no videos found; expected <domain>/<live|spoof>/<video folder or file>")
    return items


def load_item(item: VideoItem, frames: str | int = "all") -> torch.Tensor:
    """Frames of one :class:`VideoItem` (one path: a video or folder; several: frame images)."""
    if len(item.paths) == 1:
        return read_frames(item.paths[0], frames, name=item.video_id)
    return read_frames(item.paths, frames, name=item.video_id)
