"""What ``serve`` runs beside the webhook: one record per background task, produced by the
parts that own the work (webhook/serve, webhook/controllers) and run by the supervisor."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BackgroundWork:
    """A task ``serve`` runs beside the webhook under its supervisor (webhook/serve)."""

    name: str
    run: Callable[[], Coroutine[Any, Any, None]]
    # How long it may keep failing before /readyz says not ready; None: its failure never
    # makes an answer wrong (reports, statuses), so it never makes the pod unready.
    unready_after: float | None = None
