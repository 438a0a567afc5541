"""Procedural "portrait" images with exact person masks, built only from bundled pictures.

A head-and-shoulders silhouette (head ellipse, hair cap with thin strands, neck, superellipse
shoulders running off the bottom edge) is drawn over a background cut from one of scikit-image's
textures; one of the 100 LFW face crops (``reprozoo.data.lfw_faces``) is tinted to a skin tone and
blended onto the head; clothing is another texture or stripes. Everything is rendered at twice the
output size and averaged down, so edges are anti-aliased; the mask is the shapes' union at 0.5.

Every sample is a pure function of ``(seed, index)``. ``framing="full_body"`` draws a smaller
person with torso and legs in a wider scene (input for the SINet paper's portrait-crop trick);
``head_box`` is returned for both framings.

    >>> from reprozoo.data.portraits import generate_portraits
    >>> data = generate_portraits(8, size=64, seed=0)
    >>> data.images.shape, data.masks.shape, data.head_boxes.shape
    (torch.Size([8, 3, 64, 64]), torch.Size([8, 64, 64]), torch.Size([8, 4]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from reprozoo.data.sources import lfw_faces, textures
from reprozoo.errors import DataError

# no people in these pictures (camera/astronaut show persons and are left out on purpose)
BACKGROUND_TEXTURES = ("brick", "grass", "gravel", "coffee", "chelsea", "rocket", "moon", "page", "text", "coins")
CLOTH_TEXTURES = ("brick", "grass", "gravel", "page", "text", "coins")
FRAMINGS = ("portrait", "full_body")
_SKIN_LIGHT = np.array([0.96, 0.80, 0.68])
_SKIN_DARK = np.array([0.38, 0.25, 0.17])


@dataclass
class PortraitSet:
    """``images`` uint8 (N, 3, S, S) RGB, ``masks`` uint8 (N, S, S) in {0, 1}, ``head_boxes``
    float (N, 4) as (x0, y0, x1, y1) pixels."""

    images: torch.Tensor
    masks: torch.Tensor
    head_boxes: torch.Tensor

    def __len__(self) -> int:
        return len(self.images)


@lru_cache(maxsize=1)
def _textures() -> dict[str, torch.Tensor]:
    return textures(list(BACKGROUND_TEXTURES))


@lru_cache(maxsize=1)
def _faces() -> torch.Tensor:
    return lfw_faces()[:100]  # the first 100 crops are faces


def _texture_patch(rng: np.random.Generator, names, res: int) -> torch.Tensor:
    tex = _textures()[names[rng.integers(len(names))]]
    _, h, w = tex.shape
    side = int(min(h, w) * rng.uniform(0.35, 1.0))
    y0, x0 = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    patch = tex[:, y0:y0 + side, x0:x0 + side][None]
    patch = F.interpolate(patch, size=(res, res), mode="bilinear", align_corners=False)[0]
    patch = torch.rot90(patch, int(rng.integers(4)), dims=(1, 2))
    if rng.random() < 0.5:
        patch = patch.flip(2)
    gain = torch.tensor(rng.uniform(0.55, 1.45, 3), dtype=torch.float32)[:, None, None]
    return (patch * gain + float(rng.uniform(-0.15, 0.15))).clamp(0, 1)


def _stripes(rng: np.random.Generator, xx: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
    phi, freq = rng.uniform(0, math.pi), rng.uniform(15, 60)
    wave = torch.sin(freq * (xx * math.cos(phi) + yy * math.sin(phi)))
    w = (wave > 0).float()[None]
    c1 = torch.tensor(rng.uniform(0, 1, 3), dtype=torch.float32)[:, None, None]
    c2 = torch.tensor(rng.uniform(0, 1, 3), dtype=torch.float32)[:, None, None]
    return c1 * w + c2 * (1 - w)


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    from torchvision.transforms.v2 import functional as TF

    k = int(2 * round(3 * sigma) + 1)
    return TF.gaussian_blur(img, [k, k], [sigma, sigma])


def _local(xx, yy, cx, cy, a, b, theta):
    c, s = math.cos(theta), math.sin(theta)
    dx, dy = xx - cx, yy - cy
    return (dx * c + dy * s) / a, (-dx * s + dy * c) / b


def _strands(rng, res: int, cx, cy, a, b, theta, scale, ox, oy) -> torch.Tensor:
    """A few thin wavy hair strands leaving the top of the head (fine boundary detail), rasterised
    as densely sampled points on the render grid (about 1-2 render pixels wide)."""
    out = torch.zeros(res, res, dtype=torch.bool)
    c, s = math.cos(theta), math.sin(theta)
    for _ in range(int(rng.integers(2, 7))):
        ang = rng.uniform(-2.6, -0.5)  # upper half of the head, in head coordinates
        length, wobble, freq = rng.uniform(0.15, 0.6), rng.uniform(0.02, 0.1), rng.uniform(4, 12)
        t = np.linspace(0.0, 1.0, 4 * res)
        r = 1.0 + length * t
        u = r * np.cos(ang) * 1.1 + wobble * np.sin(freq * t)
        v = r * np.sin(ang) * 1.08 - 0.05
        px = (cx + (u * a) * c - (v * b) * s) * scale + ox
        py = (cy + (u * a) * s + (v * b) * c) * scale + oy
        ix, iy = np.floor(px * res).astype(int), np.floor(py * res).astype(int)
        keep = (ix >= 0) & (ix < res) & (iy >= 0) & (iy < res)
        out[torch.from_numpy(iy[keep]), torch.from_numpy(ix[keep])] = True
    if rng.random() < 0.5:  # thicker strands
        out = F.max_pool2d(out[None, None].float(), 3, 1, 1)[0, 0] > 0
    return out


def _person(rng, xx, yy, framing: str):
    """Shapes of one person in canvas coordinates [0, 1]. Returns a dict of boolean maps + geometry."""
    if framing == "portrait":
        scale, ox, oy = 1.0, 0.0, 0.0
    else:  # a smaller full-body figure somewhere in a wide scene
        scale = rng.uniform(0.28, 0.38)  # the figure spans about 2.4 person units in height
        ox, oy = rng.uniform(0.0, 1.0 - scale), rng.uniform(0.0, max(0.0, 0.95 - 2.4 * scale))
    px, py = (xx - ox) / scale, (yy - oy) / scale  # person coordinates
    a = rng.uniform(0.10, 0.16)
    b = a * rng.uniform(1.15, 1.4)
    cx = float(np.clip(rng.normal(0.5, 0.08), 0.28, 0.72))
    cy = rng.uniform(0.28, 0.45)
    theta = math.radians(rng.uniform(-15, 15))
    u, v = _local(px, py, cx, cy, a, b, theta)
    head = u ** 2 + v ** 2 <= 1
    # hair cap: a slightly larger ellipse, clipped above the brow, plus strands
    hu, hv = _local(px, py, cx, cy - 0.06 * b, a * rng.uniform(1.08, 1.2), b * rng.uniform(1.05, 1.15), theta)
    brow = rng.uniform(-0.45, -0.1)
    hair = (hu ** 2 + hv ** 2 <= 1) & (v < brow)
    if rng.random() < 0.35:  # longer hair down the sides
        hair |= (hu ** 2 + (hv / 1.5) ** 2 <= 1) & (u.abs() > 0.8) & (v < 0.9)
    hair |= _strands(rng, xx.shape[0], cx, cy, a, b, theta, scale, ox, oy)
    # neck and shoulders
    neck_top, neck_len = cy + 0.7 * b, rng.uniform(0.03, 0.09)
    sy = cy + b + neck_len
    nw_top, nw_bot = a * rng.uniform(0.4, 0.55), a * rng.uniform(0.55, 0.7)
    frac = ((py - neck_top) / (sy + 0.05 - neck_top)).clamp(0, 1)
    neck = (py >= neck_top) & (py <= sy + 0.05) & ((px - cx).abs() <= nw_top + (nw_bot - nw_top) * frac)
    tx = cx + rng.normal(0, 0.03)
    tw, th, n = rng.uniform(0.28, 0.46), rng.uniform(0.45, 0.7), rng.uniform(2.2, 4.0)
    torso = ((px - tx).abs() / tw) ** n + ((py - (sy + th)).abs() / th) ** n <= 1
    legs = torch.zeros_like(torso)
    if framing == "full_body":
        hip = sy + rng.uniform(0.75, 0.95)
        torso &= py <= hip
        lw, gap = rng.uniform(0.08, 0.12), rng.uniform(0.01, 0.05)
        for side in (-1, 1):
            lx = tx + side * (gap + lw)
            legs |= ((px - lx).abs() <= lw) & (py >= hip - 0.05) & (py <= hip + rng.uniform(0.9, 1.2))
    half_w, half_h = a * 1.15, b * 1.1  # generous head box around the (tilted) face
    box = ((cx - half_w) * scale + ox, (cy - half_h) * scale + oy,
           (cx + half_w) * scale + ox, (cy + half_h) * scale + oy)
    return dict(head=head, hair=hair, neck=neck, torso=torso | legs,
                u=u, v=v, box=box)


def render_portrait(seed: int, index: int, size: int = 128, framing: str = "portrait",
                    hardness: float = 0.5) -> tuple[torch.Tensor, torch.Tensor, tuple[float, ...]]:
    """One sample: image float (3, S, S) in [0, 1], mask uint8 (S, S), head box (x0, y0, x1, y1) px.

    ``hardness`` in [0, 1] raises the rate of skin-coloured background blobs, clothing that matches
    the background, background blur and noise.
    """
    if framing not in FRAMINGS:
        raise DataError(f"framing must be one of {', '.join(FRAMINGS)}, got '{framing}'")
    if size < 8:
        raise DataError(f"size must be >= 8 pixels, got {size}")
    if not 0.0 <= hardness <= 1.0:
        raise DataError(f"hardness must be in [0, 1], got {hardness}")
    rng = np.random.default_rng([int(seed), int(index), 7919])
    res = 2 * size
    coords = (torch.arange(res, dtype=torch.float32) + 0.5) / res
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")

    img = _texture_patch(rng, BACKGROUND_TEXTURES, res) if rng.random() < 0.8 else _stripes(rng, xx, yy)
    if rng.random() < 0.3:  # a smooth gradient wash over the background
        g = torch.tensor(rng.uniform(0, 1, 3), dtype=torch.float32)[:, None, None]
        img = img * (1 - 0.5 * yy) + g * 0.5 * yy
    if rng.random() < 0.5 * hardness + 0.2:  # "bokeh"
        img = _blur(img, float(rng.uniform(0.8, 3.0)) * res / 256)
    skin = torch.tensor(_SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * rng.uniform(0, 1), dtype=torch.float32)
    for _ in range(int(rng.binomial(3, hardness))):  # skin-coloured distractors (background!)
        bu, bv = _local(xx, yy, rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.04, 0.12),
                        rng.uniform(0.04, 0.14), rng.uniform(0, math.pi))
        blob = (bu ** 2 + bv ** 2 <= 1).float()
        tone = skin * float(rng.uniform(0.8, 1.1))
        img = img * (1 - blob) + tone[:, None, None] * blob

    shapes = _person(rng, xx, yy, framing)
    if rng.random() < 0.4 * hardness:  # clothing close to the background colour
        cloth = (img.mean(dim=(1, 2), keepdim=True) + torch.tensor(rng.normal(0, 0.06, 3),
                                                                   dtype=torch.float32)[:, None, None])
        cloth = cloth.clamp(0, 1) * (0.9 + 0.2 * _texture_patch(rng, CLOTH_TEXTURES, res).mean(0, keepdim=True))
    elif rng.random() < 0.5:
        tint = torch.tensor(rng.uniform(0.2, 1.0, 3), dtype=torch.float32)[:, None, None]
        cloth = _texture_patch(rng, CLOTH_TEXTURES, res) * tint
    else:
        cloth = _stripes(rng, xx, yy)
    torso = shapes["torso"].float()
    img = img * (1 - torso) + cloth.clamp(0, 1) * torso
    neck = (shapes["neck"] & ~shapes["torso"]).float()
    img = img * (1 - neck) + (skin * 0.82)[:, None, None] * neck

    # head: skin base, LFW face tinted to the skin tone, blended with a soft elliptic alpha
    u, v = shapes["u"], shapes["v"]
    head = shapes["head"].float()
    face = _faces()[int(rng.integers(100))][None]
    zoom = rng.uniform(0.8, 1.0)
    grid = torch.stack([u * zoom, v * zoom], -1)[None].clamp(-1, 1)
    gray = F.grid_sample(face, grid, mode="bilinear", align_corners=False)[0]
    face_rgb = (skin[:, None, None] * (0.45 + 0.9 * gray)).clamp(0, 1)
    alpha = ((1 - (u ** 2 + v ** 2)) * 2.5).clamp(0, 1) * head
    head_img = skin[:, None, None] * (1 - alpha) + face_rgb * alpha
    img = img * (1 - head) + head_img * head
    hair = shapes["hair"].float()
    hair_col = torch.tensor(rng.uniform(0.02, 0.45) * np.array([1.0, rng.uniform(0.7, 0.95), rng.uniform(0.5, 0.9)]),
                            dtype=torch.float32)[:, None, None]
    img = img * (1 - hair) + hair_col * hair

    mask = (shapes["head"] | shapes["hair"] | shapes["neck"] | shapes["torso"]).float()
    img = F.avg_pool2d(img[None], 2)[0]
    mask = (F.avg_pool2d(mask[None, None], 2)[0, 0] >= 0.5).to(torch.uint8)
    sigma = rng.uniform(0, 0.02 + 0.03 * hardness)
    noise = torch.from_numpy(rng.normal(0, sigma, img.shape).astype(np.float32))
    img = (img + noise).clamp(0, 1)
    box = tuple(float(min(max(c * size, 0.0), float(size))) for c in shapes["box"])
    return img, mask, box


def generate_portraits(n: int, size: int = 128, seed: int = 0, framing: str = "portrait",
                       hardness: float = 0.5, start: int = 0) -> PortraitSet:
    """``n`` samples with indices ``start .. start+n-1`` (deterministic in ``(seed, index)``)."""
    if n < 0:
        raise DataError(f"n must be >= 0, got {n}")
    images = torch.empty(n, 3, size, size, dtype=torch.uint8)
    masks = torch.empty(n, size, size, dtype=torch.uint8)
    boxes = torch.empty(n, 4, dtype=torch.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: one thread is faster and the result does not depend on it
    try:
        for i in range(n):
            img, mask, box = render_portrait(seed, start + i, size, framing, hardness)
            images[i] = (img * 255).round().to(torch.uint8)
            masks[i] = mask
            boxes[i] = torch.tensor(box)
    finally:
        torch.set_num_threads(threads)
    return PortraitSet(images, masks, boxes)
