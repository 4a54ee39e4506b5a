"""Counting every connection refused or cut by a connection limit (webhook/admission/
listener.py, http_protocol.py), and logging them without flooding the log."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("edgewarden.server")


@dataclass
class _Tally:
    last_logged: float
    suppressed: int = 0


class RefusalLog:
    """Counts every limit hit (``count(limit)``) and logs at most one line per limit per
    ``interval``, saying how many went unlogged in between."""

    def __init__(self, count: Callable[[str], None], interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._count = count
        self._interval = interval
        self._clock = clock
        self._tallies: dict[str, _Tally] = {}

    def hit(self, limit: str, peer: str, detail: str = "") -> None:
        self._count(limit)
        now = self._clock()
        tally = self._tallies.get(limit)
        if tally is not None and now - tally.last_logged < self._interval:
            tally.suppressed += 1
            return
        more = (f"; {tally.suppressed} more since the last report"
                if tally is not None and tally.suppressed else "")
        log.warning("connection limit hit: %s (%s%s)%s", limit, peer,
                    f", {detail}" if detail else "", more)
        self._tallies[limit] = _Tally(now)
