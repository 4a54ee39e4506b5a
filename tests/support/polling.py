"""``eventually``: poll a check until it holds, instead of sleeping for a guessed time.

The check is called at once and then every ``interval`` seconds; the first truthy value it
returns is returned. An exception the check raises (an ``assert`` inside it, say) ends the
wait at once: that is how a check reports a failure that no amount of waiting will fix.
``timeout`` only bounds a test that would otherwise hang; it is never an expectation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
Description = str | Callable[[], str]

TIMEOUT = 10.0
INTERVAL = 0.01


class TimedOut(AssertionError):
    """The check did not hold within the timeout."""


class _Attempts(Generic[T]):
    """Iterates once per attempt that fails, so the caller can wait in between; raises
    :class:`TimedOut` once the time is up; afterwards ``value`` holds what the check gave."""

    def __init__(self, check: Callable[[], T], timeout: float, what: Description) -> None:
        self._check = check
        self._timeout = timeout
        self._what = what

    def __iter__(self) -> Iterator[None]:
        deadline = time.monotonic() + self._timeout
        while not (value := self._check()):
            if time.monotonic() >= deadline:
                what = self._what() if callable(self._what) else self._what
                raise TimedOut(
                    f"timed out after {self._timeout:g}s waiting for {what or self._check}"
                    f" (last value: {value!r})"
                )
            yield
        self.value = value


def eventually(
    check: Callable[[], T],
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    what: Description = "",
) -> T:
    """The first truthy value of ``check()``; :class:`TimedOut` after ``timeout`` seconds."""
    for _ in (attempts := _Attempts(check, timeout, what)):
        time.sleep(interval)
    return attempts.value


async def eventually_async(
    check: Callable[[], T],
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    what: Description = "",
) -> T:
    """:func:`eventually` inside an event loop: the loop keeps running between attempts."""
    for _ in (attempts := _Attempts(check, timeout, what)):
        await asyncio.sleep(interval)
    return attempts.value
