"""What the proxies score on (:class:`ProxyData`) and how BN-recalibration batches are drawn:
the official GeNAS protocol (:class:`ShuffledRecal`: fresh shuffled batches per candidate, EMA
momentum 0.1 from the reset statistics) or SPOS's (fixed batches, exact average), built from two
datasets by :func:`proxy_data`."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from reprozoo.errors import ConfigError, DataError
from reprozoo.genas.supernet import RECAL_MODES


@dataclass
class ShuffledRecal:
    """Fresh shuffled BN-recalibration batches for every candidate, as the official code does
    (a new iterator over a shuffled training loader per candidate): ``ceil(images / batch_size)``
    full batches of a random permutation of ``(x, y)``, seeded by ``(seed, genotype)`` so a
    genotype gets the same batches in every run. When the training set is smaller than the
    batches need, further permutations follow (images repeat, as epochs of a loader would).
    ``transform(x, generator)`` (e.g. :func:`flip_crop`) augments each batch."""

    x: torch.Tensor
    y: torch.Tensor
    images: int = 850
    batch_size: int = 64
    seed: int = 0
    transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None

    def __post_init__(self):
        if len(self.x) == 0 or len(self.x) != len(self.y):
            raise DataError(f"recalibration images and labels must be non-empty and equally many, got "
                            f"{len(self.x)} and {len(self.y)}")
        if self.images < 1 or self.batch_size < 1:
            raise ConfigError(f"recalibration images and batch_size must be >= 1, got {self.images}, "
                              f"{self.batch_size}")

    def __len__(self) -> int:
        return math.ceil(self.images / self.batch_size)

    def batches(self, genotype: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(candidate_seed(self.seed, f"recal|{genotype}"))
        need = len(self) * self.batch_size
        idx = torch.cat([torch.randperm(len(self.x), generator=gen)
                         for _ in range(math.ceil(need / len(self.x)))])[:need]
        out = []
        for i in range(0, need, self.batch_size):
            j = idx[i:i + self.batch_size]
            x = self.x[j] if self.transform is None else self.transform(self.x[j], gen)
            out.append((x, self.y[j]))
        return out


def flip_crop(padding: int = 4) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor]:
    """The official CIFAR training augmentation on a batch: random horizontal flip, then a
    random crop of the original size from the image zero-padded by ``padding`` (per image)."""
    def apply(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        flip = torch.rand(n, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        padded = F.pad(x, (padding,) * 4)
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=gen)
        return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    return apply


@dataclass
class ProxyData:
    """What proxies score on: training batches for BN recalibration and held-out batches.

    ``recal`` is a list of ``(x, y)`` batches used in order for every candidate, or a
    :class:`ShuffledRecal` that draws fresh batches per candidate; ``val`` is a list of batches.
    The default recalibration is the official one: momentum 0.1 from the reset statistics
    (``recal_mode="cumulative"`` is the exact average of SPOS). :func:`proxy_data` builds the
    official protocol (14 shuffled batches of 64) or the SPOS one from two datasets."""

    recal: list | ShuffledRecal = field(default_factory=list)
    val: list = field(default_factory=list)
    recal_mode: str = "momentum"  # momentum (official, 0.1) | cumulative
    momentum: float = 0.1

    def __post_init__(self):
        if not self.val or sum(len(b[1]) for b in self.val) == 0:
            raise DataError("the validation set is empty; proxies need held-out images to score on")
        if not isinstance(self.recal, ShuffledRecal) and not self.recal:
            raise DataError("no training batches for BN recalibration; give at least one")
        if self.recal_mode not in RECAL_MODES:
            raise ConfigError(f"recal_mode must be one of {', '.join(RECAL_MODES)}, got '{self.recal_mode}'")

    def recal_batches(self, genotype: Any) -> list:
        return self.recal.batches(genotype) if isinstance(self.recal, ShuffledRecal) else list(self.recal)


RECAL_PROTOCOLS = ("official", "spos")


def _as_tensors(data) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) for t in data):
        return data[0], data[1]
    if len(data) == 0:
        raise DataError("the dataset is empty")
    xs, ys = zip(*(data[i] for i in range(len(data))))
    return torch.stack(list(xs)), torch.as_tensor([int(t) for t in ys])


def proxy_data(train, val, *, protocol: str = "official", recal_images: int = 850, batch_size: int = 64,
               val_batch_size: int = 64, seed: int = 0,
               transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None) -> ProxyData:
    """:class:`ProxyData` from a training and a held-out set (datasets of ``(x, y)`` or ``(x, y)``
    tensor pairs).

    ``protocol="official"`` (the GeNAS code, ``get_cand_acc`` / ``get_cand_wlm``): per candidate
    ``ceil(recal_images / batch_size)`` = 14 fresh shuffled batches of 64 (``recal_images=850``),
    momentum 0.1 after resetting the statistics (0.9**14 = 23% of the reset values remain);
    ``transform`` is the augmentation (the official CIFAR runs use :func:`flip_crop`).
    ``protocol="spos"``: the first ``recal_images`` training images in order, the same batches for
    every candidate, the exact (cumulative) average. Held-out batches of ``val_batch_size`` (the
    official search passes 64)."""
    if protocol not in RECAL_PROTOCOLS:
        raise ConfigError(f"protocol must be one of {', '.join(RECAL_PROTOCOLS)}, got '{protocol}'")
    if recal_images < 1 or batch_size < 1 or val_batch_size < 1:
        raise ConfigError(f"recal_images, batch_size and val_batch_size must be >= 1, got {recal_images}, "
                          f"{batch_size}, {val_batch_size}")
    tx, ty = _as_tensors(train)
    vx, vy = _as_tensors(val)
    vb = [(vx[i:i + val_batch_size], vy[i:i + val_batch_size]) for i in range(0, len(vx), val_batch_size)]
    if protocol == "official":
        return ProxyData(ShuffledRecal(tx, ty, recal_images, batch_size, seed, transform), vb)
    n = min(recal_images, len(tx))
    rb = [(tx[i:min(i + batch_size, n)], ty[i:min(i + batch_size, n)]) for i in range(0, n, batch_size)]
    return ProxyData(rb, vb, recal_mode="cumulative")


def candidate_seed(seed: int, genotype: Any) -> int:
    """A per-candidate seed: the same genotype gets the same noise in every run."""
    return zlib.crc32(f"{int(seed)}|{genotype}".encode())
