"""A small training/evaluation loop on HF Accelerate with exact resume.

Runs unchanged on CPU, one GPU, or many GPUs/nodes (``accelerate launch`` / ``torchrun``).

* data order is a pure function of ``(seed, epoch)`` (see :class:`EpochSampler`), so it does not
  depend on whether the run was interrupted;
* a checkpoint holds model, optimizer, scheduler, every RNG state, the epoch and the history;
  ``fit(resume=True)`` continues from it and ends with bit-identical weights on CPU;
* per-epoch metrics go to ``<out_dir>/train_log.csv``; a progress bar shows while it runs;
* the output folder follows :mod:`reprozoo.runtime.fit_folder`: an ``out_dir`` that holds
  ``checkpoints/last.pt`` is refused unless ``fit(resume=True)``, and a resume compares the run's
  settings (``out_dir/fit_settings.json``) key by key with the trainer's.

The method is given by ``step_fn(model, batch) -> loss | {"loss": loss, **floats}``; the
default is cross-entropy on ``(inputs, targets)`` batches.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from reprozoo.errors import CheckpointError, ConfigError
from reprozoo.runtime.accel import make_accelerator
from reprozoo.runtime.fit_folder import (
    CHECKPOINT,
    atomic_save,
    describe_model,
    prepare_out_dir,
    write_settings,
)
from reprozoo.runtime.progress import progress_bar
from reprozoo.runtime.seeding import get_rng_state, set_rng_state


@dataclass
class TrainConfig:
    epochs: int = 1
    batch_size: int = 32  # global batch (split over processes)
    eval_batch_size: int = 256
    grad_clip: float = 0.0  # max global grad norm; 0 disables
    grad_accum: int = 1
    seed: int = 0
    drop_last: bool = False
    num_workers: int = 0
    device: str = "auto"
    mixed_precision: str = "no"
    sync_bn: bool = True  # convert BatchNorm to SyncBatchNorm on multi-GPU runs
    checkpoint_every: int = 1  # epochs; 0 disables checkpoints
    scheduler_interval: str = "epoch"  # epoch | step
    max_steps_per_epoch: int = 0  # 0 = full epoch; >0 truncates (smoke runs)

    def validate(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("epochs >= 0, batch_size >= 1 and grad_accum >= 1 are required")
        if self.scheduler_interval not in ("epoch", "step"):
            raise ConfigError("scheduler_interval must be 'epoch' or 'step'")


# TrainConfig fields a resume may change: how the run executes, not what it computes (``epochs``:
# the trainer's own loop depends on it only through the schedule its caller built)
FREE_ON_RESUME = ("epochs", "device", "num_workers", "eval_batch_size", "checkpoint_every")
OPTIMIZER_KEYS = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "betas", "eps", "alpha")


class EpochSampler(Sampler[int]):
    """Shuffles with a generator seeded by ``seed * 100003 + epoch``: the order of epoch e is
    the same whether or not the run was resumed, and the same on every process."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def classification_step(model: nn.Module, batch: Any) -> dict[str, Any]:
    x, y = batch[0], batch[1]
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    return {"loss": loss, "acc": (logits.argmax(1) == y).float().mean().item()}


def tensor_epoch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, order: torch.Tensor, batch_size: int,
                 optimizer: torch.optim.Optimizer, scheduler: Any = None) -> tuple[float, float]:
    """One epoch of classification on in-memory tensors, in the batches of ``order`` (a permutation of
    the rows): cross-entropy, a scheduler step per batch; returns (train accuracy, mean loss) measured
    on the fly. For small models whose data fit in memory, where a DataLoader costs more than the step."""
    hits, loss_sum = 0, 0.0
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        out = model(x[idx])
        loss = F.cross_entropy(out, y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        hits += int((out.argmax(1) == y[idx]).sum())
        loss_sum += float(loss.detach()) * len(idx)
    return hits / len(order), loss_sum / len(order)


class Trainer:
    """Train ``model`` on ``train_data`` (a Dataset) with ``optimizer``.

    ``eval_fn(model, loader, accelerator) -> dict`` overrides the default evaluation
    (mean loss of ``step_fn`` and accuracy when the step reports it).

    ``settings`` is what a resume must share with the run it continues (default: the
    :class:`TrainConfig`, the model's class and size, the optimiser and its hyper-parameters, the
    scheduler, the step and the number of training and validation items); the keys in
    ``free_on_resume`` may differ. A training call built on the trainer passes its own recipe.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        train_data: Dataset,
        config: TrainConfig | None = None,
        *,
        step_fn: Callable[[nn.Module, Any], Any] = classification_step,
        scheduler: Any = None,
        val_data: Dataset | None = None,
        eval_fn: Callable[..., dict[str, float]] | None = None,
        out_dir: str | Path | None = None,
        collate_fn: Callable | None = None,
        accelerator: Any = None,
        progress: bool | None = None,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
        settings: dict[str, Any] | None = None,
        free_on_resume: tuple[str, ...] = FREE_ON_RESUME,
    ):
        self.config = config or TrainConfig()
        self.config.validate()
        self.accelerator = accelerator or make_accelerator(self.config.device, self.config.mixed_precision)
        if self.config.sync_bn and self.accelerator.num_processes > 1 and self.accelerator.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if len(train_data) == 0:
            raise ConfigError("the training set is empty")
        self.step_fn, self.eval_fn, self.scheduler = step_fn, eval_fn, scheduler
        self.settings = settings if settings is not None else self._default_settings(
            model, optimizer, train_data, val_data)
        self.free_on_resume = tuple(free_on_resume)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress, self.on_epoch_end = progress, on_epoch_end
        self.sampler = EpochSampler(len(train_data), self.config.seed, shuffle=True)
        loader = DataLoader(
            train_data, batch_size=self.config.batch_size, sampler=self.sampler,
            drop_last=self.config.drop_last, num_workers=self.config.num_workers, collate_fn=collate_fn,
        )
        val_loader = None
        if val_data is not None:
            val_loader = DataLoader(val_data, batch_size=self.config.eval_batch_size, shuffle=False,
                                    num_workers=self.config.num_workers, collate_fn=collate_fn)
        self.model, self.optimizer, self.train_loader = self.accelerator.prepare(model, optimizer, loader)
        self.val_loader = self.accelerator.prepare(val_loader) if val_loader is not None else None
        self.history: list[dict[str, float]] = []
        self.start_epoch = 0

    def _default_settings(self, model, optimizer, train_data, val_data) -> dict[str, Any]:
        step = getattr(self.step_fn, "__qualname__", type(self.step_fn).__name__)
        hyper = {f"optimizer.{k}": optimizer.defaults[k] for k in OPTIMIZER_KEYS if k in optimizer.defaults}
        return {"call": "Trainer", **asdict(self.config), "model": describe_model(model),
                "optimizer": type(optimizer).__name__, **hyper,
                "scheduler": None if self.scheduler is None else type(self.scheduler).__name__, "step_fn": step,
                "train_data": len(train_data), "val_data": getattr(val_data, "__len__", lambda: None)()}

    # ------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / "checkpoints" / "last.pt" if self.out_dir is not None else None

    def state_dict(self, epoch: int) -> dict[str, Any]:
        return {
            "model": self.accelerator.unwrap_model(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": get_rng_state(),
            "epoch": epoch,
            "history": self.history,
        }

    def save_checkpoint(self, epoch: int) -> None:
        if self.checkpoint_path is None:
            return
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            atomic_save(self.state_dict(epoch), self.checkpoint_path)
        self.accelerator.wait_for_everyone()

    def load_checkpoint(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"no checkpoint at {path}; run without --resume first")
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.accelerator.unwrap_model(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        self.start_epoch = int(state["epoch"]) + 1
        self.history = list(state["history"])

    # ------------------------------------------------------------ loops
    def _as_dict(self, out: Any) -> dict[str, Any]:
        return out if isinstance(out, dict) else {"loss": out}

    def train_epoch(self, epoch: int) -> dict[str, float]:
        cfg, acc = self.config, self.accelerator
        self.model.train()
        # Accelerate's loader re-sets its sampler's epoch from its own counter on every __iter__,
        # so the epoch must go through the loader (a fresh loader after resume counts from 0).
        setter = getattr(self.train_loader, "set_epoch", self.sampler.set_epoch)
        setter(epoch)
        sums: dict[str, float] = {}
        count = 0
        n_batches = len(self.train_loader)
        if cfg.max_steps_per_epoch > 0:
            n_batches = min(n_batches, cfg.max_steps_per_epoch)
        with progress_bar(n_batches, f"epoch {epoch + 1}/{cfg.epochs}", self.progress) as bar:
            for i, batch in enumerate(self.train_loader):
                if i >= n_batches:
                    break
                out = self._as_dict(self.step_fn(self.model, batch))
                loss = out["loss"]
                if not torch.isfinite(loss.detach()):
                    raise FloatingPointError(f"non-finite loss at epoch {epoch + 1}, step {i}")
                acc.backward(loss / cfg.grad_accum)
                if (i + 1) % cfg.grad_accum == 0 or i + 1 == n_batches:
                    if cfg.grad_clip > 0:
                        acc.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)
                    if self.scheduler is not None and cfg.scheduler_interval == "step":
                        self.scheduler.step()
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v)
                count += 1
                bar.update()
        if self.scheduler is not None and cfg.scheduler_interval == "epoch":
            self.scheduler.step()
        means = torch.tensor([sums[k] / max(count, 1) for k in sorted(sums)], device=acc.device)
        means = acc.reduce(means, reduction="mean") if acc.num_processes > 1 else means
        return {f"train_{k}": float(v) for k, v in zip(sorted(sums), means.tolist())}

    @torch.no_grad()
    def evaluate(self, loader: DataLoader | None = None) -> dict[str, float]:
        loader = loader if loader is not None else self.val_loader
        if loader is None:
            return {}
        self.model.eval()
        if self.eval_fn is not None:
            return self.eval_fn(self.model, loader, self.accelerator)
        total = torch.zeros(3, device=self.accelerator.device, dtype=torch.float64)
        for batch in loader:
            x, y = batch[0], batch[1]
            logits = self.model(x)
            logits, y = self.accelerator.gather_for_metrics((logits, y))
            total[0] += F.cross_entropy(logits.float(), y, reduction="sum")
            total[1] += (logits.argmax(1) == y).sum()
            total[2] += y.numel()
        n = max(total[2].item(), 1)
        return {"val_loss": total[0].item() / n, "val_acc": total[1].item() / n}

    def fit(self, resume: bool = False) -> list[dict[str, float]]:
        """Train for ``config.epochs`` epochs; with ``resume`` continue from the last checkpoint.

        An ``out_dir`` holding a checkpoint is refused without ``resume``; a resume with other
        settings names the first that differs (:mod:`reprozoo.runtime.fit_folder`)."""
        if prepare_out_dir(self.out_dir, self.settings, resume=resume, marker=CHECKPOINT,
                           free=self.free_on_resume, write=False):
            self.load_checkpoint(self.checkpoint_path)
            if self.start_epoch > self.config.epochs:
                raise ConfigError(f"resume=True but the run in {self.out_dir} has finished {self.start_epoch} "
                                  f"epochs, more than epochs={self.config.epochs}")
        if self.out_dir is not None and self.accelerator.is_main_process:
            write_settings(self.out_dir, self.settings)
        for epoch in range(self.start_epoch, self.config.epochs):
            row = {"epoch": epoch + 1, **self.train_epoch(epoch), **self.evaluate()}
            if self.scheduler is not None:
                row["lr"] = float(self.optimizer.param_groups[0]["lr"])
            self.history.append(row)
            self._write_log()
            if self.on_epoch_end is not None:
                self.on_epoch_end(epoch, row)
            every = self.config.checkpoint_every
            if every > 0 and ((epoch + 1) % every == 0 or epoch + 1 == self.config.epochs):
                self.save_checkpoint(epoch)
        return self.history

    def _write_log(self) -> None:
        if self.out_dir is None or not self.accelerator.is_main_process:
            return
        keys: list[str] = []
        for row in self.history:
            keys += [k for k in row if k not in keys]
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "train_log.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            for row in self.history:
                writer.writerow({k: row.get(k, math.nan) for k in keys})

    def unwrapped_model(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.model)
