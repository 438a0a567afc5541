"""Metrics, table and figures of experiment ``rainbow-memory`` (no verdicts here)."""

from __future__ import annotations

from typing import Any

import numpy as np

from reprozoo.rainbow.experiment_rule import ALTERNATIVES, CONTROL, METHOD
from reprozoo.rainbow.experiment_trials import LABELS, Results, data_for
from reprozoo.runtime.figures import pyplot, save_figure


def tag(backbone: str, blur: float, k: int | None = None) -> str:
    short = backbone.removeprefix("rm_").removesuffix("_digits")
    return f"{short}_B{int(round(100 * blur))}" + ("" if k is None else f"_K{k}")


def blur_name(blur: float) -> str:
    return f"Blurry{int(round(100 * blur))}" + (" (disjoint)" if blur == 0 else "")


def arm_values(res: Results, backbone: str, blur: float, k: int) -> dict[str, np.ndarray]:
    arms = [METHOD, CONTROL, *ALTERNATIVES]
    return {a: res.vals(a, backbone, blur, k) for a in arms if res.has(a, backbone, blur, k)}


def _fmt(v: np.ndarray) -> str:
    return f"{v.mean():.2f} ± {v.std(ddof=1) if v.size > 1 else 0.0:.2f}"


def metrics_and_table(cfg, res: Results, ks: list[int]) -> tuple[dict, list]:
    metrics: dict[str, float] = {}
    table: list[dict] = []
    arms = cfg.variants + cfg.context_variants
    for b in cfg.backbones:
        metrics[f"joint/acc_{tag(b, cfg.blur).split('_B')[0]}"] = float(res.vals("joint", b, None, None,
                                                                                 "joint").mean())
        for blur in [cfg.blur, *cfg.extra_blurs]:
            main = blur == cfg.blur
            for arm in arms:
                for k in (ks if main and arm != CONTROL else [cfg.headline_k]):
                    if not res.has(arm, b, blur, k):
                        continue
                    name = tag(b, blur, None if arm == CONTROL else k)
                    group = "method" if arm == METHOD else arm
                    row: dict[str, Any] = {"backbone": b, "blur": blur_name(blur), "variant": arm,
                                           "K": "-" if arm == CONTROL else k}
                    for m in ("A_last", "A_avg", "F_last", "I_last") if main else ("A_last",):
                        v = res.vals(arm, b, blur, k, m)
                        metrics[f"{group}/{m}_{name}"] = float(v.mean())
                        row[m] = _fmt(v)
                    table.append(row)
            rows = res.get(METHOD, b, blur, cfg.headline_k)
            metrics[f"scenario/foreign_share_{tag(b, blur)}"] = float(np.mean([np.mean(r["foreign_share"])
                                                                              for r in rows]))
    return metrics, table


def figures(cfg, res: Results, ks: list[int], ctx) -> list[str]:
    plt = pyplot()
    paths = []
    b0, k0, hb = cfg.blur, cfg.headline_k, cfg.headline_backbone
    arms = cfg.variants + cfg.context_variants
    # 1. accuracy after each task, per arm: one panel per (backbone, K) at the main blur
    panels = [(b, k) for b in cfg.backbones for k in ks]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, (b, k) in zip(axes[0], panels):
        for arm in arms:
            if not res.has(arm, b, b0, k):
                continue
            acc = np.asarray([r["task_acc"] for r in res.get(arm, b, b0, k)]) * 100
            t = np.arange(1, acc.shape[1] + 1)
            ax.plot(t, acc.mean(0), marker="o", label=LABELS[arm])
            ax.fill_between(t, acc.mean(0) - acc.std(0), acc.mean(0) + acc.std(0), alpha=0.15)
        ax.set(title=f"{b}, K={k}", xlabel="after task", ylabel="test accuracy (%)", xticks=t)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    paths.append(save_figure(fig, ctx.out_dir, "accuracy_per_task"))
    # 2. final memory, samples per class (headline backbone, smallest K), RM vs ER vs class-balanced random
    fig, ax = plt.subplots(figsize=(6, 3.2))
    shown = [a for a in (METHOD, "er", "balanced") if res.has(a, hb, b0, k0)]
    width = 0.8 / len(shown)
    for i, arm in enumerate(shown):
        h = np.mean([r["memory_hist"] for r in res.get(arm, hb, b0, k0)], axis=0)
        ax.bar(np.arange(len(h)) + (i - (len(shown) - 1) / 2) * width, h, width, label=LABELS[arm])
    ax.set(title=f"final memory per class ({hb}, K={k0}, mean over seeds)", xlabel="class (task order)",
           ylabel="samples")
    ax.legend(fontsize=7)
    paths.append(save_figure(fig, ctx.out_dir, "memory_class_histogram"))
    # 3. certain-to-uncertain samples RM keeps (first seed, largest K, headline backbone)
    first = res.get(METHOD, hb, b0, ks[-1])[0]
    kept = first.get("kept")
    if kept and cfg.dataset == "digits":
        seed = cfg.seeds[0]
        data = data_for(cfg.dataset, cfg.data_root, seed, cfg.image_size)
        labels, keys, u = np.asarray(kept["labels"]), np.asarray(kept["keys"]), np.asarray(kept["u"])
        classes = np.unique(labels)
        per = max(int(np.sum(labels == c)) for c in classes)
        fig, axes = plt.subplots(len(classes), per, figsize=(1.1 * per, 1.15 * len(classes)), squeeze=False)
        for row, c in zip(axes, classes):
            idx = np.flatnonzero(labels == c)
            idx = idx[np.argsort(u[idx], kind="stable")]
            for j, ax in enumerate(row):
                ax.axis("off")
                if j < len(idx):
                    img = data.x_train[keys[idx[j]]].float()
                    ax.imshow(img.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray_r")
                    ax.set_title(f"c{c} u={u[idx[j]]:.2f}", fontsize=6)
        fig.suptitle(f"RM memory ({hb}, K={ks[-1]}, seed {seed}): certain -> uncertain", fontsize=8)
        paths.append(save_figure(fig, ctx.out_dir, "rm_kept_samples"))
    # 4. A_last per blur level and arm (smallest K), one panel per backbone
    blurs = sorted([b0, *cfg.extra_blurs])
    fig, axes = plt.subplots(1, len(cfg.backbones), figsize=(5.2 * len(cfg.backbones), 3.4), squeeze=False)
    for ax, b in zip(axes[0], cfg.backbones):
        shown = [a for a in arms if all(res.has(a, b, bl, k0) for bl in blurs)]
        width = 0.8 / max(1, len(shown))
        for i, arm in enumerate(shown):
            means = [res.vals(arm, b, bl, k0).mean() for bl in blurs]
            stds = [res.vals(arm, b, bl, k0).std() for bl in blurs]
            ax.bar(np.arange(len(blurs)) + (i - (len(shown) - 1) / 2) * width, means, width, yerr=stds,
                   label=LABELS[arm], capsize=2)
        ax.set_xticks(range(len(blurs)), [blur_name(bl).split(" ")[0] for bl in blurs])
        ax.set(title=f"{b}, K={k0}", ylabel="A_last (%)")
        ax.grid(alpha=0.3, axis="y")
    axes[0][-1].legend(fontsize=6)
    paths.append(save_figure(fig, ctx.out_dir, "a_last_per_blur"))
    # 5. paired gaps per seed: RM - ER and RM - class-balanced random, per backbone and K
    groups, labels = [], []
    for b in cfg.backbones:
        for k in ks:
            for other in ("er", "balanced"):
                if res.has(other, b, b0, k):
                    groups.append(res.vals(METHOD, b, b0, k) - res.vals(other, b, b0, k))
                    labels.append(f"{tag(b, b0).split('_B')[0]} K{k}\nRM-{other}")
    fig, ax = plt.subplots(figsize=(1.1 * len(groups) + 1, 3.2))
    ax.boxplot(groups, positions=range(len(groups)))
    ax.set_xticks(range(len(groups)), labels, fontsize=7)
    ax.axhline(0, color="k", lw=0.8)
    ax.set(ylabel="A_last gap (points)", title=f"paired gaps per seed ({blur_name(b0)})")
    paths.append(save_figure(fig, ctx.out_dir, "paired_gaps"))
    return paths


