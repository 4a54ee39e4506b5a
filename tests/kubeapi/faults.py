"""Fault injection: refused verbs (403, 500), and watches dropped, expired or stalled.

Shares the store's condition, so an open watch wakes up the moment a fault is switched on.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .resources import Route
from .status import ApiError, forbidden

VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete"})


HANG_UP = 0  # a refusal with this code closes the connection without an answer


class HangUp(Exception):
    """Close the connection without answering (a proxy or API server dying mid-request)."""


@dataclass(frozen=True)
class Refusal:
    verb: str | None  # None: every verb
    plural: str | None  # None: every kind
    code: int
    reason: str

    def applies(self, verb: str, route: Route) -> bool:
        return self.verb in (None, verb) and self.plural in (None, route.resource.plural)


@dataclass(frozen=True)
class WatchSignals:
    """Counters an open watch compares with the ones it started with."""

    drops: int
    expiries: int


class Faults:
    def __init__(self, cond: threading.Condition) -> None:
        self._cond = cond
        self._refusals: list[Refusal] = []
        self._drops = 0
        self._expiries = 0
        self.expiry_status = (410, "Expired")
        self.stalled = False
        self.stopped = False
        self.gone_as_http = False  # a too-old watch: plain HTTP 410, not an ERROR event
        self.max_page_size: int | None = None  # pages no longer than this, whatever the limit
        # (code, reason) for each next list request that carries a continue token
        self._continue_refusals: list[tuple[int, str]] = []

    # ---- refusals ----

    def refuse(self, verb: str | None, plural: str | None, code: int, reason: str) -> None:
        if verb is not None and verb not in VERBS:
            raise ValueError(f"unknown verb {verb!r} (one of {', '.join(sorted(VERBS))})")
        with self._cond:
            self._refusals.append(Refusal(verb, plural, code, reason))

    def clear_refusals(self) -> None:
        with self._cond:
            self._refusals.clear()
            self._continue_refusals.clear()

    def check(self, verb: str, route: Route) -> None:
        """Raise the ApiError of the first refusal that applies to ``verb`` on ``route``."""
        with self._cond:
            refusal = next((r for r in self._refusals if r.applies(verb, route)), None)
        if refusal is None:
            return
        if refusal.code == HANG_UP:
            raise HangUp(verb)
        if refusal.code == 403:
            raise forbidden(verb, route)
        raise ApiError(
            refusal.code,
            refusal.reason,
            f'an error on the server ("{refusal.reason}") has prevented the request from '
            "succeeding",
        )

    def refuse_continued_lists(self, code: int, reason: str, times: int) -> None:
        with self._cond:
            self._continue_refusals.extend([(code, reason)] * times)

    def check_continued_list(self) -> None:
        """Raise the next refusal set for a list page after the first, if any is left."""
        with self._cond:
            if not self._continue_refusals:
                return
            code, reason = self._continue_refusals.pop(0)
        if code == 410:
            # What the API server says when a continue token outlived etcd's compaction.
            raise ApiError(410, reason, "The provided continue parameter is too old to "
                           "display a consistent list result. You can start a new list "
                           "without the continue parameter.")
        raise ApiError(code, reason, f'an error on the server ("{reason}") has prevented the '
                       "request from succeeding")

    # ---- watches ----

    def signals(self) -> WatchSignals:
        with self._cond:
            return WatchSignals(self._drops, self._expiries)

    def dropped_since(self, signals: WatchSignals) -> bool:
        return self.stopped or self._drops != signals.drops

    def expired_since(self, signals: WatchSignals) -> bool:
        return self._expiries != signals.expiries

    def drop_watches(self) -> None:
        with self._cond:
            self._drops += 1
            self._cond.notify_all()

    def expire_watches(self, code: int, reason: str) -> None:
        with self._cond:
            self.expiry_status = (code, reason)
            self._expiries += 1
            self._cond.notify_all()

    def stall_watches(self, stalled: bool) -> None:
        with self._cond:
            self.stalled = stalled
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify_all()
