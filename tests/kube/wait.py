"""Waiting for a condition with a deadline, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(condition: Callable[[], T], what: str, timeout: float, *, interval: float = 0.1,
          check: Callable[[], None] | None = None) -> T:
    """Poll ``condition`` until it returns something truthy and return that.

    ``check`` runs before each poll and may raise at once (e.g. the process we wait for
    has exited) rather than let the wait run into its deadline."""
    deadline = time.monotonic() + timeout
    while True:
        if check is not None:
            check()
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"waited {timeout:.0f}s for {what}")
        time.sleep(interval)
