"""Synthetic face anti-spoofing videos: live faces, print and replay attacks, seen by several cameras.

Built only from the 100 LFW face crops bundled with scikit-image (:func:`reprozoo.data.lfw_faces`),
so it runs offline. Every (domain, identity) gets one *live* video and two attack videos:

* **print**: the face printed on paper: halftone dot screen (period and angle drawn per video),
  contrast squeezed into ``[0.15, 0.85]``, paper grain, slight blur; the sheet then moves as a whole;
* **replay**: the (moving) face shown on a display: display gamma, moire (a grating multiplied in,
  its phase drifting from frame to frame), a pixel grid and a soft glare blob.

Every frame gets head motion (shift, rotation), lighting flicker and then the *camera* of its
domain: colour cast, blur, a resolution drop (down- then up-sampling), 8x8 DCT quantisation
(a JPEG stand-in) and sensor noise. A :class:`CameraDomain` also fixes the attack parameter
*ranges*, so a held-out domain shows attacks whose halftone periods / moire periods / gammas lie
outside the ranges seen in training (the cross-domain shift of the OCIM benchmark).

Every video is a pure function of ``(seed, domain, identity, kind)``.

    >>> from reprozoo.data.fas_synth import DEFAULT_DOMAINS, generate_fas
    >>> v = generate_fas(DEFAULT_DOMAINS[:1], identities=range(2), n_frames=4, size=32, seed=0)
    >>> v.frames.shape, v.video_names[:3]
    (torch.Size([24, 3, 32, 32]), ['cam0/id000/live', 'cam0/id000/print', 'cam0/id000/replay'])
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from reprozoo.data.sources import lfw_faces
from reprozoo.errors import DataError

KINDS = ("live", "print", "replay")  # attack code: 0 live, 1 print, 2 replay


@dataclass(frozen=True)
class CameraDomain:
    """One capture setup. Ranges are ``(low, high)`` of a uniform draw per video."""

    name: str
    res_factor: float = 1.0  # the sensor's resolution relative to the output (1 = full)
    blur: float = 0.3  # Gaussian blur sigma in output pixels
    noise: float = 0.02  # sensor noise sigma (intensity in [0, 1])
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)  # RGB gains
    dct_step: float = 0.0  # 8x8 DCT quantisation step (0 = off); grows with frequency
    halftone_period: tuple[float, float] = (3.0, 5.0)
    halftone_angle: tuple[float, float] = (0.0, 90.0)  # degrees
    halftone_mix: tuple[float, float] = (0.2, 0.45)
    moire_period: tuple[float, float] = (2.0, 4.0)
    moire_amp: tuple[float, float] = (0.06, 0.15)
    gamma: tuple[float, float] = (1.3, 1.8)
    grid_strength: tuple[float, float] = (0.08, 0.2)
    glare: tuple[float, float] = (0.1, 0.3)


# Four cameras as stand-ins for the O/C/I/M datasets: different optics and noise, and attack
# parameter ranges that only partly overlap.
DEFAULT_DOMAINS: tuple[CameraDomain, ...] = (
    CameraDomain("cam0", res_factor=1.0, blur=0.3, noise=0.01, cast=(1.0, 1.0, 1.0), dct_step=0.0,
                 halftone_period=(3.0, 3.6), halftone_angle=(0, 25), moire_period=(2.0, 2.6), gamma=(1.3, 1.45)),
    CameraDomain("cam1", res_factor=0.75, blur=0.5, noise=0.02, cast=(1.08, 1.0, 0.9), dct_step=0.02,
                 halftone_period=(3.5, 4.1), halftone_angle=(20, 45), moire_period=(2.5, 3.1), gamma=(1.4, 1.55)),
    CameraDomain("cam2", res_factor=0.6, blur=0.7, noise=0.035, cast=(0.92, 1.0, 1.1), dct_step=0.03,
                 halftone_period=(4.0, 4.6), halftone_angle=(40, 65), moire_period=(3.0, 3.6), gamma=(1.5, 1.65)),
    CameraDomain("cam3", res_factor=0.5, blur=0.9, noise=0.05, cast=(1.0, 1.07, 0.95), dct_step=0.04,
                 halftone_period=(4.5, 5.1), halftone_angle=(60, 90), moire_period=(3.5, 4.1), gamma=(1.65, 1.8)),
)


def cache_root() -> Path:
    return Path(os.environ.get("REPROZOO_CACHE") or Path.home() / ".cache" / "reprozoo") / "fas_synth"


@dataclass
class FASVideos:
    """Frames and their grouping. ``frames`` uint8 ``(N, 3, S, S)``; per frame: ``label`` (1 live,
    0 spoof), ``video`` (index into ``video_names``), ``domain`` (index into ``domain_names``),
    ``identity`` (LFW face index) and ``attack`` (0 live, 1 print, 2 replay)."""

    frames: torch.Tensor
    label: torch.Tensor
    video: torch.Tensor
    domain: torch.Tensor
    identity: torch.Tensor
    attack: torch.Tensor
    video_names: list[str] = field(default_factory=list)
    domain_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def n_videos(self) -> int:
        return len(self.video_names)

    def subset(self, mask: torch.Tensor) -> FASVideos:
        """Frames where ``mask`` holds (video indices are kept, so names stay valid)."""
        return FASVideos(self.frames[mask], self.label[mask], self.video[mask], self.domain[mask],
                         self.identity[mask], self.attack[mask], self.video_names, self.domain_names)

    def first_frames(self, k: int) -> FASVideos:
        """The first ``k`` frames of every video (e.g. 8 of 16 for training)."""
        order = torch.zeros(len(self), dtype=torch.long)
        counts: dict[int, int] = {}
        for i, v in enumerate(self.video.tolist()):
            order[i] = counts.get(v, 0)
            counts[v] = order[i].item() + 1
        return self.subset(order < k)


def _rng(seed: int, *parts: object) -> np.random.Generator:
    key = "/".join(str(p) for p in (seed, *parts))
    return np.random.default_rng(zlib.crc32(key.encode()))


def _u(rng: np.random.Generator, lohi: Sequence[float]) -> float:
    return float(rng.uniform(lohi[0], lohi[1]))


@lru_cache(maxsize=4)
def _faces(size: int) -> torch.Tensor:
    return lfw_faces(size)[:100]  # (100, 1, S, S); the first 100 crops are faces


@lru_cache(maxsize=4)
def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    c = torch.arange(size, dtype=torch.float32)
    return torch.meshgrid(c, c, indexing="ij")  # (yy, xx) in pixels


@lru_cache(maxsize=1)
def _dct8() -> torch.Tensor:
    n = torch.arange(8, dtype=torch.float64)
    d = torch.cos(math.pi * (2 * n[None] + 1) * n[:, None] / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d.float()


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with replicate borders, as weighted sums of shifted views (much
    faster on CPU than a depthwise convolution at these sizes)."""
    if sigma <= 0:
        return x
    r = max(1, int(math.ceil(2.5 * sigma)))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = (k / k.sum()).tolist()
    h, w = x.shape[-2:]
    xp = F.pad(x, (r, r, 0, 0), mode="replicate")
    x = sum(k[i] * xp[..., :, i:i + w] for i in range(2 * r + 1))
    xp = F.pad(x, (0, 0, r, r), mode="replicate")
    return sum(k[i] * xp[..., i:i + h, :] for i in range(2 * r + 1))


def _dct_quantise(x: torch.Tensor, step: float) -> torch.Tensor:
    """JPEG-like: 8x8 block DCT, uniform quantisation with a step growing with frequency, inverse."""
    if step <= 0:
        return x
    n, c, h, w = x.shape
    ph, pw = (-h) % 8, (-w) % 8
    xp = F.pad(x, (0, pw, 0, ph), mode="replicate")
    hh, ww = xp.shape[-2:]
    b = xp.reshape(n, c, hh // 8, 8, ww // 8, 8).permute(0, 1, 2, 4, 3, 5)
    d = _dct8()
    coef = d @ b @ d.T
    f = torch.arange(8, dtype=torch.float32)
    q = step * (1.0 + (f[:, None] + f[None]) / 2.0)
    coef = torch.round(coef / q) * q
    out = (d.T @ coef @ d).permute(0, 1, 2, 4, 3, 5).reshape(n, c, hh, ww)
    return out[..., :h, :w]


def _t(values, shape=(-1, 1, 1, 1)) -> torch.Tensor:
    return torch.tensor(np.asarray(values, dtype=np.float32)).view(*shape)


def _motion(img: torch.Tensor, ang: np.ndarray, shift: np.ndarray) -> torch.Tensor:
    """Frames of ``img`` (N, 3, S, S) rotated by ``ang`` (N,) radians and shifted by ``shift``
    (N, 2) pixels."""
    n, _, s, _ = img.shape
    tx, ty = shift[:, 0] * 2.0 / s, shift[:, 1] * 2.0 / s
    theta = torch.tensor(np.stack([np.stack([np.cos(ang), -np.sin(ang), tx], 1),
                                   np.stack([np.sin(ang), np.cos(ang), ty], 1)], 1), dtype=torch.float32)
    grid = F.affine_grid(theta, (n, 3, s, s), align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _print_attack(img: torch.Tensor, p: dict[str, np.ndarray]) -> torch.Tensor:
    """Print attack on still faces ``img`` (V, 3, S, S) with per-video parameters ``p``."""
    s = img.shape[-1]
    yy, xx = _grid(s)
    ang, period = _t(np.deg2rad(p["angle"])), _t(p["period"])
    u = (xx * torch.cos(ang) + yy * torch.sin(ang)) * 2 * math.pi / period
    v = (-xx * torch.sin(ang) + yy * torch.cos(ang)) * 2 * math.pi / period
    screen = 0.5 + 0.25 * (torch.cos(u) + torch.cos(v))
    dots = torch.sigmoid(10.0 * (img - screen))
    mix = _t(p["mix"])
    out = (1 - mix) * img + mix * dots
    out = 0.15 + 0.7 * out  # ink and paper cannot reach full black / white
    out = out + 0.04 * _blur(torch.from_numpy(p["grain"]).float(), 0.8)
    return _blur(out, 0.4).clamp(0, 1)


def _replay_attack(frames: torch.Tensor, p: dict[str, np.ndarray], n_frames: int) -> torch.Tensor:
    """Replay attack on moving frames ``(V * n_frames, 3, S, S)``; ``p`` holds per-video values
    (and per-frame ``phase``/``jitter``)."""
    s = frames.shape[-1]
    yy, xx = _grid(s)
    per_frame = lambda a: _t(np.repeat(np.asarray(a, np.float32), n_frames))  # noqa: E731
    out = frames.clamp(0, 1) ** per_frame(p["gamma"])
    ang, period = per_frame(p["moire_angle"]), per_frame(p["moire_period"])
    wave = (xx * torch.cos(ang) + yy * torch.sin(ang)) * 2 * math.pi / period
    out = out * (1 + per_frame(p["moire_amp"]) * torch.sin(wave + _t(p["phase"].reshape(-1))))
    pitch = per_frame(p["pitch"])
    lines = ((torch.remainder(xx, pitch) == 0) | (torch.remainder(yy, pitch) == 0)).float()
    out = out * (1 - per_frame(p["grid"]) * lines)
    jit = p["jitter"].reshape(-1, 2)
    gx = per_frame(p["glare_x"]) + _t(jit[:, 0])
    gy = per_frame(p["glare_y"]) + _t(jit[:, 1])
    gs = per_frame(p["glare_size"])
    blob = torch.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * gs**2))
    return (out + per_frame(p["glare"]) * blob).clamp(0, 1)


def _camera(frames: torch.Tensor, dom: CameraDomain, noise: torch.Tensor) -> torch.Tensor:
    s = frames.shape[-1]
    cast = torch.tensor(dom.cast, dtype=torch.float32).view(1, 3, 1, 1)
    x = _blur(frames * cast, dom.blur)
    if dom.res_factor < 1.0:
        low = max(4, int(round(s * dom.res_factor)))
        x = F.interpolate(x, size=(low, low), mode="bilinear", antialias=True, align_corners=False)
        x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
    x = _dct_quantise(x, dom.dct_step)
    return (x + dom.noise * noise).clamp(0, 1)


def _draw(seed: int, dom: CameraDomain, ident: int, kind: str, n: int, s: int) -> dict[str, np.ndarray]:
    """Every random number of one video, in a fixed order (a pure function of its key)."""
    rid = _rng(seed, "identity", ident)
    p: dict[str, np.ndarray] = {"skin": np.array([1.0, rid.uniform(0.72, 0.86), rid.uniform(0.58, 0.74)]),
                                "bright": np.array(rid.uniform(0.85, 1.1))}
    rng = _rng(seed, dom.name, ident, kind)
    p["period"], p["angle"], p["mix"] = _u(rng, dom.halftone_period), _u(rng, dom.halftone_angle), _u(
        rng, dom.halftone_mix)
    p["grain"] = rng.normal(0, 1, (1, s, s))
    p["rot"] = np.deg2rad(rng.uniform(-3.0, 3.0, n))
    p["shift"] = rng.uniform(-1.0, 1.0, (n, 2))
    p["gamma"], p["moire_period"], p["moire_angle"] = _u(rng, dom.gamma), _u(rng, dom.moire_period), float(
        rng.uniform(0, math.pi))
    p["moire_amp"], p["grid"], p["pitch"] = _u(rng, dom.moire_amp), _u(rng, dom.grid_strength), float(
        rng.integers(2, 4))
    p["phase"] = rng.uniform(0, 2 * math.pi) + np.cumsum(rng.normal(0, 0.6, n))
    p["glare_x"], p["glare_y"] = rng.uniform(0.2 * s, 0.8 * s), rng.uniform(0.1 * s, 0.5 * s)
    p["glare_size"], p["glare"] = rng.uniform(0.12 * s, 0.3 * s), _u(rng, dom.glare)
    p["jitter"] = rng.normal(0, 0.5, (n, 2))
    p["flicker"] = 1 + rng.uniform(-0.05, 0.05, n)
    p["noise"] = rng.standard_normal((n, 3, s, s), dtype=np.float32)
    return p


def _render(items: Sequence[tuple[int, str]], dom: CameraDomain, n: int, s: int, seed: int) -> torch.Tensor:
    """Float frames ``(len(items) * n, 3, s, s)`` for (identity, kind) pairs, batched."""
    for ident, kind in items:
        if kind not in KINDS:
            raise DataError(f"kind must be one of {', '.join(KINDS)}, got '{kind}'")
        if not 0 <= ident < 100:
            raise DataError(f"identity must be an LFW face index in [0, 100), got {ident}")
    ps = [_draw(seed, dom, ident, kind, n, s) for ident, kind in items]
    stack = lambda key, idx=None: np.stack([ps[i][key] for i in (range(len(ps)) if idx is None else idx)])  # noqa: E731
    faces = _faces(s)[[ident for ident, _ in items]]  # (V, 1, S, S)
    faces = faces * _t(stack("skin"), (-1, 3, 1, 1)) * _t(stack("bright"))
    prints = [i for i, (_, k) in enumerate(items) if k == "print"]
    if prints:
        faces = faces.clone()
        faces[prints] = _print_attack(faces[prints].clamp(0, 1), {k: stack(k, prints) for k in
                                                                   ("period", "angle", "mix", "grain")})
    frames = _motion(faces.repeat_interleave(n, 0), stack("rot").reshape(-1), stack("shift").reshape(-1, 2))
    replays = [i for i, (_, k) in enumerate(items) if k == "replay"]
    if replays:
        rows = (np.asarray(replays)[:, None] * n + np.arange(n)).reshape(-1)
        keys = ("gamma", "moire_period", "moire_angle", "moire_amp", "grid", "pitch", "phase", "glare_x",
                "glare_y", "glare_size", "glare", "jitter")
        frames[rows] = _replay_attack(frames[rows], {k: stack(k, replays) for k in keys}, n)
    frames = frames * _t(stack("flicker").reshape(-1))
    return _camera(frames, dom, torch.from_numpy(stack("noise").reshape(-1, 3, s, s)))


def render_video(identity: int, kind: str, domain: CameraDomain, *, n_frames: int = 16, size: int = 32,
                 seed: int = 0) -> torch.Tensor:
    """One video as float frames ``(n_frames, 3, size, size)`` in [0, 1] (identical to its frames
    in :func:`generate_fas`)."""
    return _render([(identity, kind)], domain, n_frames, size, seed)


def generate_fas(domains: Sequence[CameraDomain] = DEFAULT_DOMAINS, identities: Iterable[int] = range(100),
                 n_frames: int = 16, size: int = 32, seed: int = 0,
                 kinds: Sequence[str] = KINDS) -> FASVideos:
    """Every (domain, identity, kind) video, frames stacked as uint8 (see :class:`FASVideos`)."""
    identities = list(identities)
    if n_frames < 1:
        raise DataError(f"n_frames must be >= 1, got {n_frames}")
    if size < 8:
        raise DataError(f"size must be >= 8, got {size}")
    if not domains or not identities:
        raise DataError("need at least one domain and one identity")
    names = [d.name for d in domains]
    if len(set(names)) != len(names):
        raise DataError(f"domain names must be distinct, got {names}")
    frames, meta, video_names = [], [], []
    for di, dom in enumerate(domains):
        items = [(ident, kind) for ident in identities for kind in kinds]
        for start in range(0, len(items), 64):  # batches of videos bound the memory
            chunk = items[start:start + 64]
            frames.append((_render(chunk, dom, n_frames, size, seed) * 255).round().to(torch.uint8))
        for ident, kind in items:
            meta.append((1 if kind == "live" else 0, len(video_names), di, ident, KINDS.index(kind)))
            video_names.append(f"{dom.name}/id{ident:03d}/{kind}")
    cols = torch.tensor(meta, dtype=torch.long).repeat_interleave(n_frames, dim=0)
    return FASVideos(torch.cat(frames), cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3], cols[:, 4],
                     video_names, names)


_FIELDS = ("frames", "label", "video", "domain", "identity", "attack")


def cached_fas(domains: Sequence[CameraDomain] = DEFAULT_DOMAINS, identities: Iterable[int] = range(100),
               n_frames: int = 16, size: int = 32, seed: int = 0, kinds: Sequence[str] = KINDS) -> FASVideos:
    """:func:`generate_fas` with a cache under ``$REPROZOO_CACHE/fas_synth`` keyed by a hash of
    every argument (safe to delete; a corrupt file is regenerated)."""
    identities = list(identities)
    key = json.dumps({"v": 1, "domains": [asdict(d) for d in domains], "ids": identities, "n": n_frames,
                      "size": size, "seed": seed, "kinds": list(kinds)}, sort_keys=True)
    path = cache_root() / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.pt"
    if path.exists():
        try:
            d = torch.load(path, weights_only=True)
            return FASVideos(*(d[k] for k in _FIELDS), d["video_names"], d["domain_names"])
        except Exception:  # noqa: BLE001 - a broken cache file is rebuilt
            path.unlink(missing_ok=True)
    v = generate_fas(domains, identities, n_frames, size, seed, kinds)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({**{k: getattr(v, k) for k in _FIELDS}, "video_names": v.video_names,
                "domain_names": v.domain_names}, tmp)
    os.replace(tmp, path)
    return v
