"""The independent trials of the SINet experiments, run by ``reprozoo.runtime.trials``.

One module-level function, :func:`run_one`, runs any of three trial kinds:

* ``Trial("encoder", seed, pooling=..., extra=...)``: stage 1 (the encoder on 1/8-resolution
  labels). Its 1/8 logits, bilinearly upsampled to the input size, are the *decoder-less* network,
  measured on the test split as the negative control. The best encoder is kept in the trial's
  folder as ``encoder.pt`` for the stage-2 trials of the same seed;
* ``Trial("sinet", seed, decoder=..., pooling=..., extra=..., boundary=...)``: stage 2 from the
  encoder trial with the same ``(seed, pooling, extra)`` (the run's two ``run_trials`` calls put
  stage 1 first), so the decoder variants of one seed share their encoder as in the paper;
* ``Trial("lraspp", seed, extra=...)``: torchvision's LR-ASPP MobileNetV3, stage-1 + stage-2
  epochs at full resolution with the same loss, optimiser recipe, augmentation and data.

Every trial trains inside ``tctx.workdir``, so the trainer's per-epoch checkpoints resume a
half-finished trial. Within a trial, model initialisation and augmentation draw from a torch
stream forked from the trial's *seed* (not its arm), so the arms of one seed start from the same
weights and see the same augmentations: the paired comparisons differ only in the arm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from reprozoo.errors import CheckpointError
from reprozoo.runtime.fit_folder import atomic_save
from reprozoo.runtime.profile import count_params
from reprozoo.runtime.trials import Trial, TrialContext
from reprozoo.sinet.baselines import LRASPP
from reprozoo.sinet.data import (
    SegDataset,
    cached_portraits,
    eg1800_splits,
    eval_transform,
    mean_std,
    portrait_crops,
    portrait_splits,
    train_transform,
)
from reprozoo.sinet.losses import band_kernel, class_weights
from reprozoo.sinet.models import SINet, SINetEncoder
from reprozoo.sinet.training import StageConfig, evaluate_model, train_stage

EXTRA_DATA = ("none", "naive", "crop")
N_FIGURE = 6  # test images whose predictions a trial returns for the figures


def _budget(fraction: float) -> dict[str, float]:
    """The ``fraction`` setting (share of the configured epochs), left out of the key at 1."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return {} if fraction == 1 else {"fraction": float(fraction)}


def encoder_trial(seed: int, pooling: bool = True, extra: str = "none", fraction: float = 1.0) -> Trial:
    return Trial("encoder", seed, pooling=bool(pooling), extra=extra, **_budget(fraction))


def sinet_trial(seed: int, decoder: str = "blocking", pooling: bool = True, extra: str = "none",
                boundary: bool = True, fraction: float = 1.0) -> Trial:
    """Stage 2 of one arm; ``fraction`` < 1 trains both stages (its own encoder and this stage) for that
    share of the configured epochs (the positive control: SINet at a quarter of its epochs)."""
    return Trial("sinet", seed, decoder=decoder, pooling=bool(pooling), extra=extra, boundary=bool(boundary),
                 **_budget(fraction))


def lraspp_trial(seed: int, extra: str = "none") -> Trial:
    return Trial("lraspp", seed, extra=extra)


# ------------------------------------------------------------------------------------------- data
def _splits(cfg):
    """EG1800 from ``data_root`` when given, else generated portraits."""
    if cfg.data_root:
        return eg1800_splits(cfg.data_root, cfg.image_size, seed=cfg.data_seed)
    return portrait_splits(cfg.n_train, cfg.n_val, cfg.n_test, cfg.image_size, cfg.data_seed, cfg.hardness)


def _extra_images(cfg, extra: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's data-creation trick on ``n_extra`` generated full-body scenes (twice the image
    size): plainly resized (``naive``) or cut into face-centred portrait crops (``crop``)."""
    s = cfg.image_size
    scenes = cached_portraits(cfg.n_extra, 2 * s, cfg.data_seed, "full_body", cfg.hardness, start=3_000_000)
    if extra == "crop":
        crops = portrait_crops(scenes, s, seed=cfg.data_seed)
        return crops.images, crops.masks
    images = F.interpolate(scenes.images.float(), size=(s, s), mode="bilinear", antialias=True)
    masks = F.interpolate(scenes.masks[:, None].float(), size=(s, s), mode="nearest")[:, 0]
    return images.round().clamp(0, 255).to(torch.uint8), masks.to(torch.uint8)


def datasets(cfg, extra: str = "none"):
    """(train, val, test, class weights, (mean, std), splits) for one training-set choice."""
    splits = _splits(cfg)
    s = cfg.image_size
    images, masks = splits.train.images, splits.train.masks
    if extra != "none":
        extra_images, extra_masks = _extra_images(cfg, extra)
        images, masks = torch.cat([images, extra_images]), torch.cat([masks, extra_masks])
    mean, std = mean_std(images)
    aug = cfg.augment
    train = SegDataset(images, masks, train_transform(
        s, mean, std, rotation=aug.rotation, scale=(1 - aug.scale, 1 + aug.scale), shift=aug.shift,
        p_color=aug.p_color, p_blur=aug.p_blur, p_noise=aug.p_noise))
    val = SegDataset(splits.val.images, splits.val.masks, eval_transform(s, mean, std))
    test = SegDataset(splits.test.images, splits.test.masks, eval_transform(s, mean, std))
    return train, val, test, class_weights(masks), (mean, std), splits


_DATA: dict[tuple[str, str], tuple] = {}


def _data(cfg, extra: str):
    """:func:`datasets`, kept per process for the trials of one run (a few MB at most)."""
    key = (repr(cfg), extra)
    if key not in _DATA:
        if len(_DATA) >= 4:
            _DATA.clear()
        _DATA[key] = datasets(cfg, extra)
    return _DATA[key]


# ------------------------------------------------------------------------------------------ trials
class Upsampled(torch.nn.Module):
    """The decoder-less network: a stage-1 encoder's 1/8 logits resized to the input size."""

    def __init__(self, encoder: SINetEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.encoder(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


def _stage(cfg, which: str, fraction: float = 1.0, **changes) -> StageConfig:
    base = cfg.stage1 if which == "stage1" else cfg.stage2
    epochs = max(1, round(base.epochs * fraction))
    return StageConfig(**{**base.__dict__, "epochs": epochs, **changes})


def baseline_stage(cfg) -> StageConfig:
    """LR-ASPP's one training run: the stage-2 recipe and schedule, for ``baseline_epochs`` (default SINet's
    stage-1 + stage-2 epochs) at ``baseline_lr`` (default the stage-2 learning rate)."""
    epochs = cfg.baseline_epochs or cfg.stage1.epochs + cfg.stage2.epochs
    return _stage(cfg, "stage2", epochs=epochs, **({"lr": cfg.baseline_lr} if cfg.baseline_lr else {}))


def _curves(history: list[dict[str, float]]) -> dict[str, list[float]]:
    """Per-epoch train loss and validation fg IoU (for the plateau gates)."""
    return {"train_loss": [float(r["train_loss"]) for r in history if "train_loss" in r],
            "val_curve": [float(r["val_fg_iou"]) for r in history if "val_fg_iou" in r]}


def _figure_arrays(model: torch.nn.Module, test, splits) -> dict[str, Any]:
    n = min(N_FIGURE, len(test))
    x = torch.stack([test[i][0] for i in range(n)])
    out: dict[str, Any] = {"images": splits.test.images[:n], "masks": splits.test.masks[:n]}
    with torch.no_grad():
        if isinstance(model, SINet):
            logits, gate = model.forward_with_gate(x)
            out["gate"] = gate[:, 0]
        else:
            logits = model(x)
    out["pred"] = logits.argmax(1).to(torch.uint8)
    return out


def _encoder_path(tctx: TrialContext, trial: Trial) -> Path:
    key = encoder_trial(trial.seed, trial.get("pooling", True), trial.get("extra", "none"),
                        trial.get("fraction", 1.0)).key
    return Path(tctx.run_dir) / "trials" / key / "encoder.pt"


def run_one(trial: Trial, tctx: TrialContext) -> dict[str, Any]:
    """Train and test one arm of one seed; returns plain data (metrics, and the first seed's
    figure arrays)."""
    cfg = tctx.config
    extra = trial.get("extra", "none")
    train, val, test, weight, (mean, std), splits = _data(cfg, extra)
    s = cfg.image_size
    kernel = band_kernel(s, 15, 224)
    fraction = float(trial.get("fraction", 1.0))
    common = dict(weight=weight, image_size=s, seed=trial.seed, device=cfg.device, resume=tctx.resume,
                  progress=False, out_dir=tctx.workdir)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1000 * trial.seed + 17)  # same stream for every arm of this seed
        if trial.arm == "encoder":
            encoder, summary = train_stage(SINetEncoder(pooling=trial["pooling"]), train, val,
                                           _stage(cfg, "stage1", fraction), stage=1, **common)
            path = tctx.workdir / "encoder.pt"
            atomic_save(encoder.state_dict(), path)
            model: torch.nn.Module = Upsampled(encoder)
        elif trial.arm == "sinet":
            path = _encoder_path(tctx, trial)
            if not path.is_file():
                raise CheckpointError(f"{path}: the stage-1 encoder of this seed is missing; the encoder "
                                      "trials must run before the stage-2 trials (rerun with --resume)")
            model = SINet(decoder=trial["decoder"], pooling=trial["pooling"])
            model.encoder.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            stage2 = _stage(cfg, "stage2", fraction, **({} if trial["boundary"] else {"boundary_weight": 0.0}))
            model, summary = train_stage(model, train, val, stage2, stage=2, **common)
        elif trial.arm == "lraspp":
            model, summary = train_stage(LRASPP(), train, val, baseline_stage(cfg), stage=2, **common)
        else:
            raise ValueError(f"unknown SINet trial arm '{trial.arm}'")
    result: dict[str, Any] = {
        "arm": trial.arm, "seed": trial.seed, "params": count_params(model),
        **evaluate_model(model, test, kernel),
        "best_epoch": summary["best_epoch"], "best_val_fg_iou": summary["best_val_fg_iou"],
        **_curves(summary["history"]),
    }
    if trial.seed == cfg.seeds[0]:
        result["figure"] = _figure_arrays(model, test, splits)
    if (trial.arm == "sinet" and trial.seed == cfg.seeds[0] and cfg.save_checkpoint and extra == "none"
            and fraction == 1):
        from reprozoo.sinet.inference import save_checkpoint

        name = f"sinet_{trial['decoder']}{'' if trial['pooling'] else '_unpooled'}.safetensors"
        save_checkpoint(tctx.workdir / name, model, mean=mean, std=std, image_size=s,
                        model_kwargs={"decoder": trial["decoder"], "pooling": trial["pooling"]},
                        synthetic=not cfg.data_root)
        result["checkpoint"] = str((tctx.workdir / name).relative_to(tctx.run_dir))
    return result
