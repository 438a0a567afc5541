"""Experiment ``pflayer-imagenet``: the paper's ResNet ImageNet recipe as a training entry.

``paper``: any ImageFolder at ``<data_root>/train`` and ``<data_root>/val``; SGD (momentum 0.9,
lr 0.2 for the global batch 1024 = 4 GPUs x 256, weight decay 1e-4), 3 linear warm-up epochs, the
learning rate divided by 10 every 30 epochs, 90 epochs, AMP, no label smoothing; random-resized
crop 224 + flip for training, resize 256 + centre crop 224 for evaluation, ImageNet mean/std.
The same command runs on CPU, one GPU or many (``accelerate launch``); batches are global.
``smoke``: writes a tiny two-class ImageFolder of dot patterns and trains two steps.
There is no verdict from a fixed accuracy bar: the result reports top-1/top-5 as measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from reprozoo.errors import ConfigError
from reprozoo.runtime.config import ExperimentConfig
from reprozoo.runtime.image_classification import (
    ImageRecipe,
    check_image_root,
    fit_classifier,
    image_folders,
    imagenet_transforms,
)
from reprozoo.runtime.profile import count_params
from reprozoo.runtime.registry import create_model
from reprozoo.runtime.report import ExperimentResult
from reprozoo.runtime.seeding import seed_everything
from reprozoo.runtime.verdict import INCONCLUSIVE

PAPER = "Han et al., Learning Features with Parameter-Free Layers (PfLayer), ICLR 2022"
CLAIM = ("Training entry for the paper's ResNet recipe on ImageNet (R50 76.2%, R50-max 74.3%, R50-hybrid 77.1% "
         "top-1 at 224). It reports the accuracy it measures; no verdict is taken from a fixed bar.")
MODELS = ("resnet50_pf", "r50_max", "r50_hybrid")


@dataclass
class ImageNetConfig(ExperimentConfig):
    dataset: str = "folder"  # folder (data_root/train, data_root/val) | generated (tiny folder, smoke)
    model: str = "r50_hybrid"
    width_mult: float = 1.0
    image_size: int = 224
    resize: int = 256
    epochs: int = 90
    batch_size: int = 1024  # global
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: int = 3
    step_epochs: int = 30
    step_gamma: float = 0.1
    label_smoothing: float = 0.0
    mixed_precision: str = "fp16"
    num_workers: int = 8
    eval_batch_size: int = 256
    max_steps_per_epoch: int = 0  # 0 = full epochs

    PRESETS: ClassVar[dict] = {
        "smoke": {"dataset": "generated", "image_size": 32, "resize": 36, "epochs": 1, "batch_size": 4,
                  "width_mult": 0.125, "warmup_epochs": 0, "max_steps_per_epoch": 2, "mixed_precision": "no",
                  "num_workers": 0, "eval_batch_size": 8, "device": "cpu"},
        "quick": {"dataset": "generated", "image_size": 32, "resize": 36, "epochs": 2, "batch_size": 8,
                  "width_mult": 0.25, "warmup_epochs": 0, "mixed_precision": "no", "num_workers": 0,
                  "eval_batch_size": 16, "device": "cpu"},
        "paper": {},
    }

    def validate(self) -> None:
        if self.dataset not in ("folder", "generated"):
            raise ConfigError(f"dataset must be 'folder' or 'generated', got '{self.dataset}'")
        if self.model not in MODELS:
            raise ConfigError(f"model must be one of {', '.join(MODELS)}, got '{self.model}'")
        if not 0 < self.width_mult <= 16:
            raise ConfigError(f"width_mult must be in (0, 16], got {self.width_mult}")
        if self.image_size < 16 or self.resize < self.image_size:
            raise ConfigError(f"image_size >= 16 and resize >= image_size are required, got {self.image_size}, "
                              f"{self.resize}")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError("epochs, batch_size and eval_batch_size must be >= 1")
        if not (self.lr > 0 and 0 <= self.momentum < 1 and self.weight_decay >= 0):
            raise ConfigError("lr > 0, 0 <= momentum < 1 and weight_decay >= 0 are required")
        if self.warmup_epochs < 0 or self.step_epochs < 1 or not 0 < self.step_gamma <= 1:
            raise ConfigError("warmup_epochs >= 0, step_epochs >= 1 and 0 < step_gamma <= 1 are required")
        if not 0 <= self.label_smoothing < 1 or self.num_workers < 0 or self.max_steps_per_epoch < 0:
            raise ConfigError("label_smoothing in [0, 1), num_workers >= 0 and max_steps_per_epoch >= 0 are required")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ConfigError(f"mixed_precision must be no|fp16|bf16, got '{self.mixed_precision}'")
        if self.dataset == "folder":
            image_root(self.data_root)


def image_root(data_root: str) -> Path:
    return check_image_root(data_root, "the paper preset")


def transforms(cfg: ImageNetConfig, train: bool):
    """Random-resized crop + flip (bilinear) for training; resize to ``resize`` + centre crop for eval."""
    return imagenet_transforms(cfg.image_size, train, resize=cfg.resize)


def build_data(cfg: ImageNetConfig, work: Path):
    if cfg.dataset == "generated":
        from reprozoo.data.pattern_folder import write_pattern_imagefolder

        root = write_pattern_imagefolder(work / "tiny_imagefolder", n_train=16, n_val=8)
    else:
        root = image_root(cfg.data_root)
    return image_folders(root, transforms(cfg, True), transforms(cfg, False))


def recipe(cfg: ImageNetConfig) -> ImageRecipe:
    """The configured recipe: warm-up, then the rate x ``step_gamma`` every ``step_epochs``."""
    return ImageRecipe(
        epochs=cfg.epochs, batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size, lr=cfg.lr,
        momentum=cfg.momentum, weight_decay=cfg.weight_decay, warmup_epochs=cfg.warmup_epochs, schedule="step",
        step_epochs=cfg.step_epochs, step_gamma=cfg.step_gamma, label_smoothing=cfg.label_smoothing,
        max_steps_per_epoch=cfg.max_steps_per_epoch, num_workers=cfg.num_workers, device=cfg.device,
        mixed_precision=cfg.mixed_precision)


def run_imagenet(cfg: ImageNetConfig, ctx) -> ExperimentResult:
    train, val, classes = build_data(cfg, ctx.out_dir)
    rows = []
    for seed in cfg.seeds:
        seed_everything(seed)
        model = create_model(cfg.model, num_classes=classes, width_mult=cfg.width_mult)
        history = fit_classifier(model, train, val, recipe(cfg), seed=seed, out_dir=ctx.subdir(f"seed{seed}"),
                                 resume=ctx.resume, progress=ctx.progress)
        last = (history or [{}])[-1]
        rows.append({"seed": seed, "val_top1": last.get("val_top1", float("nan")),
                     "val_top5": last.get("val_top5", float("nan")), "train_loss": last.get("train_loss", float("nan"))})
    top1 = sum(r["val_top1"] for r in rows) / len(rows)
    top5 = sum(r["val_top5"] for r in rows) / len(rows)
    params = count_params(create_model(cfg.model, num_classes=classes, width_mult=cfg.width_mult))
    what = "ImageNet folder" if cfg.dataset == "folder" else "a generated 2-class folder (training-path check only)"
    evidence = (f"{cfg.model} (width {cfg.width_mult:g}, {params:,} params) on {what}: val top-1 {top1:.4f}, "
                f"top-5 {top5:.4f} after {cfg.epochs} epoch(s), {len(rows)} seed(s); no accuracy bar is applied")
    return ExperimentResult(INCONCLUSIVE, evidence,
                            {"method/val_top1": top1, "method/val_top5": top5, "method/params": float(params)},
                            claims=[{"claim": "training path (no verdict from a fixed accuracy bar)",
                                     "verdict": INCONCLUSIVE, "evidence": evidence}], table=rows,
                            notes="per-epoch logs in seed*/train_log.csv; checkpoints allow --resume.")
