"""Training (on :class:`reprozoo.runtime.trainer.Trainer`) and deterministic evaluation.

The optimiser follows the official code: Adam with a linear warm-up from 1e-7 and an inverse
square-root decay afterwards, gradient-norm clipping. The checkpoint kept is the epoch with the
best validation score (``select``), never the test split.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reprozoo.errors import ConfigError
from reprozoo.gmp.data import GroundingDataset, collate
from reprozoo.gmp.metrics import rank_predictions, recall_table, summarise
from reprozoo.gmp.models import MaskedQueryGrounder
from reprozoo.runtime.fit_folder import CHECKPOINT, atomic_save, describe_model, holds_run
from reprozoo.runtime.trainer import TrainConfig, Trainer

FREE_ON_RESUME = ("device", "eval_batch_size")  # may change when a run resumes
EVAL_SEED = 7919  # evaluation word masking: sample i uses seed EVAL_SEED * 100_003 + i


@dataclass
class FitConfig:
    epochs: int = 12
    batch_size: int = 64
    lr: float = 1e-3
    warmup: int = 100  # updates of linear warm-up, then lr * sqrt(warmup / update)
    grad_clip: float = 10.0
    eval_batch_size: int = 250
    select: str = "R1@0.5"  # validation metric that picks the kept epoch
    vote: str = "loss"  # top-1 voting weights: loss (Charades rule) | uniform (ActivityNet rule)
    max_steps_per_epoch: int = 0

    def validate(self, prefix: str = "fit") -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1 or self.warmup < 0:
            raise ConfigError(f"{prefix}.epochs, batch_size, eval_batch_size must be >= 1 and warmup >= 0")
        if not self.lr > 0 or self.grad_clip < 0:
            raise ConfigError(f"{prefix}.lr must be > 0 and {prefix}.grad_clip >= 0, got {self.lr}, {self.grad_clip}")
        if self.vote not in ("loss", "uniform"):
            raise ConfigError(f"{prefix}.vote must be 'loss' or 'uniform', got '{self.vote}'")
        if self.select not in ("mIoU",) and not self.select.startswith("R"):
            raise ConfigError(f"{prefix}.select must be a metric like R1@0.5 or mIoU, got '{self.select}'")


def warmup_inverse_sqrt(warmup: int, lr: float, start: float = 1e-7):
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (start + (lr - start) * step / warmup) / lr
        return float(np.sqrt(max(warmup, 1) / max(step, 1))) if warmup else 1.0

    return factor


def _unwrap(model):
    return getattr(model, "module", model)


@torch.no_grad()
def predict(model: MaskedQueryGrounder, loader, vote: str = "loss", keep: bool = False) -> dict[str, Any]:
    """Segments (N, K, 2), losses (N, K), the voted top-1 (N, 2) and the loss-ranked segments."""
    net = _unwrap(model)
    was = net.training
    net.eval()
    segs, losses, gts, extra = [], [], [], []
    device = next(net.parameters()).device
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        out = net(batch)
        segs.append(out["segments"].cpu())
        losses.append(out["loss"].cpu())
        gts.append(batch["gt"].cpu())
        if keep:
            extra.append({"masks": out["masks"].cpu(), "centres": [c.cpu() for c in _as_list(out["centres"])],
                          "importance": [a.cpu() for a in _as_list(out["importance"])],
                          "widths": out["widths"].cpu()})
    net.train(was)
    segments, loss = torch.cat(segs), torch.cat(losses)
    top1, ranked = rank_predictions(segments, loss, vote)
    res = {"segments": segments, "loss": loss, "top1": top1, "ranked": ranked, "gt": torch.cat(gts)}
    if keep:
        res["extra"] = extra
    return res


def _as_list(x):
    return x if isinstance(x, list) else [x[:, i] for i in range(x.shape[1])]


def loader_for(data, vocab, batch_size: int, seed_offset: int = EVAL_SEED * 100_003):
    return torch.utils.data.DataLoader(GroundingDataset(data, vocab, seed_offset), batch_size=batch_size,
                                       shuffle=False, collate_fn=collate)


def evaluate(model, data, vocab, batch_size: int = 250, vote: str = "loss",
             ious=(0.3, 0.5, 0.7)) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Per-query hits (see :func:`recall_table`) and the raw predictions."""
    pred = predict(model, loader_for(data, vocab, batch_size), vote)
    return recall_table(pred["top1"], pred["ranked"], pred["gt"], ious=ious), pred


def fit(model: MaskedQueryGrounder, train, val, vocab, config: FitConfig, *, out_dir: str | Path | None = None,
        resume: bool = False, device: str = "auto", progress: bool | None = None,
        workdir: str | Path | None = None) -> list[dict[str, float]]:
    """Train ``model`` in place; at the end it holds the weights of the best validation epoch.

    With ``out_dir`` every epoch writes ``checkpoints/last.pt`` and the best epoch ``best.pt``; an
    ``out_dir`` that holds a run is refused without ``resume=True``, and a resume must use the run's
    settings (only ``device`` and ``eval_batch_size`` may change), :mod:`reprozoo.runtime.fit_folder`.
    ``workdir`` is the former name of ``out_dir`` (deprecated)."""
    if workdir is not None:
        if out_dir is not None:
            raise ConfigError("give out_dir only (workdir is its former name)")
        warnings.warn("fit(workdir=...) is deprecated; use out_dir=", DeprecationWarning, stacklevel=2)
        out_dir = workdir
    config.validate()
    train_ds = GroundingDataset(train, vocab)
    val_loader = loader_for(val, vocab, config.eval_batch_size)
    settings = {"call": "gmp.fit", **asdict(config), "model": describe_model(model), "train_data": len(train_ds),
                "val_data": len(val_loader.dataset), "vocab": len(vocab)}
    steps_per_epoch = -(-len(train_ds) // config.batch_size)
    if config.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    total = max(config.epochs * steps_per_epoch, 1)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_inverse_sqrt(config.warmup, config.lr))

    def step_fn(m, batch):
        batch = dict(batch)
        batch["mask_seed"] = torch.randint(0, 2**62, (batch["words"].shape[0],))
        # the scheduler counts the updates so far (restored on resume): this is update number last_epoch + 1
        return _unwrap(m).training_loss(batch, progress=(sched.last_epoch + 1) / total)

    def eval_fn(m, loader, acc):
        pred = predict(m, val_loader, config.vote)
        return {f"val_{k}": v for k, v in summarise(recall_table(pred["top1"], pred["ranked"], pred["gt"])).items()}

    best_path = Path(out_dir) / "best.pt" if out_dir is not None else None
    best = {"score": -1.0, "state": None}
    if best_path is not None and resume and holds_run(out_dir, CHECKPOINT) and best_path.is_file():
        saved = torch.load(best_path, map_location="cpu", weights_only=True)
        best.update(score=float(saved["score"]), state=saved["model"])

    def on_epoch_end(epoch, row):
        score = row.get(f"val_{config.select}", float("nan"))
        if score > best["score"]:
            state = {k: v.detach().clone() for k, v in _unwrap(model).state_dict().items()}
            best.update(score=score, state=state)
            if best_path is not None:
                atomic_save({"score": score, "model": state, "epoch": epoch}, best_path)
        row["selected"] = float(score >= best["score"])

    tcfg = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, grad_clip=config.grad_clip,
                       device=device, scheduler_interval="step", max_steps_per_epoch=config.max_steps_per_epoch,
                       checkpoint_every=1 if out_dir is not None else 0, eval_batch_size=config.eval_batch_size)
    trainer = Trainer(model, opt, train_ds, tcfg, step_fn=step_fn, scheduler=sched, val_data=train_ds,
                      eval_fn=eval_fn, out_dir=out_dir, collate_fn=collate, progress=progress,
                      on_epoch_end=on_epoch_end, settings=settings, free_on_resume=FREE_ON_RESUME)
    history = trainer.fit(resume=resume)
    if best["state"] is not None:
        _unwrap(model).load_state_dict(best["state"])
    return history
