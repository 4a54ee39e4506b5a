"""A progress bar for long offline work, on stderr, and only where a person watches.

Shown when stderr is an interactive terminal and the run is not in CI; never when stderr is
a pipe or a file, so CI logs and ``2> log`` stay free of bar redraws. A forced terminal
(FORCE_COLOR) does not count: that setting asks for colours, not for cursor movement. The
bar is transient: it is erased when the work is done, before the result is printed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich import progress as rich_progress

from webhook.cli.app import make_console
from webhook.offline.progress import NO_PROGRESS, Progress


def wanted() -> bool:
    if os.environ.get("CI") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


class _Bar:
    """The :class:`Progress` the scans call, drawn by rich: one line per stage."""

    def __init__(self, bar: rich_progress.Progress) -> None:
        self._bar = bar
        self._task: rich_progress.TaskID | None = None

    def begin(self, description: str, total: int | None = None) -> None:
        if self._task is not None:
            self._bar.update(self._task, visible=False)
        self._task = self._bar.add_task(description, total=total)

    def advance(self, steps: int = 1) -> None:
        if self._task is not None:
            self._bar.advance(self._task, steps)


@contextmanager
def progress(enabled: bool = True) -> Iterator[Progress]:
    """A progress sink for the ``with`` block: a bar on a watched terminal, else nothing."""
    if not (enabled and wanted()):
        yield NO_PROGRESS
        return
    bar = rich_progress.Progress(
        rich_progress.SpinnerColumn(),
        rich_progress.TextColumn("{task.description}"),
        rich_progress.BarColumn(),
        rich_progress.MofNCompleteColumn(),
        rich_progress.TimeElapsedColumn(),
        console=make_console(stderr=True),
        transient=True,
    )
    with bar:
        yield _Bar(bar)
