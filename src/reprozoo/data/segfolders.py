"""Readers for image/mask segmentation folders: a generic ``images/`` + ``masks/`` pair of folders
and the EG1800 portrait layout (``Images/``, ``Labels/`` and split lists).

Conversions (documented, not errors): grayscale, palette and LA images are expanded to RGB; RGBA
images are composited over white; 16-bit images are scaled to 8 bits (value // 257). Masks are
read as grayscale; foreground is ``value > threshold`` (EG1800's official loader uses 200), except
that masks whose values are all 0/1 are taken as labels directly. A corrupt or non-image file, a
mask whose size differs from its image, a missing mask and an empty folder raise
:class:`reprozoo.errors.DataError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from reprozoo.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
        img.load()
        return img
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable image ({err}); remove it or re-save it as PNG/JPEG") from None


def _to_8bit(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        return (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    return np.clip(arr.astype(np.int64) // 257 if arr.max() > 255 else arr, 0, 255).astype(np.uint8)


def read_image(path: str | Path) -> torch.Tensor:
    """An image file as uint8 RGB ``(3, H, W)`` (with the conversions in the module docstring)."""
    from PIL import Image

    path = Path(path)
    img = _open(path)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = _to_8bit(np.asarray(img))
        arr = np.repeat(arr[..., None], 3, axis=-1)
    else:
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(white, rgba)
        arr = np.asarray(img.convert("RGB"))
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def read_mask(path: str | Path, threshold: int = 200) -> torch.Tensor:
    """A mask file as uint8 ``(H, W)`` in {0, 1}."""
    path = Path(path)
    img = _open(path)
    arr = np.asarray(img)
    if arr.ndim == 3:  # RGB(A) masks: any channel
        arr = arr[..., :3].max(axis=-1)
    arr = _to_8bit(arr)
    if arr.max() <= 1:
        return torch.from_numpy(arr.astype(np.uint8))
    return torch.from_numpy((arr > threshold).astype(np.uint8))


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


class ImageMaskFolder(Dataset):
    """Pairs ``images_dir/<stem>.<ext>`` with ``masks_dir/<stem>.<ext>`` (any image suffix).

    Items are ``(image uint8 (3, H, W), mask uint8 (H, W))``, or what ``transform(image, mask)``
    returns. ``names`` restricts the pairs to the listed stems (used by split lists).
    """

    def __init__(self, images_dir: str | Path, masks_dir: str | Path, names: list[str] | None = None,
                 transform=None, threshold: int = 200):
        images = list_images(images_dir)
        masks = {p.stem: p for p in list_images(masks_dir)}
        by_stem = {p.stem: p for p in images}
        if names is not None:
            missing = [n for n in names if Path(n).stem not in by_stem]
            if missing:
                raise DataError(f"{images_dir}: no image for '{missing[0]}' listed in the split "
                                f"({len(missing)} missing); fix the split list or add the files")
            images = [by_stem[Path(n).stem] for n in names]
        for p in images:
            if p.stem not in masks:
                raise DataError(f"{p}: no mask named {p.stem}.* in {masks_dir}")
        self.pairs = [(p, masks[p.stem]) for p in images]
        if not self.pairs:
            raise DataError(f"{images_dir}: the split is empty")
        self.transform, self.threshold = transform, threshold

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        ip, mp = self.pairs[i]
        image, mask = read_image(ip), read_mask(mp, self.threshold)
        if image.shape[-2:] != mask.shape:
            raise DataError(f"{mp}: mask is {tuple(mask.shape[::-1])} (WxH) but its image {ip.name} is "
                            f"{tuple(image.shape[-2:][::-1])}; masks must match their image size")
        return image, mask

    def __getitem__(self, i: int):
        image, mask = self.load(i)
        return self.transform(image, mask) if self.transform is not None else (image, mask)


def eg1800(root: str | Path, split: str = "train", transform=None, threshold: int = 200) -> ImageMaskFolder:
    """The EG1800 layout of the PortraitNet/SINet release: ``root/Images/*.png``,
    ``root/Labels/*.png`` and a split list ``root/eg1800_<split>.txt`` (or ``root/<split>.txt``)
    with one image name per line."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"EG1800 root {root} does not exist")
    lists = [root / f"eg1800_{split}.txt", root / f"{split}.txt"]
    found = next((p for p in lists if p.is_file()), None)
    if found is None:
        raise DataError(f"{root}: no split list {lists[0].name} or {lists[1].name} for split '{split}'")
    names = [line.strip() for line in found.read_text().splitlines() if line.strip()]
    if not names:
        raise DataError(f"{found}: the split list is empty")
    return ImageMaskFolder(root / "Images", root / "Labels", names, transform, threshold)
