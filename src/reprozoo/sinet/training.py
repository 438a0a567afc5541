"""SINet's training recipe on the foundation :class:`~reprozoo.runtime.trainer.Trainer` (the official training settings).

* Adam (lr 5e-4) with coupled L2 weight decay in three groups: depthwise conv weights 0, other
  conv weights 2e-4, everything else (BN, PReLU, Linear) 2e-6;
* MultiStepLR at epochs [E/2, E - E/6], gamma 0.5 (``schedule="multistep"``, the default); the
  experiments' presets may choose ``schedule="cosine"`` (per-epoch cosine annealing to zero over the
  stage, so every budget ends on a plateau of its own);
* stage 1 trains the encoder on 1/8-resolution labels (band kernel 5 at 28 px), stage 2 builds the
  full network from the best stage-1 encoder and trains everything (band kernel 15 at 224 px);
* the best epoch (per-image foreground IoU on the *validation* split, among epochs >= 0.6 E) is
  kept in ``best.pt`` and loaded at the end; the test split is never seen here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from reprozoo.errors import CheckpointError, ConfigError
from reprozoo.runtime.fit_folder import CHECKPOINT, atomic_save, describe_model, holds_run
from reprozoo.runtime.trainer import TrainConfig, Trainer
from reprozoo.sinet.losses import SINetLoss, band_kernel, resize_labels
from reprozoo.sinet.metrics import SegMeter

SCHEDULES = ("multistep", "cosine")


@dataclass
class StageConfig:
    """One training stage (the official values for E = 300 in brackets)."""

    epochs: int = 300
    batch_size: int = 24  # [36 in stage 1, 24 in stage 2]
    lr: float = 5e-4
    wd_conv: float = 2e-4
    wd_other: float = 2e-6
    boundary_weight: float = 0.5
    band_kernel: int = 0  # at the logits' resolution; 0 = scaled from 15 @ 224 (5 @ 28 in stage 1)
    best_from: float = 0.6  # keep the best epoch among epochs >= best_from * epochs
    max_steps_per_epoch: int = 0
    schedule: str = "multistep"  # multistep (official: halve at E/2 and E - E/6) | cosine (to zero at E)

    def validate(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got '{self.schedule}'")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("stage epochs and batch_size must be >= 1")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if min(self.wd_conv, self.wd_other, self.boundary_weight) < 0 or self.max_steps_per_epoch < 0:
            raise ConfigError("wd_conv, wd_other, boundary_weight and max_steps_per_epoch must be >= 0, got "
                              f"{self.wd_conv}, {self.wd_other}, {self.boundary_weight}, {self.max_steps_per_epoch}")
        if not 0.0 <= self.best_from <= 1.0:
            raise ConfigError(f"best_from must be in [0, 1], got {self.best_from}")
        if self.band_kernel < 0 or (self.band_kernel and self.band_kernel % 2 == 0):
            raise ConfigError(f"band_kernel must be 0 (auto) or odd, got {self.band_kernel}")


def param_groups(model: nn.Module, wd_conv: float = 2e-4, wd_other: float = 2e-6) -> list[dict[str, Any]]:
    """Depthwise conv weights (4-D, one input channel per group) -> no decay; other conv weights ->
    ``wd_conv``; all remaining parameters -> ``wd_other``."""
    depthwise, conv, other = [], [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        if p.ndim == 4 and p.shape[1] == 1 and p.shape[-1] > 1:
            depthwise.append(p)
        elif p.ndim == 4:
            conv.append(p)
        else:
            other.append(p)
    return [{"params": depthwise, "weight_decay": 0.0}, {"params": conv, "weight_decay": wd_conv},
            {"params": other, "weight_decay": wd_other}]


def make_optimizer(model: nn.Module, cfg: StageConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(param_groups(model, cfg.wd_conv, cfg.wd_other), lr=cfg.lr,
                            betas=(0.9, 0.999), eps=1e-8)


def make_scheduler(optimizer: torch.optim.Optimizer, epochs: int, schedule: str = "multistep"):
    """The per-epoch learning-rate schedule: the official MultiStepLR, or cosine annealing from the
    base rate to zero over ``epochs``."""
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs), eta_min=0.0)
    milestones = sorted({max(1, epochs // 2), max(1, epochs - epochs // 6)})
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.5)


def seg_step(loss_fn: SINetLoss) -> Callable[[nn.Module, Any], dict[str, Any]]:
    def step(model: nn.Module, batch: Any) -> dict[str, Any]:
        x, y = batch[0], batch[1]
        loss, ce, edge = loss_fn(model(x), y)
        return {"loss": loss, "ce": ce, "edge": edge}

    return step


def seg_eval(kernel: int) -> Callable[..., dict[str, float]]:
    """``eval_fn`` for the Trainer: per-image fg IoU, mIoU, band F1 at the logits' resolution."""

    @torch.no_grad()
    def evaluate(model: nn.Module, loader, accelerator) -> dict[str, float]:
        meter = SegMeter(kernel=kernel)
        for x, y in loader:
            logits = model(x)
            y = resize_labels(y, logits.shape[-2:])
            pred, y = accelerator.gather_for_metrics((logits.argmax(1), y))
            meter.update(pred, y)
        return {f"val_{k}": v for k, v in meter.compute().items()}

    return evaluate


class BestKeeper:
    """``on_epoch_end`` callback: keeps the weights of the best validation epoch (>= best_from * E)
    in memory and in ``out_dir/best.pt``; restores them from disk when a run is resumed."""

    def __init__(self, trainer_model: Callable[[], nn.Module], epochs: int, best_from: float,
                 out_dir: Path | None, key: str = "val_fg_iou", restore: bool = True):
        self.get_model, self.key = trainer_model, key
        self.first = min(epochs - 1, int(best_from * epochs + 0.999999) - 1 if best_from > 0 else 0)
        self.path = out_dir / "best.pt" if out_dir is not None else None
        self.best_score, self.best_epoch, self.state = -float("inf"), -1, None
        if restore and self.path is not None and self.path.is_file():
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
            self.best_score, self.best_epoch, self.state = saved["score"], saved["epoch"], saved["model"]

    def __call__(self, epoch: int, row: dict[str, float]) -> None:
        if epoch < self.first or self.key not in row or row[self.key] <= self.best_score:
            return
        self.best_score, self.best_epoch = float(row[self.key]), epoch + 1
        self.state = copy.deepcopy({k: v.detach().cpu() for k, v in self.get_model().state_dict().items()})
        if self.path is not None:
            atomic_save({"model": self.state, "score": self.best_score, "epoch": self.best_epoch}, self.path)


def train_stage(model: nn.Module, train_data: Dataset, val_data: Dataset, cfg: StageConfig, *,
                weight: torch.Tensor | None, image_size: int, stage: int = 2, seed: int = 0,
                device: str = "auto", out_dir: str | Path | None = None, resume: bool = False,
                progress: bool | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Train one stage; returns the model holding its best validation weights and a summary.

    With ``out_dir`` every epoch writes ``checkpoints/last.pt`` and the best epoch ``best.pt``; an
    ``out_dir`` that holds a run is refused without ``resume=True``, and a resume must use the run's
    settings (only ``device`` may change), :mod:`reprozoo.runtime.fit_folder`."""
    cfg.validate()
    out = Path(out_dir) if out_dir is not None else None
    settings = {"call": "train_stage", **asdict(cfg), "stage": stage, "image_size": image_size, "seed": seed,
                "weight": None if weight is None else torch.as_tensor(weight).tolist(),
                "model": describe_model(model), "train_data": len(train_data), "val_data": len(val_data)}
    logits_size = image_size // 8 if stage == 1 else image_size
    kernel = cfg.band_kernel or (band_kernel(logits_size, 5, 28) if stage == 1 else band_kernel(logits_size, 15, 224))
    loss_fn = SINetLoss(weight, cfg.boundary_weight, kernel)
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg.epochs, cfg.schedule)
    tcfg = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, eval_batch_size=64, seed=seed,
                       device=device, max_steps_per_epoch=cfg.max_steps_per_epoch)
    trainer: Trainer | None = None
    keeper = BestKeeper(lambda: trainer.unwrapped_model(), cfg.epochs, cfg.best_from, out,
                        restore=resume and holds_run(out, CHECKPOINT))  # a best.pt without a run is stale
    trainer = Trainer(model, optimizer, train_data, tcfg, step_fn=seg_step(loss_fn), scheduler=scheduler,
                      val_data=val_data, eval_fn=seg_eval(band_kernel(logits_size, 15, 224)), out_dir=out,
                      progress=progress, on_epoch_end=keeper, settings=settings, free_on_resume=("device",))
    history = trainer.fit(resume=resume)
    net = trainer.unwrapped_model()
    if keeper.state is None:
        raise CheckpointError("no epoch was evaluated on the validation split; is it empty?")
    net.load_state_dict(keeper.state)
    net.cpu().eval()
    return net, {"best_epoch": keeper.best_epoch, "best_val_fg_iou": keeper.best_score, "history": history,
                 "band_kernel": kernel}


def evaluate_model(model: nn.Module, data: Dataset, kernel: int, batch_size: int = 64) -> dict[str, float]:
    """Metrics (percent) of ``model`` on ``data`` at full resolution, on CPU."""
    from torch.utils.data import DataLoader

    model = model.cpu().eval()
    meter = SegMeter(kernel=kernel)
    with torch.no_grad():
        for x, y in DataLoader(data, batch_size=batch_size):
            logits = model(x)
            meter.update(logits.argmax(1), resize_labels(y, logits.shape[-2:]))
    return meter.compute()
