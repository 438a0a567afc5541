"""The one place that picks matplotlib's backend: non-interactive (Agg), so figures render
on servers and in worker processes. Method packages call :func:`pyplot` and :func:`save_figure`."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot():
    """``matplotlib.pyplot`` with the non-interactive Agg backend (chosen once, here)."""
    import matplotlib

    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, out_dir: str | Path, name: str, dpi: int = 130) -> str:
    """Save a matplotlib figure as ``<out_dir>/figures/<name>.png``; returns the relative path."""
    plt = pyplot()
    path = Path(out_dir) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return str(path.relative_to(out_dir))
