"""Exponential backoff with jitter, shared by the watch loops and the task supervisor."""

from __future__ import annotations

import random


def backoff_delay(failures: int, initial: float, maximum: float) -> float:
    """The wait before attempt ``failures + 1``: doubling from ``initial`` up to ``maximum``,
    with jitter, so many replicas do not retry in lockstep."""
    ceiling = min(maximum, initial * (2.0 ** max(0, failures - 1)))
    return ceiling * random.uniform(0.5, 1.0)
