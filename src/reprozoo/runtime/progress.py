"""Progress: a bar (rich) on a terminal; one plain line per finished trial otherwise.

``REPROZOO_PROGRESS`` chooses: unset (the default) means a bar when stdout is a terminal and
plain lines on stderr when it is not (a log file, a pipe, a batch job); ``lines`` means plain lines
always; ``0`` / ``false`` / ``off`` means neither. Plain lines go to **stderr**, so stdout keeps only
a command's results; each is flushed at once, e.g. ``[12/40] rm seed3 done in 4.1 s``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


_OFF = ("0", "false", "off", "no")


def progress_enabled() -> bool:
    """Whether progress bars are shown (stdout is a terminal and progress is not turned off)."""
    if os.environ.get("REPROZOO_PROGRESS", "").lower() in _OFF + ("lines",):
        return False
    return sys.stdout.isatty()


def lines_enabled(progress: bool | None = None) -> bool:
    """Whether to print one plain line per finished unit of work (a trial, an experiment of
    ``run all``): when no bar is shown and progress is not turned off. ``progress`` is a caller's
    explicit choice for the bar (``False`` turns the lines off too)."""
    env = os.environ.get("REPROZOO_PROGRESS", "").lower()
    if env == "lines":
        return progress is not False
    if progress is not None or env in _OFF:
        return False
    return not sys.stdout.isatty()


def log_line(text: str) -> None:
    """Print one plain progress line to stderr, flushed at once."""
    print(text, file=sys.stderr, flush=True)


def fmt_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes} min {sec:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


class _Bar:
    def __init__(self, progress, task):
        self._progress, self._task = progress, task

    def update(self, advance: float = 1, **fields) -> None:
        if self._progress is not None:
            desc = fields.pop("description", None)
            kw = {"description": desc} if desc else {}
            self._progress.update(self._task, advance=advance, **kw)


@contextmanager
def progress_bar(total: int | None, description: str, enabled: bool | None = None):
    """``with progress_bar(n, "epoch 1") as bar: bar.update()``; a no-op when quiet."""
    if enabled is None:
        enabled = progress_enabled()
    if not enabled:
        yield _Bar(None, None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        transient=True,
    ) as prog:
        yield _Bar(prog, prog.add_task(description, total=total))


def track(items: Iterable[T], description: str = "", total: int | None = None,
          enabled: bool | None = None) -> Iterator[T]:
    """Iterate with a progress bar."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress_bar(total, description, enabled) as bar:
        for item in items:
            yield item
            bar.update()
