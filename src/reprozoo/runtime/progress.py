"""Progress bars (rich), quiet when stdout is not a terminal or when disabled."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


def progress_enabled() -> bool:
    if os.environ.get("REPROZOO_PROGRESS", "").lower() in ("0", "false", "off"):
        return False
    return sys.stdout.isatty()


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
