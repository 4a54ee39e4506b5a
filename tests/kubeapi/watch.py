"""One watch stream: the events after a resourceVersion, then live ones until it ends.

Newline-delimited JSON ``{"type": ..., "object": ...}`` events. Without a resourceVersion
(or with "0") the stream starts with an ADDED event for every current object. A
resourceVersion older than the compacted history gets the ERROR event with a 410 Status
inside a 200 stream (what the real server does), or a plain HTTP 410 when the double's
``gone_as_http`` is set. BOOKMARK events only reach a client that allows them. A stream
ends at ``timeoutSeconds`` (never later than :data:`MAX_WATCH_SECONDS`), with an ERROR
event when the test expires watches, or without its final chunk when the test drops them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from .faults import Faults
from .resources import Route
from .status import gone
from .store import Event, Store

MAX_WATCH_SECONDS = 60  # every stream ends, whatever the client asks
WAKE_SECONDS = 0.5


class Stream(Protocol):
    """Where the watch writes: the HTTP handler, chunked."""

    def send(self, event_type: str, obj: Mapping[str, Any]) -> None: ...

    def end(self) -> None: ...

    def abort(self) -> None: ...


class Watch:
    def __init__(self, store: Store, faults: Faults, route: Route, params: Mapping[str, str]):
        self._store, self._faults, self._route = store, faults, route
        self._bookmarks = params.get("allowWatchBookmarks", "").lower() == "true"
        asked = int(params.get("timeoutSeconds") or MAX_WATCH_SECONDS)
        self._timeout = min(asked, MAX_WATCH_SECONDS)
        resource_version = params.get("resourceVersion") or "0"
        with store.cond:
            self._signals = faults.signals()
            self._initial: list[Event] = []
            if resource_version == "0":
                self._cursor = store.revision
                self._initial = [
                    Event(self._cursor, "ADDED", obj)
                    for obj in store.items(route.resource, route.namespace)
                ]
            else:
                self._cursor = int(resource_version)
            self._too_old = store.too_old(route.resource, self._cursor)
            self._gone = gone(f"too old resource version: {self._cursor} ({store.revision})")

    def refusal(self) -> dict[str, Any] | None:
        """The Status to answer with HTTP 410 instead of a stream, if any."""
        return self._gone if self._too_old and self._faults.gone_as_http else None

    def run(self, stream: Stream) -> None:
        if self._too_old:
            stream.send("ERROR", self._gone)
            stream.end()
            return
        self._send(stream, self._initial)
        deadline = time.monotonic() + self._timeout
        while True:
            pending, outcome = self._next(deadline)
            if outcome == "drop":
                stream.abort()
                return
            if outcome == "expire":
                code, reason = self._faults.expiry_status
                message = f"too old resource version: {self._cursor}"
                stream.send("ERROR", gone(message, code, reason))
                break
            if outcome == "timeout":
                break
            self._send(stream, pending)
        stream.end()

    def _next(self, deadline: float) -> tuple[list[Event], str]:
        """Wait for events or a fault: (events, "events" | "drop" | "expire" | "timeout")."""
        store, faults = self._store, self._faults
        with store.cond:
            while True:
                if faults.dropped_since(self._signals):
                    return [], "drop"
                if faults.expired_since(self._signals):
                    return [], "expire"
                if not faults.stalled:
                    route = self._route
                    pending = store.events_after(route.resource, self._cursor, route.namespace)
                    if pending:
                        return pending, "events"
                left = deadline - time.monotonic()
                if left <= 0:
                    return [], "timeout"
                store.cond.wait(min(left, WAKE_SECONDS))

    def _send(self, stream: Stream, events: list[Event]) -> None:
        for event in events:
            self._cursor = max(self._cursor, event.revision)
            if event.type == "BOOKMARK" and not self._bookmarks:
                continue
            stream.send(event.type, event.object)
