"""``race``: many threads released at the same moment, for tests of locks and caps."""

from __future__ import annotations

import threading
from collections.abc import Callable

JOIN_TIMEOUT = 30.0


def race(attempt: Callable[[int], None], count: int) -> None:
    """Run ``attempt(0)`` … ``attempt(count - 1)`` in ``count`` threads that all start
    together (a barrier), and wait for every one of them to finish."""
    start = threading.Barrier(count)
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait(timeout=JOIN_TIMEOUT)
            attempt(index)
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a racing thread did not finish"
    assert not failures, failures[:3]
