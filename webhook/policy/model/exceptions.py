"""PolicyExceptions: a named, ticketed, expiring permission for a few objects to break a policy.

An exception lives in one namespace, names the policies it exempts from, and matches objects
there by name, by label selector, or both (then an object must satisfy both). It never
hides anything: the engine still evaluates the policy, and when the policy would deny, warn,
audit or patch an object the exception covers, the decision says so (see
:class:`~webhook.policy.model.decision.Exemption`) instead of acting.

Expiry is judged against the time the request is judged at (``AdmissionRequest.judged_at``,
set by whoever builds the request: the HTTP layer from its clock, ``check``/``audit``/``test``
from theirs). An exception is active strictly before its ``expiresAt``; at that instant and
after it is expired, and ignored everywhere. A request that carries no time honours only
exceptions without an expiry: an exception is never stretched past its date by a caller that
forgot the clock.

Exceptions are closed by default: the loader refuses what is wrong with one document (no
``expiresAt``, a selector that matches everything), and the rules of ``exception_rules``
decide where and for how long any may be honoured.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from webhook.policy.model.location import SourceLocation
from webhook.policy.model.selectors import LabelSelector

# Reports list exceptions expiring within this window apart from the others.
EXPIRING_SOON_SECONDS = 14 * 86400


class ExceptionState(StrEnum):
    ACTIVE = "active"
    EXPIRING = "expiring"  # active, and expires within EXPIRING_SOON_SECONDS
    EXPIRED = "expired"  # ignored everywhere
    NO_EXPIRY = "no-expiry"  # active, and flagged: an exception should end


@dataclass(frozen=True, slots=True)
class PolicyException:
    name: str
    namespace: str
    policies: frozenset[str]
    names: frozenset[str] = frozenset()
    selector: LabelSelector | None = None
    kinds: frozenset[str] = frozenset()  # empty: every kind the policies match
    expires_at: float | None = None  # Unix time; None: never (flagged in reports)
    ticket: str = ""
    reason: str = ""
    approved_by: str = ""
    # metadata.creationTimestamp of a cluster object (Unix time), set by the API server; a
    # file has none, and its lifetime is counted from the instant judged instead.
    created_at: float | None = None
    source: SourceLocation = field(default_factory=lambda: SourceLocation("<memory>"))

    @property
    def ref(self) -> str:
        """``namespace/name``, as kubectl names a namespaced object."""
        return f"{self.namespace}/{self.name}"

    @property
    def expires(self) -> str:
        """The expiry as RFC 3339 (UTC), or ``never``."""
        return "never" if self.expires_at is None else rfc3339(self.expires_at)

    def active_at(self, at: float | None) -> bool:
        if self.expires_at is None:
            return True
        return at is not None and at < self.expires_at

    def state_at(self, at: float) -> ExceptionState:
        if self.expires_at is None:
            return ExceptionState.NO_EXPIRY
        if at >= self.expires_at:
            return ExceptionState.EXPIRED
        if self.expires_at - at <= EXPIRING_SOON_SECONDS:
            return ExceptionState.EXPIRING
        return ExceptionState.ACTIVE

    def covers(self, kind: str, name: str, labels: Mapping[str, str] | None) -> bool:
        """Whether the object (already known to be in this namespace) is one it exempts."""
        if self.kinds and kind not in self.kinds:
            return False
        if self.names and name not in self.names:
            return False
        return self.selector is None or self.selector.matches(labels)

    def describe(self) -> str:
        """One line for a warning or a log: which exception, its ticket and its expiry."""
        ticket = f"ticket {self.ticket}, " if self.ticket else ""
        return f"PolicyException {self.ref} ({ticket}expires {self.expires})"


class ExceptionSet:
    """Exceptions indexed by (namespace, policy): what the engine asks is one dict lookup.

    Immutable once built; a source that changes (the watch cache) builds a new set and
    swaps it in, so a request judged concurrently sees one set or the other, whole.
    """

    __slots__ = ("_all", "_index")

    def __init__(self, exceptions: Iterable[PolicyException] = ()) -> None:
        self._all = tuple(sorted(exceptions, key=lambda e: (e.namespace, e.name, e.source.file)))
        index: dict[tuple[str, str], list[PolicyException]] = {}
        for exception in self._all:
            for policy in sorted(exception.policies):
                index.setdefault((exception.namespace, policy), []).append(exception)
        self._index = {key: tuple(found) for key, found in index.items()}

    def candidates(self, namespace: str, policy: str) -> Sequence[PolicyException]:
        return self._index.get((namespace, policy), ())

    def __iter__(self) -> Iterator[PolicyException]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)

    def __bool__(self) -> bool:
        return bool(self._all)

    def merged(self, *others: Iterable[PolicyException]) -> ExceptionSet:
        return ExceptionSet([*self._all, *(e for other in others for e in other)])


NO_EXCEPTIONS = ExceptionSet()

def first_covering(
    candidates: Sequence[PolicyException],
    at: float | None,
    kind: str,
    name: str,
    labels: Mapping[str, str] | None,
) -> PolicyException | None:
    """The first active exception among ``candidates`` that covers the object, if any."""
    for exception in candidates:
        if exception.active_at(at) and exception.covers(kind, name, labels):
            return exception
    return None


def rfc3339(at: float) -> str:
    stamp = dt.datetime.fromtimestamp(at, dt.UTC)
    text = stamp.isoformat(timespec="seconds" if stamp.microsecond == 0 else "microseconds")
    return text.replace("+00:00", "Z")


def parse_rfc3339(value: Any) -> float:
    """Unix time of an RFC 3339 date-time (``2026-12-31T00:00:00Z``); ValueError otherwise.

    YAML reads an unquoted timestamp as a datetime, so one is accepted too; a time without
    an offset is refused (whose midnight would it be?).
    """
    if isinstance(value, dt.datetime):
        stamp = value
    elif isinstance(value, str):
        try:
            stamp = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an RFC 3339 date-time "
                             "(e.g. 2026-12-31T00:00:00Z)") from None
        if "T" not in value.upper():
            raise ValueError(f"{value!r} is a date: give a date-time, e.g. {value}T00:00:00Z")
    else:
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    if stamp.tzinfo is None:
        raise ValueError(f"{value!s} has no UTC offset: add Z (UTC) or +hh:mm")
    return stamp.timestamp()


class ExceptionRegistry:
    """Exceptions from several sources (files, the cluster's objects), served as one
    ExceptionSet that is rebuilt and swapped whole when a source changes. An ExceptionView:
    the engine reads ``current`` without a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[str, ExceptionSet] = {}
        self.current: ExceptionSet = NO_EXCEPTIONS

    def set_source(self, name: str, exceptions: ExceptionSet) -> None:
        with self._lock:
            self._sources[name] = exceptions
            self.current = ExceptionSet(e for s in self._sources.values() for e in s)

    def candidates(self, namespace: str, policy: str) -> Sequence[PolicyException]:
        return self.current.candidates(namespace, policy)

    def __iter__(self) -> Iterator[PolicyException]:
        return iter(self.current)
