"""Datasets for continual-learning runs as in-memory tensors.

``digits_data(seed)``: scikit-learn's digits (built in, offline), stratified train/test split.
``cifar_data(name, root)``: CIFAR-10/100 through ``torchvision.datasets`` (``download=False``; the
error says where to put the files). ``folder_data(root)``: an ImageFolder tree ``root/{train,test}/<class>/``.
Images are kept as uint8 (real images) or float in [0, 1] (digits), raw (normalised in the model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reprozoo.data import image_folder, load_digits_tensors, split_indices
from reprozoo.errors import DataError, UnknownNameError

STATS = {
    "digits": ((0.3,), (0.38,)),
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


@dataclass
class CLData:
    """Train/test tensors ``(N, C, H, W)`` (uint8 or float [0,1]) with original integer labels."""

    x_train: torch.Tensor
    y_train: np.ndarray
    x_test: torch.Tensor
    y_test: np.ndarray
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str = ""

    @property
    def num_classes(self) -> int:
        return int(len(np.unique(self.y_train)))

    @property
    def in_chans(self) -> int:
        return int(self.x_train.shape[1])


def digits_data(seed: int = 0, test_fraction: float = 0.25) -> CLData:
    """1,797 8x8 digits in [0,1], stratified ``1 - test_fraction`` / ``test_fraction`` split per seed."""
    x, y = load_digits_tensors(size=8, normalize=True)
    tr, te = split_indices(len(y), [1 - test_fraction, test_fraction], seed=seed, labels=y.numpy())
    mean, std = STATS["digits"]
    return CLData(x[tr], y[tr].numpy(), x[te], y[te].numpy(), mean, std, "digits")


def _stack_uint8(images) -> torch.Tensor:
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2))).to(torch.uint8)


def cifar_data(name: str = "cifar10", root: str | Path = "") -> CLData:
    """CIFAR-10/100 from ``root`` (the folder holding ``cifar-10-batches-py`` / ``cifar-100-python``)."""
    from torchvision import datasets

    table = {"cifar10": (datasets.CIFAR10, "cifar-10-batches-py"),
             "cifar100": (datasets.CIFAR100, "cifar-100-python")}
    if name not in table:
        raise UnknownNameError(f"unknown dataset '{name}'; choose one of: cifar10, cifar100")
    cls, folder = table[name]
    root = Path(root or ".")
    try:
        train = cls(str(root), train=True, download=False)
        test = cls(str(root), train=False, download=False)
    except RuntimeError as err:
        raise DataError(f"{name} not found under {root.resolve()}: put the extracted python version "
                        f"there so that {root / folder} exists (reprozoo never downloads), or set "
                        "data_root=<folder>") from err
    mean, std = STATS[name]
    return CLData(_stack_uint8(train.data), np.asarray(train.targets), _stack_uint8(test.data),
                  np.asarray(test.targets), mean, std, name)


def folder_data(root: str | Path, image_size: int = 32, stats: str = "imagenet") -> CLData:
    """An ImageFolder tree ``root/train/<class>/*`` and ``root/test/<class>/*`` (same class names)."""
    root = Path(root)
    parts = {}
    for split in ("train", "test"):
        ds = image_folder(root / split, image_size=image_size)
        xs = torch.stack([ds[i][0] for i in range(len(ds))])
        parts[split] = ((xs * 255).round().to(torch.uint8), np.asarray(ds.targets), ds.classes)
    if parts["train"][2] != parts["test"][2]:
        raise DataError(f"{root}: train and test folders must have the same class sub-folders")
    if stats not in STATS:
        raise UnknownNameError(f"unknown stats '{stats}'; choose one of: {', '.join(STATS)}")
    mean, std = STATS[stats]
    return CLData(parts["train"][0], parts["train"][1], parts["test"][0], parts["test"][1], mean, std,
                  root.name)


def check_available(name: str, root: str | Path = "") -> None:
    """Fail early (before any output is written) when a real dataset is not where it should be."""
    root = Path(root or ".")
    folders = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
    if name in folders and not (root / folders[name]).is_dir():
        raise DataError(f"{name} not found: put the extracted python version at {root.resolve() / folders[name]} "
                        "(reprozoo never downloads), or set data_root=<folder holding it>")
    if name == "folder" and not ((root / "train").is_dir() and (root / "test").is_dir()):
        raise DataError(f"dataset 'folder' needs data_root=<folder with train/ and test/ sub-folders>; "
                        f"{root.resolve()} has none")


def load_data(name: str, root: str | Path = "", seed: int = 0, image_size: int = 32) -> CLData:
    """``digits`` | ``cifar10`` | ``cifar100`` | ``folder`` (ImageFolder tree at ``root``)."""
    if name == "digits":
        return digits_data(seed)
    if name in ("cifar10", "cifar100"):
        return cifar_data(name, root)
    if name == "folder":
        if not root:
            raise DataError("dataset 'folder' needs data_root=<folder with train/ and test/ sub-folders>")
        return folder_data(root, image_size)
    raise UnknownNameError(f"unknown dataset '{name}'; choose one of: cifar10, cifar100, digits, folder")
