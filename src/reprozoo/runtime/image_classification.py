"""Supervised image classification on an ImageFolder, the ImageNet way: one module for every
package that trains a classifier on ``<root>/train`` + ``<root>/val`` (ReXNet's and PfLayer's
ImageNet recipes use it).

- :class:`ImageRecipe`: the optimisation recipe (SGD with momentum, weight decay on the weights
  only, per-step linear warm-up then cosine or step decay, label smoothing, batch sizes, AMP);
- :func:`imagenet_transforms`: random-resized crop + flip (+ RandAugment, random erasing) for
  training, resize + centre crop for evaluation, ImageNet mean/std;
- :func:`check_image_root` / :func:`image_folders`: the two folders with one-line errors;
- :func:`fit_classifier`: trains one model with :class:`~reprozoo.runtime.trainer.Trainer`
  (exact resume, per-epoch ``train_log.csv``) and returns the per-epoch history, whose
  evaluation rows carry ``val_loss``, ``val_top1`` and ``val_top5``.

>>> recipe = ImageRecipe(epochs=90, batch_size=1024, lr=0.2, weight_decay=1e-4, warmup_epochs=3,
...                      schedule="step", step_epochs=30)
>>> history = fit_classifier(model, train, val, recipe, seed=0, out_dir="runs/r50")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reprozoo.errors import ConfigError, DataError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SCHEDULES = ("cosine", "step")
FREE_ON_RESUME = ("device", "num_workers", "eval_batch_size")  # may change when a run resumes


@dataclass
class ImageRecipe:
    """How to train: every field has the meaning it has in the papers' training sections.

    ``schedule="cosine"``: linear warm-up over ``warmup_epochs``, then cosine decay to 0 at the last
    step; ``schedule="step"``: the same warm-up, the rate times ``step_gamma`` every ``step_epochs``
    (counted from the first step). Weight decay applies to tensors of >= 2 dimensions only unless
    ``decay_norm_and_bias``. ``drop_last`` drops a last partial training batch."""

    epochs: int = 1
    batch_size: int = 256  # global batch
    eval_batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    decay_norm_and_bias: bool = False
    warmup_epochs: float = 0.0
    schedule: str = "cosine"
    step_epochs: int = 30
    step_gamma: float = 0.1
    label_smoothing: float = 0.0
    max_steps_per_epoch: int = 0  # 0 = full epochs
    drop_last: bool = False
    num_workers: int = 0
    device: str = "auto"
    mixed_precision: str = "no"

    def validate(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError("epochs >= 0, batch_size >= 1 and eval_batch_size >= 1 are required")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_epochs < 0 or not 0 <= self.momentum < 1:
            raise ConfigError("lr > 0, weight_decay >= 0, warmup_epochs >= 0 and momentum in [0, 1) are required")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got '{self.schedule}'")
        if self.step_epochs < 1 or not 0 < self.step_gamma <= 1 or not 0 <= self.label_smoothing < 1:
            raise ConfigError("step_epochs >= 1, 0 < step_gamma <= 1 and label_smoothing in [0, 1) are required")

    def steps_per_epoch(self, n_train: int) -> int:
        steps = math.ceil(n_train / self.batch_size)
        return min(steps, self.max_steps_per_epoch) if self.max_steps_per_epoch > 0 else steps


# ---------------------------------------------------------------- data
def check_image_root(data_root: str | Path, what: str = "the paper preset") -> Path:
    """``data_root`` as a Path if it holds ``train/`` and ``val/``; one-line errors otherwise."""
    if not data_root:
        raise ConfigError(f"{what} needs an ImageNet folder: --set data_root=/path/to/imagenet "
                          "(with train/<class>/*.JPEG and val/<class>/*.JPEG)")
    root = Path(data_root)
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise DataError(f"{root / split} does not exist; expected {root}/train/<class>/<image> and "
                            f"{root}/val/<class>/<image> (torchvision ImageFolder layout)")
    return root


def imagenet_transforms(image_size: int, train: bool, *, resize: int | None = None, crop_pct: float = 0.875,
                        interpolation: str = "bilinear", randaugment_ops: int = 0, randaugment_magnitude: int = 9,
                        random_erasing: float = 0.0):
    """torchvision v2 pipeline: training = random-resized crop (scale 0.08-1) + flip
    [+ RandAugment on timm's 0..10 magnitude scale] + normalise [+ random erasing with random fill];
    evaluation = resize the short side to ``resize`` (default ``floor(image_size / crop_pct)``) +
    centre crop + normalise."""
    from torchvision.transforms import InterpolationMode, v2

    mode = InterpolationMode(interpolation)
    tail = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if train:
        steps = [v2.RandomResizedCrop(image_size, scale=(0.08, 1.0), interpolation=mode, antialias=True),
                 v2.RandomHorizontalFlip()]
        if randaugment_ops > 0:
            steps.append(v2.RandAugment(randaugment_ops, randaugment_magnitude, num_magnitude_bins=11))
        steps += tail
        if random_erasing > 0:
            steps.append(v2.RandomErasing(random_erasing, value="random"))
        return v2.Compose(steps)
    side = resize if resize is not None else int(math.floor(image_size / crop_pct))
    return v2.Compose([v2.Resize(side, interpolation=mode, antialias=True), v2.CenterCrop(image_size), *tail])


def image_folders(root: str | Path, train_transform, val_transform):
    """``(train, val, num_classes)`` from ``root/train`` and ``root/val`` (same class folders)."""
    from reprozoo.data import image_folder

    root = Path(root)
    train = image_folder(root / "train", transform=train_transform)
    val = image_folder(root / "val", transform=val_transform)
    if train.classes != val.classes:
        raise DataError(f"the class folders of {root}/train and {root}/val differ")
    return train, val, len(train.classes)


def write_tiny_imagefolder(root: str | Path, classes: int = 2, per_class: int = 6, size: int = 40,
                           seed: int = 0) -> Path:
    """A tiny ImageFolder (``train/`` and ``val/``) of coloured noise images, one hue per class."""
    import numpy as np
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("val", max(2, per_class // 2))):
        for c in range(classes):
            folder = root / split / f"class_{c}"
            folder.mkdir(parents=True, exist_ok=True)
            base = np.zeros(3)
            base[c % 3] = 200.0
            for i in range(n):
                img = np.clip(base + rng.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(folder / f"{i}.png")
    return root


# ---------------------------------------------------------------- optimisation
def sgd(model: nn.Module, recipe: ImageRecipe) -> torch.optim.SGD:
    """SGD with momentum; weight decay on tensors of >= 2 dims (all of them with ``decay_norm_and_bias``)."""
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 and not recipe.decay_norm_and_bias else decay).append(p)
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum)


def _warmup(optimizer: torch.optim.Optimizer, warmup_steps: int, after: Callable[[int], float]):
    def factor(step: int) -> float:
        return (step + 1) / warmup_steps if step < warmup_steps else after(step)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int):
    """Per-step linear warm-up from ~0 to the base lr, then cosine decay to 0 at ``total_steps``."""

    def cosine(step: int) -> float:
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return _warmup(optimizer, warmup_steps, cosine)


def warmup_step(optimizer: torch.optim.Optimizer, warmup_steps: int, step_size: int, gamma: float):
    """Per-step linear warm-up, then the base lr times ``gamma`` every ``step_size`` steps (counted from 0)."""
    return _warmup(optimizer, warmup_steps, lambda step: gamma ** (step // step_size))


def recipe_scheduler(optimizer: torch.optim.Optimizer, recipe: ImageRecipe, steps_per_epoch: int):
    warm = int(round(recipe.warmup_epochs * steps_per_epoch))
    if recipe.schedule == "step":
        return warmup_step(optimizer, warm, recipe.step_epochs * steps_per_epoch, recipe.step_gamma)
    return warmup_cosine(optimizer, steps_per_epoch * recipe.epochs, warm)


def cross_entropy_step(label_smoothing: float = 0.0):
    """``step_fn`` for :class:`~reprozoo.runtime.trainer.Trainer`: cross-entropy (optionally smoothed)
    and the batch accuracy."""

    def step(model: nn.Module, batch):
        x, y = batch[0], batch[1]
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y, label_smoothing=label_smoothing)
        return {"loss": loss, "acc": (logits.argmax(1) == y).float().mean().item()}

    return step


@torch.no_grad()
def topk_eval(model: nn.Module, loader, accelerator) -> dict[str, float]:
    """Mean cross-entropy, top-1 and top-5 accuracy over ``loader`` (gathered over processes)."""
    correct1 = correct5 = total = 0.0
    loss = 0.0
    for x, y in loader:
        logits, y = accelerator.gather_for_metrics((model(x), y))
        loss += float(nn.functional.cross_entropy(logits.float(), y, reduction="sum"))
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        correct1 += float((top[:, 0] == y).sum())
        correct5 += float((top == y[:, None]).any(1).sum())
        total += y.numel()
    n = max(total, 1.0)
    return {"val_loss": loss / n, "val_top1": correct1 / n, "val_top5": correct5 / n}


# ---------------------------------------------------------------- the loop
def fit_classifier(model: nn.Module, train_data, val_data, recipe: ImageRecipe, *, seed: int = 0,
                   out_dir: str | Path | None = None, resume: bool = False, progress: bool | None = False,
                   optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None) -> list[dict[str, Any]]:
    """Train ``model`` on ``train_data`` with ``recipe`` and return the per-epoch history.

    The data order is a function of ``seed`` and the epoch; with ``out_dir`` every epoch writes
    ``train_log.csv`` and ``checkpoints/last.pt`` there and ``resume=True`` continues from it. An
    ``out_dir`` that holds a run is refused without ``resume=True``, and a resume must use the run's
    recipe (only ``device``, ``num_workers`` and ``eval_batch_size`` may change: the schedule spans
    ``epochs``). ``optimizer`` / ``scheduler`` replace the recipe's SGD and warm-up schedule."""
    from reprozoo.runtime.fit_folder import describe_model
    from reprozoo.runtime.trainer import TrainConfig, Trainer

    recipe.validate()
    settings = {"call": "fit_classifier", **asdict(recipe), "seed": seed, "model": describe_model(model),
                "optimizer": "recipe" if optimizer is None else type(optimizer).__name__,
                "scheduler": "recipe" if scheduler is None else type(scheduler).__name__,
                "train_data": len(train_data), "val_data": getattr(val_data, "__len__", lambda: None)()}
    optimizer = optimizer if optimizer is not None else sgd(model, recipe)
    if scheduler is None:
        scheduler = recipe_scheduler(optimizer, recipe, recipe.steps_per_epoch(len(train_data)))
    tc = TrainConfig(epochs=recipe.epochs, batch_size=recipe.batch_size, eval_batch_size=recipe.eval_batch_size,
                     seed=seed, num_workers=recipe.num_workers, device=recipe.device,
                     mixed_precision=recipe.mixed_precision, scheduler_interval="step",
                     max_steps_per_epoch=recipe.max_steps_per_epoch, drop_last=recipe.drop_last)
    trainer = Trainer(model, optimizer, train_data, tc, step_fn=cross_entropy_step(recipe.label_smoothing),
                      scheduler=scheduler, val_data=val_data, eval_fn=topk_eval, out_dir=out_dir, progress=progress,
                      settings=settings, free_on_resume=FREE_ON_RESUME)
    return trainer.fit(resume=resume)
