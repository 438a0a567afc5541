"""Portrait data for SINet: in-memory datasets, the paper's augmentation (torchvision v2),
normalisation statistics, cached procedural splits and the portrait-crop data trick of the paper's extra-data section.

Normalisation: images are RGB in [0, 1], standardised with per-channel mean/std of the training
images. (The official loader works on BGR 0-255 and divides by 255 after standardising; a global
input scale is absorbed by the BatchNorm after SINet's bias-free first conv, so only the
channel order matters for the released weights, which this library does not load.)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from reprozoo.data.portraits import PortraitSet, generate_portraits
from reprozoo.errors import DataError

GENERATOR_VERSION = 1  # bump when the portrait generator changes, to invalidate caches


def mean_std(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images (N, 3, H, W) on the [0, 1] scale."""
    if images.ndim != 4 or images.shape[1] != 3 or len(images) == 0:
        raise DataError(f"mean_std expects uint8 images (N, 3, H, W) with N > 0, got {tuple(images.shape)}")
    x = images.float().div(255).transpose(0, 1).reshape(3, -1)
    return x.mean(1).tolist(), x.std(1).clamp(min=1e-3).tolist()


def train_transform(size: int, mean, std, *, rotation: float = 45.0, scale=(0.5, 1.5),
                    shift: float = 0.25, p_color: float = 0.5, p_blur: float = 0.5, p_noise: float = 0.5):
    """The official augmentation on torchvision v2: resize to ``size``; random affine (rotation
    +-45 deg, scale 0.5-1.5, shift +-size/4; gray 128 padding for the image, background for the
    mask); horizontal flip; colour/brightness/contrast/sharpness jitter; Gaussian blur (k=3 or 5);
    Gaussian noise (sigma up to 10/255); normalisation. The official median/box blurs are
    represented by the Gaussian one (v2 has no median filter)."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    return v2.Compose([
        v2.Resize((size, size), antialias=True),
        v2.RandomAffine(degrees=rotation, translate=(shift, shift), scale=scale,
                        interpolation=v2.InterpolationMode.BILINEAR,
                        fill={tv_tensors.Image: 128, tv_tensors.Mask: 0}),
        v2.RandomHorizontalFlip(0.5),
        v2.RandomApply([v2.ColorJitter(brightness=0.6, contrast=0.4, saturation=0.6),
                        v2.RandomAdjustSharpness(1.2, p=0.5)], p=p_color),
        v2.RandomApply([v2.RandomChoice([v2.GaussianBlur(3, (0.1, 1.5)), v2.GaussianBlur(5, (0.1, 1.5))])],
                       p=p_blur),
        v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
        v2.RandomApply([v2.RandomChoice([v2.GaussianNoise(sigma=s) for s in (0.01, 0.02, 0.03, 0.04)])],
                       p=p_noise),
        v2.Normalize(mean, std),
    ])


def eval_transform(size: int, mean, std):
    """Plain resize to ``size`` x ``size`` (aspect ratio not kept, as in the paper) + normalisation."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    return v2.Compose([v2.Resize((size, size), antialias=True),
                       v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
                       v2.Normalize(mean, std)])


class SegDataset(Dataset):
    """uint8 images (N, 3, H, W) + uint8 masks (N, H, W) -> ``(x float (3, S, S), y int64 (S, S))``
    through a v2 ``transform`` that sees an (Image, Mask) pair."""

    def __init__(self, images: torch.Tensor, masks: torch.Tensor, transform=None):
        if len(images) != len(masks):
            raise DataError(f"{len(images)} images but {len(masks)} masks")
        if len(images) and images.shape[-2:] != masks.shape[-2:]:
            raise DataError(f"images are {tuple(images.shape[-2:])} but masks {tuple(masks.shape[-2:])}")
        self.images, self.masks, self.transform = images, masks, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from torchvision import tv_tensors

        img, mask = tv_tensors.Image(self.images[i]), tv_tensors.Mask(self.masks[i])
        if self.transform is not None:
            img, mask = self.transform(img, mask)
        x = img.as_subclass(torch.Tensor)
        if x.dtype == torch.uint8:
            x = x.float() / 255
        return x, mask.as_subclass(torch.Tensor).long()


def _cache_dir() -> Path:
    return Path(os.environ.get("REPROZOO_CACHE", Path.home() / ".cache" / "reprozoo")) / "portraits"


def cached_portraits(n: int, size: int, seed: int, framing: str = "portrait", hardness: float = 0.5,
                     start: int = 0) -> PortraitSet:
    """:func:`generate_portraits` with a cache under ``$REPROZOO_CACHE/portraits`` keyed by the
    arguments and the generator version (safe to delete)."""
    key = json.dumps([GENERATOR_VERSION, n, size, seed, framing, hardness, start])
    path = _cache_dir() / (hashlib.sha1(key.encode()).hexdigest()[:16] + ".pt")
    if path.is_file():
        try:
            d = torch.load(path, weights_only=True)
            return PortraitSet(d["images"], d["masks"], d["head_boxes"])
        except Exception:  # a broken cache file is rebuilt
            path.unlink(missing_ok=True)
    data = generate_portraits(n, size, seed, framing, hardness, start)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save({"images": data.images, "masks": data.masks, "head_boxes": data.head_boxes}, tmp)
    os.replace(tmp, path)
    return data


@dataclass
class PortraitSplits:
    train: PortraitSet
    val: PortraitSet
    test: PortraitSet


def portrait_splits(n_train: int, n_val: int, n_test: int, size: int = 128, seed: int = 0,
                    hardness: float = 0.5) -> PortraitSplits:
    """Disjoint generated splits (index ranges 0.., 10^6.., 2*10^6..) of one data seed."""
    return PortraitSplits(cached_portraits(n_train, size, seed, hardness=hardness),
                          cached_portraits(n_val, size, seed, hardness=hardness, start=1_000_000),
                          cached_portraits(n_test, size, seed, hardness=hardness, start=2_000_000))


class PortraitCropper:
    """The paper's data-creation trick: turn a full-body photo into a portrait-like sample by cropping
    a face-centred upper-body window. The square window is ``width_faces`` face widths wide, its
    top ``top_faces`` face heights above the face box; areas outside the photo become gray 128
    (image) and background (mask). Output is resized to ``size``."""

    def __init__(self, size: int = 224, width_faces=(3.0, 4.0), top_faces=(0.5, 1.0)):
        self.size, self.width_faces, self.top_faces = size, width_faces, top_faces

    def window(self, box, rng: np.random.Generator) -> tuple[float, float, float]:
        x0, y0, x1, y1 = (float(v) for v in box)
        fw, fh = x1 - x0, y1 - y0
        if fw <= 0 or fh <= 0:
            raise DataError(f"face box {tuple(box)} has no area; expected (x0, y0, x1, y1) with x1>x0, y1>y0")
        side = fw * rng.uniform(*self.width_faces)
        top = y0 - fh * rng.uniform(*self.top_faces)
        left = (x0 + x1) / 2 - side / 2
        return left, top, side

    def __call__(self, image: torch.Tensor, mask: torch.Tensor, box,
                 rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 image (3, H, W), mask (H, W), face box -> uint8 (3, size, size), (size, size)."""
        rng = rng or np.random.default_rng(0)
        left, top, side = self.window(box, rng)
        h, w = mask.shape
        # affine_grid maps output [-1, 1] to the input window in normalised input coordinates
        sx, sy = side / w, side / h
        tx, ty = (2 * left + side) / w - 1, (2 * top + side) / h - 1
        theta = torch.tensor([[[sx, 0.0, tx], [0.0, sy, ty]]], dtype=torch.float32)
        grid = F.affine_grid(theta, [1, 1, self.size, self.size], align_corners=False)
        img = F.grid_sample(image[None].float() - 128, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)[0] + 128
        m = F.grid_sample(mask[None, None].float(), grid, mode="nearest", padding_mode="zeros",
                          align_corners=False)[0, 0]
        return img.round().clamp(0, 255).to(torch.uint8), m.to(torch.uint8)


def portrait_crops(scenes: PortraitSet, size: int, seed: int = 0,
                   cropper: PortraitCropper | None = None) -> PortraitSet:
    """Apply :class:`PortraitCropper` to every full-body scene using its head box."""
    cropper = cropper or PortraitCropper(size)
    rng = np.random.default_rng(seed)
    out = [cropper(img, m, box, rng) for img, m, box in zip(scenes.images, scenes.masks, scenes.head_boxes)]
    boxes = torch.zeros(len(out), 4)
    return PortraitSet(torch.stack([o[0] for o in out]), torch.stack([o[1] for o in out]), boxes)


def _load_resized(ds, size: int) -> PortraitSet:
    """Every (image, mask) of a reader, plainly resized to size x size (as the paper evaluates)."""
    images = torch.empty(len(ds), 3, size, size, dtype=torch.uint8)
    masks = torch.empty(len(ds), size, size, dtype=torch.uint8)
    for i in range(len(ds)):
        img, mask = ds[i]
        images[i] = F.interpolate(img[None].float(), size=(size, size), mode="bilinear", align_corners=False,
                                  antialias=True)[0].round().clamp(0, 255).to(torch.uint8)
        masks[i] = F.interpolate(mask[None, None].float(), size=(size, size), mode="nearest")[0, 0].to(torch.uint8)
    return PortraitSet(images, masks, torch.zeros(len(ds), 4))


def eg1800_splits(root: str | Path, size: int = 224, val_fraction: float = 0.1, seed: int = 0) -> PortraitSplits:
    """EG1800 (``reprozoo.data.segfolders.eg1800``): the official test list is the test split; a
    seeded ``val_fraction`` of the train list becomes the validation split for epoch selection (the
    paper selected on the split it reports, which is optimistic)."""
    from reprozoo.data.segfolders import eg1800
    from reprozoo.data.splits import split_indices

    train_all = _load_resized(eg1800(root, "train"), size)
    test = _load_resized(eg1800(root, "test"), size)
    if len(train_all) < 2:
        raise DataError(f"{root}: the train list needs at least 2 images to carve out a validation split")
    tr, va = split_indices(len(train_all), [1 - val_fraction, val_fraction], seed)
    if len(va) == 0:
        va, tr = tr[-1:], tr[:-1]

    def take(idx):
        idx = torch.as_tensor(idx)
        return PortraitSet(train_all.images[idx], train_all.masks[idx], train_all.head_boxes[idx])

    return PortraitSplits(take(tr), take(va), test)
