"""How long offline work reports how far it got, without knowing who is watching.

The scans call a :class:`Progress` they are given; the CLI passes a progress bar on an
interactive terminal and :data:`NO_PROGRESS` everywhere else, so pipes, files and CI logs
never see a bar and the scans never touch a terminal themselves.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def begin(self, description: str, total: int | None = None) -> None:
        """A new stage of ``total`` steps (None: unknown, e.g. reading a file)."""

    def advance(self, steps: int = 1) -> None:
        """``steps`` more of the current stage are done."""


class _NoProgress:
    def begin(self, description: str, total: int | None = None) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass


NO_PROGRESS: Progress = _NoProgress()
