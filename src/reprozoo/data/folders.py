"""Real-format readers for image folders (torchvision's ImageFolder layout: root/<class>/<img>)."""

from __future__ import annotations

from pathlib import Path

import torch

from reprozoo.errors import DataError


def image_folder(root: str | Path, transform=None, image_size: int | None = None):
    """A torchvision ``ImageFolder`` with a clear error for a missing or empty folder.

    With ``image_size`` and no ``transform``, images are converted to RGB, resized and turned
    into float tensors in [0, 1].
    """
    from torchvision import datasets
    from torchvision.transforms import v2

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist")
    if transform is None:
        steps = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
        if image_size is not None:
            steps.insert(1, v2.Resize((image_size, image_size), antialias=True))
        transform = v2.Compose(steps)
    try:
        return datasets.ImageFolder(str(root), transform=transform,
                                    loader=_rgb)
    except FileNotFoundError as err:
        raise DataError(f"{root}: {err}. Expected the layout root/<class>/<image>.png") from err


def _rgb(path: str):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"cannot read image {path}: {err}") from err
