"""The claims controller: the leader confirms, releases and collects Claim objects
(webhook/cluster/claims.py says what they hold).

Every ``interval`` while leading, one LIST of the Claims in edgewarden's namespace, and per
entry, against the watch cache:

* a pending entry whose object appeared becomes ``Held`` (naming the object when the
  admission could not: generateName);
* a held entry whose object went (deleted, or no longer holding the key or counting) is
  released; a held Count entry retires a minute after its claim, when every replica's
  cache counts its object (so a Count claim stays small);
* a pending entry whose object never appeared becomes a tombstone for the cool-down, and
  a tombstone past it goes;
* a Claim of an index or counter that no loaded policy has any more (the policy was
  removed or changed) is an orphan, and goes; so does a Claim left without entries.

Every write is a compare-and-swap on the resourceVersion read: an admission that wrote in
between wins, and the next pass looks again. Admissions judge expiry themselves, so a slow
or failing controller never lets a stale pending entry block anyone; it only leaves held
entries of deleted objects counting (conservatively) until it runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from webhook.admission.state import ServerState
from webhook.cluster.claims import ClaimBook, SweepResult, sweep

log = logging.getLogger("edgewarden.controllers")


class ClaimCollector:
    def __init__(self, state: ServerState, book: ClaimBook, *, leading: Callable[[], bool],
                 interval: float = 1.0) -> None:
        self.state = state
        self.book = book
        self.leading = leading
        self.interval = interval
        self.passes = 0
        self.last: SweepResult | None = None

    def sweep_once(self) -> SweepResult | None:
        """One pass (blocking I/O); None when the cache cannot judge yet."""
        loaded = self.state.policies
        cluster = self.state.cluster
        if loaded is None or not cluster.synced:
            return None
        engines = loaded.engines()
        result = sweep(self.book, cluster,
                       [i for engine in engines for i in engine.key_indexes()],
                       [c for engine in engines for c in engine.counters()])
        self.passes += 1
        self.last = result
        if (result.confirmed or result.released or result.expired or result.orphans
                or result.retired):
            log.info("claims: %d confirmed, %d released, %d retired, %d expired unfulfilled, "
                     "%d orphans collected", result.confirmed, result.released, result.retired,
                     result.expired, result.orphans)
        return result

    async def run(self) -> None:
        """Sweep every ``interval`` while leading, until cancelled."""
        while True:
            if self.leading():
                await asyncio.to_thread(self.sweep_once)
            with contextlib.suppress(TimeoutError):
                await asyncio.sleep(self.interval)
