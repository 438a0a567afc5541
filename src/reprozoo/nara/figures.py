"""The ``nara`` experiment's figures: speed vs quality per task, digit samples, sine samples."""

from __future__ import annotations

import numpy as np
import torch

from reprozoo.nara.evaluation import CONTROL, NLL_MARGIN
from reprozoo.runtime.report import save_figure


def figures(ctx, per_task: dict[str, list[dict]]) -> list[str]:
    import matplotlib.ticker

    from reprozoo.runtime.figures import pyplot

    plt = pyplot()
    figs = []
    fig, axes = plt.subplots(1, len(per_task), figsize=(5.5 * len(per_task), 4), squeeze=False)
    styles = {"sequential": "ks", "jacobi": "bo", "jacobi+prior": "c^", "tolerance": "g.-", "nara": "r.-",
              CONTROL: "mx:"}
    for ax, (name, evs) in zip(axes[0], per_task.items()):
        rows = evs[0]["rows"]["val"]  # every setting runs on the validation draw
        for fam, style in styles.items():
            pts = [r for r in rows if r["family"] == fam]
            if pts:
                ax.plot([r["calls"] for r in pts], [100 * r["nll_gap"] for r in pts], style, label=fam)
                if fam in ("nara", "tolerance"):
                    for r in pts:
                        ax.annotate(r["setting"].split("=")[1], (r["calls"], 100 * r["nll_gap"]), fontsize=7)
        ax.axhspan(-100 * NLL_MARGIN, 100 * NLL_MARGIN, color="0.9", zorder=0)
        calls = [r["calls"] for r in rows]
        if max(calls) > 4 * max(min(calls), 1e-9):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.set_xticks([t for t in (1, 2, 4, 8, 16, 32, 64, 128, 256) if min(calls) / 2 <= t <= 2 * max(calls)])
        ax.set_xlabel("AR calls per sample")
        ax.set_ylabel("sample NLL gap vs sequential (%)")
        ax.set_title(f"{name}: speed vs quality (validation noise, first seed)")
        ax.legend(fontsize=8)
    figs.append(save_figure(fig, ctx.out_dir, "speed_quality"))
    if "digits" in per_task:
        smp = per_task["digits"][0]["samples"]
        fig, axes = plt.subplots(1, len(smp), figsize=(2.4 * len(smp), 2.9), squeeze=False)
        for ax, (key, x) in zip(axes[0], smp.items()):
            x = torch.tensor(x)
            tiles = torch.nn.functional.pad(x.view(-1, 8, 8), (1, 1, 1, 1), value=0.25)
            k = int(np.sqrt(len(tiles)))
            grid = tiles[: k * k].view(k, k, 10, 10).permute(0, 2, 1, 3).reshape(10 * k, 10 * k)
            ax.imshow(grid.numpy(), cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(key.replace("|", " "), fontsize=7)
            ax.axis("off")
        figs.append(save_figure(fig, ctx.out_dir, "digits_samples"))
    if "sine" in per_task:
        ev = per_task["sine"][0]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3), sharey=True)
        for i, ax in enumerate(axes):
            for key, x in ev["samples"].items():
                if i < len(x):
                    ax.plot(x[i], lw=1, label=key.replace("|", " "))
            ax.axvline(ev["start"] - 0.5, color="0.5", ls=":")
        axes[0].legend(fontsize=6)
        figs.append(save_figure(fig, ctx.out_dir, "sine_samples"))
    return figs
