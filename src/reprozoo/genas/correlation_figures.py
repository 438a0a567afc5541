"""Figures of the ``genas-correlation`` experiment (:mod:`reprozoo.genas.experiment`)."""

from __future__ import annotations

import numpy as np

from reprozoo.genas.correlation import kendall
from reprozoo.runtime.figures import pyplot
from reprozoo.runtime.report import save_figure


def correlation_figures(ctx, per_seed, taus, out: list[str], *, proxies, targets) -> None:
    """Scatter of every proxy's scores against stand-alone test accuracy (first seed) and the mean
    Kendall tau per proxy and target; appends the saved files to ``out``."""
    plt = pyplot()
    first = per_seed[0]
    names = [n for n in proxies if n in first["scores"]]
    cols = 4
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        ax.scatter(first["scores"][name], first["gt"]["test"], s=12)
        ax.set_title(f"{name} (tau {kendall(first['scores'][name], first['gt']['test']):+.2f})", fontsize=9)
        ax.set_xlabel("proxy score", fontsize=8)
        ax.set_ylabel("stand-alone test acc", fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(f"proxy vs ground truth (seed {first['seed']})")
    fig.tight_layout()
    out.append(save_figure(fig, ctx.out_dir, "proxy_vs_ground_truth"))
    fig, ax = plt.subplots(figsize=(8, 3.5))
    xs = np.arange(len(names))
    for k, target in enumerate(targets):
        vals = np.array([taus[target][n] for n in names])
        ax.bar(xs + (k - 0.5) * 0.38, vals.mean(1), 0.38, yerr=vals.std(1, ddof=1) if vals.shape[1] > 1 else None,
               capsize=3, label=f"{target} acc")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(xs, names, rotation=30, ha="right")
    ax.set_ylabel("Kendall tau-b (mean ± std over seeds)")
    ax.legend()
    fig.tight_layout()
    out.append(save_figure(fig, ctx.out_dir, "kendall_tau_per_proxy"))
