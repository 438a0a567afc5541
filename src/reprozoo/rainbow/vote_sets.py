"""The vote perturbation sets of the official Rainbow Memory code (its ``uncert_metric`` option).

Every set makes ``T`` perturbed copies of each candidate image; RM's uncertainty counts how the
model's argmax votes over the copies agree. As in the official code the perturbation acts on the raw
8-bit image (a Pillow image) before normalisation, and the clean image does not vote.

- ``vr_randaug`` (the official experiment script's choice, our default): ``T`` independent calls of
  the ``randaugment`` package's RandAugment (1.0.2): each call picks one of the 135 x 135 ordered
  pairs of (op, magnitude index 1..9) uniformly, then applies the first op with probability 0.5 and
  the second with probability 0.5 (15 ops, tables in :data:`RANDAUG_OPS`).
- ``vr``: a fixed list of 12, one per vote in this order: Cutout 8, 16, 24, 32 px, random horizontal
  flip, random vertical flip (p 0.5 each), random rotation within +-45 and +-90 degrees (nearest,
  black fill), Invert, Solarize at 128, 64 and 32.
- ``vr_cutout``: ``T`` x Cutout 16; ``vr_autoaug``: ``T`` x AutoAugment (CIFAR-10 policy; here
  torchvision's implementation of that policy). Both exist in the official code but its command line
  does not offer them.

Every op is written as the Pillow call the official code makes, so a copy made with the same random
parameters is the same image bit for bit. The random parameters are ours: they are drawn from the
``torch.Generator`` handed in (never the global RNGs), in a layout (:meth:`VoteSet.draw`) that a caller
can also fill in by hand to replay recorded draws (:meth:`VoteSet.apply`).
Single-channel images are converted to RGB for the ops and back to grey (as the official code reads
MNIST as RGB); the Cutout fill then becomes Pillow's grey of the RGB fill.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps

from reprozoo.errors import ConfigError, UnknownNameError
from reprozoo.runtime.seeding import generator_scope

VOTE_SETS = ("vr", "vr_autoaug", "vr_cutout", "vr_randaug")
CUTOUT_FILL = (125, 122, 113)  # the official Cutout's fill (RGB)
GREY_FILL = (128, 128, 128)  # RandAugment's fill where pixels come in (shear, translate, rotate)
VR_CUTOUT_SIZES = (8, 16, 24, 32)


def cutout_box(cx: int, cy: int, size: int, height: int, width: int) -> tuple[int, int, int, int]:
    """The official Cutout box ``(x0, y0, x1, y1)`` (exclusive ends) around centre ``(cx, cy)``: a square of
    side ``2 * (size // 2)`` clipped at the border (odd sizes lose a pixel)."""
    half = size // 2
    return max(0, cx - half), max(0, cy - half), min(width, cx + half), min(height, cy + half)


def cutout(img: Image.Image, box, fill=CUTOUT_FILL) -> Image.Image:
    x0, y0, x1, y1 = (int(v) for v in box)
    arr = np.array(img)
    arr[y0:y1, x0:x1] = fill
    return Image.fromarray(arr, img.mode)


def _rotate_grey(img: Image.Image, degrees: float) -> Image.Image:
    rgba = img.convert("RGBA").rotate(degrees)
    return Image.composite(rgba, Image.new("RGBA", rgba.size, GREY_FILL + (128,)), rgba).convert(img.mode)


def _affine(img: Image.Image, coeffs, resample=Image.NEAREST) -> Image.Image:
    return img.transform(img.size, Image.AFFINE, coeffs, resample, fillcolor=GREY_FILL)


def _magnitudes(name: str) -> np.ndarray:
    """The ``randaugment`` package's 10 magnitudes of an op (index 0 is never drawn)."""
    lin = np.linspace
    table = {"ShearX": lin(0, 0.3, 10), "ShearY": lin(0, 0.3, 10), "TranslateX": lin(0, 150 / 331, 10),
             "TranslateY": lin(0, 150 / 331, 10), "Rotate": lin(0, 30, 10),
             "Color": lin(0.0, 0.9, 10), "Contrast": lin(0.0, 0.9, 10), "Sharpness": lin(0.0, 0.9, 10),
             "Brightness": lin(0.0, 0.9, 10), "Solarize": lin(256, 0, 10),
             "Posterize": np.round(lin(8, 4, 10)).astype(int), "Cutout": np.round(lin(0, 20, 10)).astype(int)}
    return table.get(name, np.zeros(10, dtype=int))


# op name -> (uses a random sign, function(img, magnitude, sign, box))
RANDAUG_OPS = {
    "Invert": (False, lambda img, m, s, box: ImageOps.invert(img)),
    "Cutout": (False, lambda img, m, s, box: cutout(img, box)),
    "Sharpness": (True, lambda img, m, s, box: ImageEnhance.Sharpness(img).enhance(1 + m * s)),
    "AutoContrast": (False, lambda img, m, s, box: ImageOps.autocontrast(img)),
    "Posterize": (False, lambda img, m, s, box: ImageOps.posterize(img, int(m))),
    "ShearX": (True, lambda img, m, s, box: _affine(img, (1, m * s, 0, 0, 1, 0), Image.BICUBIC)),
    "TranslateX": (True, lambda img, m, s, box: _affine(img, (1, 0, m * img.size[0] * s, 0, 1, 0))),
    "TranslateY": (True, lambda img, m, s, box: _affine(img, (1, 0, 0, 0, 1, m * img.size[1] * s))),
    "ShearY": (True, lambda img, m, s, box: _affine(img, (1, 0, 0, m * s, 1, 0), Image.BICUBIC)),
    "Rotate": (False, lambda img, m, s, box: _rotate_grey(img, m)),
    "Equalize": (False, lambda img, m, s, box: ImageOps.equalize(img)),
    "Contrast": (True, lambda img, m, s, box: ImageEnhance.Contrast(img).enhance(1 + m * s)),
    "Color": (True, lambda img, m, s, box: ImageEnhance.Color(img).enhance(1 + m * s)),
    "Solarize": (False, lambda img, m, s, box: ImageOps.solarize(img, m)),
    "Brightness": (True, lambda img, m, s, box: ImageEnhance.Brightness(img).enhance(1 + m * s)),
}
RANDAUG_OP_NAMES = tuple(RANDAUG_OPS)  # the package's op order (index = op id)
RANDAUG_MAGNITUDES = {name: _magnitudes(name) for name in RANDAUG_OP_NAMES}
N_PAIRS = (len(RANDAUG_OP_NAMES) * 9) ** 2  # 18,225 ordered (op, magnitude) pairs


def decode_pair(index: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Pair index ``135 * a + b`` -> ``((op, magnitude index), (op, magnitude index))``; ``a = op * 9 + m - 1``."""
    a, b = divmod(int(index), len(RANDAUG_OP_NAMES) * 9)
    return (a // 9, a % 9 + 1), (b // 9, b % 9 + 1)


def to_pil(img: torch.Tensor) -> Image.Image:
    """A uint8 ``(C, H, W)`` tensor (C = 1 or 3) as an RGB Pillow image."""
    arr = img.permute(1, 2, 0).numpy()
    if arr.shape[2] == 1:
        return Image.fromarray(arr[:, :, 0], "L").convert("RGB")
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


def from_pil(img: Image.Image, channels: int) -> torch.Tensor:
    if channels == 1:
        img = img.convert("L")
    arr = np.array(img.convert("RGB") if channels == 3 else img)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))  # a fresh, writable copy


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Raw [0, 1] float images (or uint8) -> uint8, rounding to the nearest level."""
    return x if x.dtype == torch.uint8 else (x.clamp(0, 1) * 255).round().to(torch.uint8)


class VoteSet:
    """Base: ``copies(x, n_votes, generator)`` -> ``(n_votes * N, C, H, W)``; copy ``k`` of sample ``i`` is
    row ``k * N + i``, float in [0, 1] (uint8 in -> the same levels out)."""

    name = "base"
    fixed_votes: int | None = None  # a fixed list of perturbations needs exactly this many votes

    def check_votes(self, n_votes: int) -> None:
        if self.fixed_votes is not None and n_votes != self.fixed_votes:
            raise ConfigError(f"the '{self.name}' vote set is a fixed list of {self.fixed_votes} perturbations; "
                              f"set n_votes={self.fixed_votes} (got {n_votes})")

    def draw(self, n: int, n_votes: int, height: int, width: int, generator: torch.Generator | None) -> dict:
        raise NotImplementedError

    def apply_one(self, img: Image.Image, k: int, i: int, params: dict) -> Image.Image:
        raise NotImplementedError

    def apply(self, x: torch.Tensor, params: dict, n_votes: int) -> torch.Tensor:
        """Apply drawn (or recorded) ``params`` to uint8/[0,1] images ``x`` -> float copies in [0, 1]."""
        imgs = to_uint8(x.detach().cpu())
        c = imgs.shape[1]
        pils = [to_pil(im) for im in imgs]
        out = [from_pil(self.apply_one(p, k, i, params), c) for k in range(n_votes) for i, p in enumerate(pils)]
        return (torch.stack(out).float() / 255.0).to(x.device)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One perturbed copy of every image (the callable interface of the other perturbations)."""
        if self.fixed_votes is not None:
            raise ConfigError(f"the '{self.name}' vote set gives each vote its own perturbation; use "
                              f".copies(x, {self.fixed_votes}, generator)")
        return self.copies(x, 1, generator)

    def copies(self, x: torch.Tensor, n_votes: int, generator: torch.Generator | None = None) -> torch.Tensor:
        self.check_votes(n_votes)
        params = self.draw(len(x), n_votes, x.shape[-2], x.shape[-1], generator)
        return self.apply(x, params, n_votes)


def _randint(lo: int, hi: int, shape, generator) -> torch.Tensor:
    return torch.randint(lo, hi, shape, generator=generator)


def _boxes(n: int, slots: int, sizes, height: int, width: int, generator) -> np.ndarray:
    cx = _randint(0, width, (n, slots), generator).numpy()
    cy = _randint(0, height, (n, slots), generator).numpy()
    size = np.broadcast_to(np.asarray(sizes), (n, slots))
    return np.asarray([[cutout_box(cx[i, k], cy[i, k], size[i, k], height, width) for k in range(slots)]
                       for i in range(n)], dtype=np.int64).reshape(n, slots, 4)


class VRSet(VoteSet):
    """The official fixed list ``vr`` (12 votes, see the module docstring). Params: ``boxes`` (N, 4, 4)
    Cutout boxes x0, y0, x1, y1; ``flips`` (N, 2) horizontal / vertical applied; ``angles`` (N, 2) degrees."""

    name = "vr"
    fixed_votes = 12

    def draw(self, n, n_votes, height, width, generator):
        flips = (torch.rand(n, 2, generator=generator) < 0.5).numpy()
        angles = ((torch.rand(n, 2, generator=generator) * 2 - 1) * torch.tensor([45.0, 90.0])).numpy()
        return {"boxes": _boxes(n, 4, VR_CUTOUT_SIZES, height, width, generator), "flips": flips,
                "angles": angles}

    def apply_one(self, img, k, i, params):
        if k < 4:
            return cutout(img, params["boxes"][i][k])
        if k == 4:
            return img.transpose(Image.FLIP_LEFT_RIGHT) if params["flips"][i][0] else img
        if k == 5:
            return img.transpose(Image.FLIP_TOP_BOTTOM) if params["flips"][i][1] else img
        if k in (6, 7):
            return img.rotate(float(params["angles"][i][k - 6]), Image.NEAREST, expand=False, fillcolor=(0, 0, 0))
        if k == 8:
            return ImageOps.invert(img)
        return ImageOps.solarize(img, (128, 64, 32)[k - 9])


class CutoutSet(VoteSet):
    """``vr_cutout``: every vote a Cutout of ``size`` px at a random centre. Params: ``boxes`` (N, T, 4)."""

    name = "vr_cutout"

    def __init__(self, size: int = 16):
        self.size = size

    def draw(self, n, n_votes, height, width, generator):
        return {"boxes": _boxes(n, n_votes, self.size, height, width, generator)}

    def apply_one(self, img, k, i, params):
        return cutout(img, params["boxes"][i][k])


class RandAugmentSet(VoteSet):
    """``vr_randaug``: every vote one call of the ``randaugment`` package's RandAugment. Params, each
    (N, T, 2) for the two ops of a call: ``op`` (index into :data:`RANDAUG_OP_NAMES`),
    ``magnitude_index`` (1..9), ``applied`` (0/1), ``sign`` (+-1, used by the 8 signed ops), and
    ``boxes`` (N, T, 2, 4) for Cutout."""

    name = "vr_randaug"

    def __init__(self, p: float = 0.5):
        self.p = p

    def draw(self, n, n_votes, height, width, generator):
        pair = _randint(0, N_PAIRS, (n, n_votes), generator).numpy()
        op = np.zeros((n, n_votes, 2), np.int64)
        mag = np.zeros((n, n_votes, 2), np.int64)
        for (i, k), v in np.ndenumerate(pair):
            (op[i, k, 0], mag[i, k, 0]), (op[i, k, 1], mag[i, k, 1]) = decode_pair(v)
        applied = (torch.rand(n, n_votes, 2, generator=generator) < self.p).numpy().astype(np.int64)
        sign = (_randint(0, 2, (n, n_votes, 2), generator).numpy() * 2 - 1).astype(np.int64)
        cut = RANDAUG_MAGNITUDES["Cutout"][mag]
        cx = _randint(0, width, (n, n_votes, 2), generator).numpy()
        cy = _randint(0, height, (n, n_votes, 2), generator).numpy()
        boxes = np.asarray([cutout_box(a, b, s, height, width) for a, b, s in zip(cx.ravel(), cy.ravel(), cut.ravel())],
                           dtype=np.int64).reshape(n, n_votes, 2, 4)
        return {"op": op, "magnitude_index": mag, "applied": applied, "sign": sign, "boxes": boxes}

    def apply_one(self, img, k, i, params):
        for j in range(2):
            if not params["applied"][i][k][j]:
                continue
            name = RANDAUG_OP_NAMES[int(params["op"][i][k][j])]
            signed, fn = RANDAUG_OPS[name]
            m = RANDAUG_MAGNITUDES[name][int(params["magnitude_index"][i][k][j])]
            img = fn(img, m, int(params["sign"][i][k][j]) if signed else 1, params["boxes"][i][k][j])
        return img


class AutoAugmentSet(VoteSet):
    """``vr_autoaug``: every vote one AutoAugment (CIFAR-10 policy) draw, torchvision's implementation.
    Its draws come from torch's global RNG inside a scope seeded from the generator (no replayable params)."""

    name = "vr_autoaug"

    def copies(self, x, n_votes, generator=None):
        from torchvision.transforms import v2

        policy = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)
        imgs = to_uint8(x.detach().cpu())
        c = imgs.shape[1]
        pils = [to_pil(im) for im in imgs]
        with generator_scope(generator):
            out = [from_pil(policy(p), c) for _ in range(n_votes) for p in pils]
        return (torch.stack(out).float() / 255.0).to(x.device)


def make_vote_set(name: str = "vr_randaug", **kw) -> VoteSet:
    """``vr_randaug`` (default, the official experiment script's) | ``vr`` | ``vr_cutout`` | ``vr_autoaug``."""
    table = {"vr": VRSet, "vr_randaug": RandAugmentSet, "vr_cutout": CutoutSet, "vr_autoaug": AutoAugmentSet}
    if name not in table:
        raise UnknownNameError(f"unknown vote set '{name}'; choose one of: {', '.join(VOTE_SETS)}")
    return table[name](**kw)
