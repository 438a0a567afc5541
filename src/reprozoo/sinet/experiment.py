"""Experiment ``sinet-portrait``: SINet vs LR-ASPP MobileNetV3 on generated portraits, plus the
parameter-identical ablations (blocking gate / plain skip / no skip; boundary term on / off).

Per seed: stage 1 (encoder, 1/8 labels) is trained once and shared by the three decoder variants
(they differ only in stage 2); the boundary-off variant uses the same stage-1 encoder and drops
the boundary term in stage 2. LR-ASPP gets stage-1 + stage-2 epochs at full resolution with the
same loss, optimiser recipe, augmentation and data. Every model keeps its best *validation* epoch;
numbers are measured once on the test split.

Claims, decided by rules fixed here before any number exists:
1. SINet's mean per-image foreground IoU (test) is within ``margin`` IoU points of LR-ASPP's
   (the paper: SINet is within ~1 point of PortraitNet at 1/24 of its parameters);
2. the information blocking decoder is at least as good as the plain skip: its mean IoU is no more
   than ``decoder_tolerance`` points below the plain skip's.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from reprozoo.errors import ConfigError
from reprozoo.runtime.config import ExperimentConfig
from reprozoo.runtime.profile import count_params
from reprozoo.runtime.registry import register_experiment
from reprozoo.runtime.report import ExperimentResult, save_figure
from reprozoo.runtime.seeding import seed_everything
from reprozoo.runtime.verdict import combine, within_margin
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
from reprozoo.sinet.inference import save_checkpoint
from reprozoo.sinet.losses import band_kernel, class_weights
from reprozoo.sinet.models import SINet, SINetEncoder
from reprozoo.sinet.training import StageConfig, evaluate_model, train_stage

ABLATIONS = ("plain", "none", "no_boundary")
EXTRA_DATA = ("none", "naive", "crop")
CLAIM = ("SINet (86.9K params) segments portraits within a small IoU margin of a >30x larger mobile "
         "segmenter, and its information blocking decoder is at least as good as a plain skip")


@dataclass
class SINetPortraitConfig(ExperimentConfig):
    image_size: int = 224  # must be a multiple of 32
    n_train: int = 1500
    n_val: int = 300
    n_test: int = 300
    hardness: float = 0.5
    data_seed: int = 0
    stage1: StageConfig = field(default_factory=lambda: StageConfig(epochs=300, batch_size=36))
    stage2: StageConfig = field(default_factory=lambda: StageConfig(epochs=300, batch_size=24))
    baseline_epochs: int = 0  # 0 = stage1.epochs + stage2.epochs
    ablations: list[str] = field(default_factory=lambda: list(ABLATIONS))
    margin: float = 2.0  # IoU points (claim 1)
    decoder_tolerance: float = 0.5  # IoU points (claim 2)
    extra_data: str = "none"  # none | naive | crop: add n_extra full-body scenes (resized, or portrait crops)
    n_extra: int = 0
    workers: int = 1  # seeds trained in parallel processes (1 torch thread each when > 1)
    save_checkpoint: bool = True

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"image_size": 64, "n_train": 16, "n_val": 8, "n_test": 8, "seeds": [0],
                  "stage1": {"epochs": 1, "batch_size": 8}, "stage2": {"epochs": 1, "batch_size": 8},
                  "ablations": ["plain"], "save_checkpoint": True},
        # quick: 96 px, 128 training images; lr 2e-3 (4x the paper's) for the short schedule, same for
        # both models; one process per seed (1 torch thread each)
        "quick": {"image_size": 96, "n_train": 128, "n_val": 48, "n_test": 96, "seeds": [0, 1, 2],
                  "stage1": {"epochs": 5, "batch_size": 16, "lr": 2e-3},
                  "stage2": {"epochs": 7, "batch_size": 16, "lr": 2e-3}, "workers": 3},
        "paper": {"image_size": 224, "n_train": 1500, "n_val": 300, "n_test": 300, "seeds": [0, 1, 2]},
    }

    def validate(self) -> None:
        if self.image_size < 32 or self.image_size % 32:
            raise ConfigError(f"image_size must be a multiple of 32 (>= 32), got {self.image_size}")
        if min(self.n_train, self.n_val, self.n_test) < 1:
            raise ConfigError("n_train, n_val and n_test must be >= 1")
        bad = [a for a in self.ablations if a not in ABLATIONS]
        if bad:
            raise ConfigError(f"unknown ablation '{bad[0]}'; choose from {', '.join(ABLATIONS)}")
        if self.baseline_epochs < 0:
            raise ConfigError(f"baseline_epochs must be >= 0 (0 = stage1 + stage2 epochs), got {self.baseline_epochs}")
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.extra_data not in EXTRA_DATA:
            raise ConfigError(f"extra_data must be one of {', '.join(EXTRA_DATA)}, got '{self.extra_data}'")
        if self.extra_data != "none" and self.n_extra < 1:
            raise ConfigError("extra_data needs n_extra >= 1 full-body scenes")
        if not 0.0 <= self.hardness <= 1.0:
            raise ConfigError(f"hardness must be in [0, 1], got {self.hardness}")
        self.stage1.validate()
        self.stage2.validate()


def _splits(cfg: SINetPortraitConfig):
    """EG1800 from ``data_root`` when given (``--set data_root=/path/EG1800``), else generated portraits."""
    if cfg.data_root:
        return eg1800_splits(cfg.data_root, cfg.image_size, seed=cfg.data_seed)
    return portrait_splits(cfg.n_train, cfg.n_val, cfg.n_test, cfg.image_size, cfg.data_seed, cfg.hardness)


def _datasets(cfg: SINetPortraitConfig):
    splits = _splits(cfg)
    s = cfg.image_size
    images, masks = splits.train.images, splits.train.masks
    if cfg.extra_data != "none":  # the paper's data-creation trick on generated full-body scenes
        scenes = cached_portraits(cfg.n_extra, 2 * s, cfg.data_seed, "full_body", cfg.hardness, start=3_000_000)
        if cfg.extra_data == "crop":
            extra = portrait_crops(scenes, s, seed=cfg.data_seed)
            extra_images, extra_masks = extra.images, extra.masks
        else:
            extra_images = F.interpolate(scenes.images.float(), size=(s, s), mode="bilinear",
                                         antialias=True).round().to(torch.uint8)
            extra_masks = F.interpolate(scenes.masks[:, None].float(), size=(s, s), mode="nearest")[:, 0]
            extra_masks = extra_masks.to(torch.uint8)
        images, masks = torch.cat([images, extra_images]), torch.cat([masks, extra_masks])
    mean, std = mean_std(images)
    train = SegDataset(images, masks, train_transform(s, mean, std))
    val = SegDataset(splits.val.images, splits.val.masks, eval_transform(s, mean, std))
    test = SegDataset(splits.test.images, splits.test.masks, eval_transform(s, mean, std))
    weight = class_weights(masks)
    return train, val, test, weight, (mean, std), splits


def _run_seed(cfg: SINetPortraitConfig, seed: int, out_dir: str, resume: bool, progress: bool | None,
              threads: int) -> dict[str, Any]:
    """Everything one seed trains; returns result rows and a few arrays for the figures."""
    if threads:
        torch.set_num_threads(threads)
    out = Path(out_dir) / f"seed{seed}"
    train, val, test, weight, (mean, std), splits = _datasets(cfg)
    s = cfg.image_size
    kernel = band_kernel(s, 15, 224)
    common = dict(weight=weight, image_size=s, seed=seed, device=cfg.device, resume=resume, progress=progress)
    rows: list[dict[str, Any]] = []

    seed_everything(seed)
    encoder, s1 = train_stage(SINetEncoder(), train, val, cfg.stage1, stage=1, out_dir=out / "stage1", **common)
    variants = ["blocking", *cfg.ablations]
    models: dict[str, torch.nn.Module] = {}
    for variant in variants:
        stage2 = cfg.stage2
        decoder = variant if variant in ("plain", "none") else "blocking"
        if variant == "no_boundary":
            stage2 = StageConfig(**{**stage2.__dict__, "boundary_weight": 0.0})
        seed_everything(seed + 1)
        model = SINet(decoder=decoder)
        model.encoder.load_state_dict(encoder.state_dict())
        model, s2 = train_stage(model, train, val, stage2, stage=2, out_dir=out / f"stage2_{variant}", **common)
        models[variant] = model
        rows.append({"model": "SINet", "variant": variant, "seed": seed, "params": count_params(model),
                     **evaluate_model(model, test, kernel), "best_epoch": s2["best_epoch"],
                     "best_val_fg_iou": s2["best_val_fg_iou"]})

    seed_everything(seed + 2)
    base_cfg = StageConfig(**{**cfg.stage2.__dict__,
                              "epochs": cfg.baseline_epochs or cfg.stage1.epochs + cfg.stage2.epochs})
    baseline, sb = train_stage(LRASPP(), train, val, base_cfg, stage=2, out_dir=out / "lraspp", **common)
    rows.append({"model": "LR-ASPP MobileNetV3", "variant": "baseline", "seed": seed,
                 "params": count_params(baseline), **evaluate_model(baseline, test, kernel),
                 "best_epoch": sb["best_epoch"], "best_val_fg_iou": sb["best_val_fg_iou"]})

    result: dict[str, Any] = {"rows": rows}
    if seed == cfg.seeds[0]:  # arrays for the figures and the released checkpoint
        n_fig = min(6, len(test))
        result["images"], result["masks"] = splits.test.images[:n_fig].clone(), splits.test.masks[:n_fig].clone()
        x = torch.stack([test[i][0] for i in range(n_fig)])
        with torch.no_grad():
            logits, gate = models["blocking"].forward_with_gate(x)
            result["pred_sinet"] = logits.argmax(1).to(torch.uint8)
            result["gate"] = gate[:, 0]
            result["pred_baseline"] = baseline(x).argmax(1).to(torch.uint8)
        if cfg.save_checkpoint:
            save_checkpoint(Path(out_dir) / "sinet.pt", models["blocking"], mean=mean, std=std, image_size=s)
    return result


def _run_all(cfg: SINetPortraitConfig, ctx) -> list[dict[str, Any]]:
    args = [(cfg, seed, str(ctx.out_dir), ctx.resume, ctx.progress) for seed in cfg.seeds]
    if cfg.workers <= 1 or len(cfg.seeds) == 1:
        return [_run_seed(*a, threads=0) for a in args]
    _datasets(cfg)  # build the data cache once, before the workers read it
    with cf.ProcessPoolExecutor(min(cfg.workers, len(cfg.seeds)), mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_run_seed, *a, threads=1) for a in args]
        return [f.result() for f in futures]


def _figures(cfg: SINetPortraitConfig, ctx, first: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images, masks = first["images"], first["masks"]  # the test split's first images, raw uint8
    n = len(first["pred_sinet"])
    rows = [("image", None), ("mask", None), ("SINet", "pred_sinet"), ("LR-ASPP", "pred_baseline")]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n, 1.6 * len(rows)), squeeze=False)
    for j in range(n):
        for i, (title, key) in enumerate(rows):
            ax = axes[i, j]
            if title == "image":
                ax.imshow(images[j].permute(1, 2, 0).numpy())
            elif title == "mask":
                ax.imshow(masks[j].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(first[key][j].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(title)
    figs = [save_figure(fig, ctx.out_dir, "predictions")]
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.4), squeeze=False)
    for j in range(n):
        axes[0, j].imshow(images[j].permute(1, 2, 0).numpy())
        im = axes[1, j].imshow(first["gate"][j].numpy(), cmap="magma", vmin=0, vmax=0.5)
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[1, 0].set_ylabel("gate 1 - conf")
    fig.colorbar(im, ax=axes[1, :].tolist(), shrink=0.8)
    figs.append(save_figure(fig, ctx.out_dir, "gate_map"))
    return figs


def _by(rows, variant: str, key: str = "fg_iou") -> list[float]:
    return [r[key] for r in rows if r["variant"] == variant]


@register_experiment("sinet-portrait", paper="Park et al., SINet: Extreme Lightweight Portrait Segmentation "
                     "Networks with Spatial Squeeze Modules and Information Blocking Decoder (WACV 2020)",
                     claim=CLAIM, config=SINetPortraitConfig)
def run(cfg: SINetPortraitConfig, ctx) -> ExperimentResult:
    results = _run_all(cfg, ctx)
    rows = [r for res in results for r in res["rows"]]
    sinet_iou, base_iou = _by(rows, "blocking"), _by(rows, "baseline")
    claims = []
    v1, e1 = within_margin(sinet_iou, base_iou, margin=cfg.margin, min_seeds=2,
                           name="test per-image fg IoU, SINet vs LR-ASPP")
    claims.append({"claim": f"SINet within {cfg.margin} IoU points of LR-ASPP MobileNetV3", "verdict": v1,
                   "evidence": e1})
    if "plain" in cfg.ablations:
        v2, e2 = within_margin(sinet_iou, _by(rows, "plain"), margin=cfg.decoder_tolerance, min_seeds=2,
                               name="test per-image fg IoU, blocking vs plain skip")
        claims.append({"claim": f"blocking decoder >= plain skip (tolerance {cfg.decoder_tolerance} points)",
                       "verdict": v2, "evidence": e2})
    verdict = combine([c["verdict"] for c in claims])
    evidence = "; ".join(c["evidence"] for c in claims)

    metrics: dict[str, float] = {}
    for key in ("fg_iou", "miou", "band_f1"):
        metrics[f"method/{key}"] = float(np.mean(_by(rows, "blocking", key)))
        metrics[f"baseline/{key}"] = float(np.mean(_by(rows, "baseline", key)))
        for variant in cfg.ablations:
            metrics[f"ablation_{variant}/{key}"] = float(np.mean(_by(rows, variant, key)))
    metrics["method/params"] = float(_by(rows, "blocking", "params")[0])
    metrics["baseline/params"] = float(_by(rows, "baseline", "params")[0])
    metrics["method/fg_iou_std"] = float(np.std(sinet_iou))
    metrics["baseline/fg_iou_std"] = float(np.std(base_iou))

    source = (f"EG1800 from {cfg.data_root}" if cfg.data_root else
              f"generated portraits, {cfg.n_train} train / {cfg.n_val} val / {cfg.n_test} test, hardness {cfg.hardness}")
    notes = [f"Data: {source}, at {cfg.image_size}x{cfg.image_size} px. Epochs: stage 1 {cfg.stage1.epochs}, "
             f"stage 2 {cfg.stage2.epochs}, LR-ASPP {cfg.baseline_epochs or cfg.stage1.epochs + cfg.stage2.epochs}. "
             "fg_iou = the paper's per-image foreground IoU (mean over test images); miou = confusion-matrix "
             "class mean; band_f1 = foreground F1 on the ground-truth boundary band. Best epoch chosen on val."]
    for variant in cfg.ablations:
        for key in ("fg_iou", "band_f1"):
            diff = float(np.mean(_by(rows, "blocking", key)) - np.mean(_by(rows, variant, key)))
            sd = float(np.std(_by(rows, "blocking", key)))
            sig = "larger" if abs(diff) > 2 * sd and len(cfg.seeds) > 1 else "not larger"
            notes.append(f"Ablation {variant}: blocking/boundary-on minus {variant} {key} = {diff:+.2f} points, "
                         f"{sig} than 2x the seed std ({2 * sd:.2f}).")
    figures = _figures(cfg, ctx, results[0])
    table = [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]
    return ExperimentResult(verdict, evidence, metrics, claims=claims, table=table, figures=figures,
                            notes="\n\n".join(notes))
