"""``FakeClock``: time that moves only when a test moves it.

Code under test takes its clock as a callable: ``time.time``-like (seconds since the epoch,
as the reservations, the server and the controllers read it) or ``utcnow``-like (an aware
datetime, as the certificate manager reads it). One fake serves both: call it for seconds,
pass ``clock.utc`` where a datetime is read.
"""

from __future__ import annotations

import datetime

START = 1_900_000_000.0  # 2030-03-17T17:46:40Z: far from any real certificate's dates


class FakeClock:
    """Seconds since the epoch, set by the test (``clock.now = ...``) or moved forward
    (``clock.advance(days=6)``)."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def utc(self) -> datetime.datetime:
        """The same instant as an aware UTC datetime."""
        return datetime.datetime.fromtimestamp(self.now, datetime.UTC)

    def advance(self, seconds: float = 0.0, **delta: float) -> None:
        """Move forward by ``seconds`` plus any ``datetime.timedelta`` keywords."""
        self.now += seconds + datetime.timedelta(**delta).total_seconds()
