"""Tables, metrics, figures and notes of the SINet experiments' reports."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from reprozoo.runtime.figures import pyplot, save_figure
from reprozoo.sinet.experiment_rules import METRIC


def mean_of(results, key="fg_iou") -> float:
    return float(np.mean([r[key] for r in results]))


def std_of(results, key="fg_iou") -> float:
    values = [r[key] for r in results]
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def rows(groups: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    table = []
    for name, results in groups.items():
        for r in results:
            table.append({"arm": name, "seed": r["seed"], "params": r["params"],
                          **{k: round(float(r[k]), 3) for k in ("fg_iou", "miou", "band_f1", "best_val_fg_iou")},
                          "best_epoch": r["best_epoch"]})
    return table


def metrics_of(groups: dict[str, list[dict[str, Any]]], prefix: dict[str, str]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for name, results in groups.items():
        p = prefix[name]
        for key in ("fg_iou", "miou", "band_f1"):
            metrics[f"{p}/{key}"] = mean_of(results, key)
        metrics[f"{p}/fg_iou_std"] = std_of(results)
        metrics[f"{p}/params"] = float(results[0]["params"])
    return metrics


def prediction_figure(ctx, columns: dict[str, dict[str, Any]], name: str) -> str:
    plt = pyplot()
    first = next(iter(columns.values()))
    images, masks = torch.as_tensor(first["images"], dtype=torch.uint8), torch.as_tensor(first["masks"])
    n = len(images)
    rows = [("image", None), ("mask", masks)] + [(k, torch.as_tensor(v["pred"])) for k, v in columns.items()]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n, 1.6 * len(rows)), squeeze=False)
    for j in range(n):
        for i, (title, data) in enumerate(rows):
            ax = axes[i, j]
            if data is None:
                ax.imshow(images[j].permute(1, 2, 0).numpy())
            else:
                ax.imshow(data[j].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(title, fontsize=8)
    return save_figure(fig, ctx.out_dir, name)


def gate_figure(ctx, arrays: dict[str, Any]) -> str:
    plt = pyplot()
    images, gate = torch.as_tensor(arrays["images"], dtype=torch.uint8), torch.as_tensor(arrays["gate"])
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.4), squeeze=False)
    im = None
    for j in range(n):
        axes[0, j].imshow(images[j].permute(1, 2, 0).numpy())
        im = axes[1, j].imshow(gate[j].numpy(), cmap="magma", vmin=0, vmax=0.5)
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[1, 0].set_ylabel("gate 1 - conf")
    fig.colorbar(im, ax=axes[1, :].tolist(), shrink=0.8)
    return save_figure(fig, ctx.out_dir, "gate_map")


def bar_figure(ctx, groups: dict[str, list[dict[str, Any]]], name: str) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.1 * len(groups) + 2, 3.2))
    for i, results in enumerate(groups.values()):
        values = [r["fg_iou"] for r in results]
        ax.bar(i, np.mean(values), color="#8fb3d9", yerr=np.std(values, ddof=1) if len(values) > 1 else 0)
        ax.scatter([i] * len(values), values, color="k", s=10, zorder=3)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(list(groups), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"{METRIC} (%)")
    low = min(r["fg_iou"] for rs in groups.values() for r in rs)
    ax.set_ylim(max(0.0, low - 5), 100)
    return save_figure(fig, ctx.out_dir, name)


def data_note(cfg) -> str:
    source = (f"EG1800 from {cfg.data_root}" if cfg.data_root else
              f"generated portraits, {cfg.n_train} train / {cfg.n_val} val / {cfg.n_test} test, hardness {cfg.hardness}")
    a = cfg.augment
    return (f"Data: {source}, at {cfg.image_size}x{cfg.image_size} px; augmentation rotation +-{a.rotation:g} deg, "
            f"scale 1+-{a.scale:g}, shift +-{a.shift:g}. Epochs: stage 1 {cfg.stage1.epochs}, stage 2 "
            f"{cfg.stage2.epochs} (lr {cfg.stage2.lr:g}, {cfg.stage2.schedule} schedule). fg_iou = the paper's per-image foreground IoU (mean over "
            "test images); miou = confusion-matrix class mean; band_f1 = foreground F1 on the ground-truth "
            "boundary band. Each model keeps its best validation epoch; the test split is used once.")


def copy_checkpoint(ctx, result: dict[str, Any]) -> None:
    """The first seed's blocking SINet becomes ``<run>/sinet.safetensors`` (the library's checkpoint
    format: ``Segmenter.from_checkpoint``, ``reprozoo segment --checkpoint``)."""
    rel = result.get("checkpoint")
    if rel:
        src = ctx.out_dir / rel
        tmp = ctx.out_dir / "sinet.safetensors.tmp"
        tmp.write_bytes(src.read_bytes())
        tmp.replace(ctx.out_dir / "sinet.safetensors")
