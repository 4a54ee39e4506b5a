"""Places under a limit taken by admissions the watch has not shown yet (one replica).

Between allowing a CREATE and the watch event for the new object, the cache does not
count it, so a burst of admissions could all see "1 of 2" and all be allowed. The
admission layer therefore, per namespace::

    with reservations.lock(namespace):
        decision = engine.evaluate(request, reservations.view(cluster))
        if decision.allowed and not request.dry_run:
            reservations.reserve(decision.limit_claims, request.uid,
                                 keys=decision.key_claims)

Unique keys (``unique`` policies: a host one namespace holds alone) are reserved the same
way, under one cluster-wide lock instead of the namespace's: the conflict they prevent is
between namespaces. Reserved keys are compared as the cluster's are (one KeyTable type,
webhook/policy/model/key_table.py): a reserved ``shop.example.com/`` holds ``/login`` under it too.

A reservation belongs to one admission (its uid), not to the object's name: a CREATE
with ``generateName`` may carry no name when it is judged (a review sent straight to the
webhook may carry none at all), and it must hold a place like any other; so must every
review that repeats a uid. It ends:

* when the watch shows the object: by name, or, for a reservation without a name, when a
  counted object the cache did not hold appears in that namespace (the oldest unnamed
  reservation it could be goes; which admission made it cannot be known);
* when the cache has caught up past the moment the object would have appeared by: an
  event, bookmark or LIST of that kind later than reservation time + ``grace_seconds``
  (the API server's timeout for the webhook call plus a margin) and still no object. The
  API server refused it after us (another webhook, a quota), or nobody meant to create
  it: a review sent straight to the webhook reserves nothing for long;
* at the latest after ``max_age_seconds`` (a cache that shows no progress at all).

Reservations live in this process only: several replicas can each hand out the last place.
So they serve only where no API server arbitrates (``--cluster-state``, ``--dev``) and
with ``--no-claims``. Reading a real cluster with claims, the API server arbitrates every
place (a managed ResourceQuota, or a Claim: webhook/cluster/claims.py) and no reservation
is made: it would only let a review that no object follows hold a place on one replica
(docs/replicas.md).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any, Final

from webhook.policy.model.decision import KeyClaim, LimitClaim
from webhook.policy.model.key_table import KeyTable
from webhook.policy.model.ports import ClusterView, KeyIndex, ObjectCounter

_Slot = tuple[str, str]  # (namespace, counter key)
_Object = tuple[str, str, str]  # (kind, namespace, name)
_Key = tuple[str, str]  # (unique index key, key): a host a ``unique`` policy hands out

# Counted "names" of reservations without an object name: never a valid Kubernetes name,
# so they cannot collide with a real object's, and one per admission.
UNNAMED_PREFIX = "(unnamed) "

DEFAULT_GRACE_SECONDS = 10.0  # a 5 s webhook timeout plus a 5 s margin
DEFAULT_MAX_AGE_SECONDS = 300.0


class _NamespaceLock:
    # A class with a written __init__, not a dataclass: made per admission, and mypyc
    # compiles only a written one.
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock: Final = threading.Lock()
        self.users = 0  # holders and waiters; the entry is dropped when it reaches 0


class _Locked:
    """What ``Reservations.lock`` returns: a class, not a generator-based context manager
    (it is entered once per admission, and the generator cost more than the locking)."""

    __slots__ = ("_book", "_entry", "_namespace")

    def __init__(self, book: Reservations, namespace: str) -> None:
        self._book = book
        self._namespace = namespace
        self._entry: _NamespaceLock | None = None

    def __enter__(self) -> None:
        book = self._book
        with book._locks_guard:
            entry = book._locks.get(self._namespace)
            if entry is None:
                entry = book._locks[self._namespace] = _NamespaceLock()
            entry.users += 1
        try:
            entry.lock.acquire()
        except BaseException:
            self._leave(entry)
            raise
        self._entry = entry

    def __exit__(self, *exc: object) -> None:
        entry = self._entry
        assert entry is not None
        self._entry = None
        entry.lock.release()
        self._leave(entry)

    def _leave(self, entry: _NamespaceLock) -> None:
        # Dropping unused entries keeps the table as small as the admissions in flight.
        book = self._book
        with book._locks_guard:
            entry.users -= 1
            if entry.users == 0:
                del book._locks[self._namespace]


@dataclass
class _Held:
    """One admission's reservation: the places it holds under one or more counters."""

    seq: int  # one per reserve() call: a repeated uid still takes its own place
    uid: str
    kind: str
    namespace: str
    name: str  # "" when the object's name is not known yet
    at: float  # clock() when reserved
    slots: set[_Slot] = field(default_factory=set)
    keys: set[_Key] = field(default_factory=set)

    @property
    def token(self) -> str:
        return self.name or f"{UNNAMED_PREFIX}{self.uid} #{self.seq}"


class Reservations:
    """Per-replica reservations of limit places, and the per-namespace admission lock."""

    def __init__(
        self,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.grace_seconds = grace_seconds
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._guard = threading.Lock()
        self._seq = itertools.count()
        self._held: dict[int, _Held] = {}
        # slot -> seq -> reservation, oldest first (dicts keep insertion order)
        self._by_slot: dict[_Slot, dict[int, _Held]] = {}
        # unique key -> seq -> reservation: keys held by admissions the watch has not shown
        self._by_key: dict[_Key, dict[int, _Held]] = {}
        # unique index key -> the reserved keys by reservation (seq), compared the way the
        # index compares keys (the same KeyTable as the cluster's); made on first read
        self._key_tables: dict[str, KeyTable[int]] = {}
        # named object -> seqs, so observed() does not scan every reservation
        self._by_object: dict[_Object, set[int]] = {}
        self._progress: dict[str, float] = {}  # kind -> clock() of the cache's last progress
        self._static = False
        self._locks: dict[str, _NamespaceLock] = {}
        self._locks_guard = threading.Lock()

    # ---- the per-namespace lock ----

    def lock(self, namespace: str) -> _Locked:
        """Serialise evaluate+reserve in one namespace; other namespaces run in parallel."""
        return _Locked(self, namespace)

    # ---- reservations ----

    def reserve(
        self,
        claims: Iterable[LimitClaim],
        uid: str,
        *,
        name: str = "",
        keys: Iterable[KeyClaim] = (),
    ) -> None:
        """Hold a place for each claim, and each unique key, of the admission ``uid`` (see
        the module docstring); keys end as places do.

        ``name`` stands in for a claim without one (the object's ``metadata.name`` when the
        review's ``request.name`` is empty).
        """
        now = self._clock()
        with self._guard:
            held: _Held | None = None
            every: list[LimitClaim | KeyClaim] = [*claims, *keys]
            for claim in every:
                if held is None:  # the claims of one admission share kind and object
                    held = _Held(next(self._seq), uid, claim.kind, claim.namespace,
                                 claim.name or name, now)
                    self._held[held.seq] = held
                    if held.name:
                        key = (held.kind, held.namespace, held.name)
                        self._by_object.setdefault(key, set()).add(held.seq)
                if isinstance(claim, KeyClaim):
                    taken = (claim.index_key, claim.key)
                    held.keys.add(taken)
                    self._by_key.setdefault(taken, {})[held.seq] = held
                    continue
                slot = (claim.namespace, claim.counter_key)
                held.slots.add(slot)
                self._by_slot.setdefault(slot, {})[held.seq] = held
            if held is not None:
                for index_key, table in self._key_tables.items():
                    reserved = _keys_in(held, index_key)
                    if reserved:
                        table.hold(held.seq, reserved)

    def observed(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        appeared: bool = False,
        counted_by: Iterable[str] = (),
    ) -> None:
        """The watch shows this object, counted by the counters ``counted_by``; ``appeared``
        when the cache did not hold it before. The cache counts it now: release its places."""
        obj = (kind, namespace, name)
        if obj not in self._by_object and not (appeared and self._by_slot):
            return  # the common case, decided without the lock
        with self._guard:
            seqs = self._by_object.get(obj)
            if seqs:
                for seq in list(seqs):
                    self._drop(self._held[seq])
                return
            if appeared:
                unnamed = self._oldest_unnamed(kind, namespace, counted_by)
                if unnamed is not None:
                    self._drop(unnamed)

    def caught_up(self, kind: str) -> None:
        """The cache of ``kind`` is current as of now (an event, a bookmark or a LIST)."""
        self._progress[kind] = self._clock()

    def follow_static_cluster(self) -> None:
        """The cluster never changes on its own (a YAML file): nothing will ever appear, so
        a reservation lasts ``grace_seconds``, as if the cache were always current."""
        self._static = True

    def reserved_names(self, namespace: str, counter_key: str) -> frozenset[str]:
        """Names (or unnamed tokens) with a live reservation in (namespace, counter_key)."""
        slot = (namespace, counter_key)
        if slot not in self._by_slot:
            return frozenset()
        now = self._clock()
        with self._guard:
            held = self._by_slot.get(slot, {})
            for reservation in [r for r in held.values() if self._expired(r, now)]:
                self._drop(reservation)
            return frozenset(r.token for r in self._by_slot.get(slot, {}).values())

    def reserved_holders(self, index: KeyIndex, key: str) -> dict[str, frozenset[_Object]]:
        """The reserved keys ``key`` runs into under ``index``, each with the (kind,
        namespace, name or token) of its live reservations."""
        if not self._by_key:
            return {}  # the common case, decided without the lock
        now = self._clock()
        with self._guard:
            table = self._key_tables.get(index.key)
            if table is None:
                table = self._key_tables[index.key] = KeyTable(index.match)
                for reservation in self._held.values():
                    keys = _keys_in(reservation, index.key)
                    if keys:
                        table.hold(reservation.seq, keys)
            found = table.overlapping(key)
            expired = {seq for seqs in found.values() for seq in seqs
                       if self._expired(self._held[seq], now)}
            for seq in expired:
                self._drop(self._held[seq])
            if expired:
                found = table.overlapping(key)
            return {
                held: frozenset((r.kind, r.namespace, r.token)
                                for r in (self._held[seq] for seq in seqs))
                for held, seqs in found.items()
            }

    def purge(self) -> int:
        """Drop every expired reservation (for a periodic sweep); returns how many."""
        now = self._clock()
        with self._guard:
            expired = [r for r in self._held.values() if self._expired(r, now)]
            for reservation in expired:
                self._drop(reservation)
        return len(expired)

    def __len__(self) -> int:
        """Admissions holding places, expired ones included until purged (a metric)."""
        return len(self._held)

    # ---- internals (under the guard) ----

    def _expired(self, held: _Held, now: float) -> bool:
        if now - held.at >= self.max_age_seconds:
            return True
        caught_up = now if self._static else self._progress.get(held.kind, -math.inf)
        return caught_up - held.at >= self.grace_seconds

    def _oldest_unnamed(
        self, kind: str, namespace: str, counter_keys: Iterable[str]
    ) -> _Held | None:
        candidates = [
            held
            for key in counter_keys
            for held in self._by_slot.get((namespace, key), {}).values()
            if not held.name and held.kind == kind
        ]
        return min(candidates, key=lambda held: held.at, default=None)

    def _drop(self, held: _Held) -> None:
        self._held.pop(held.seq, None)
        for slot in held.slots:
            in_slot = self._by_slot.get(slot)
            if in_slot is not None:
                in_slot.pop(held.seq, None)
                if not in_slot:
                    del self._by_slot[slot]
        for taken in held.keys:
            holding = self._by_key.get(taken)
            if holding is not None:
                holding.pop(held.seq, None)
                if not holding:
                    del self._by_key[taken]
            table = self._key_tables.get(taken[0])
            if table is not None:
                table.hold(held.seq, frozenset())
        if held.name:
            key = (held.kind, held.namespace, held.name)
            seqs = self._by_object.get(key)
            if seqs is not None:
                seqs.discard(held.seq)
                if not seqs:
                    del self._by_object[key]

    # ---- the view the engine reads ----

    def view(self, base: ClusterView) -> ClusterView:
        """``base`` plus the live reservations, each name counted once."""
        return ReservedView(base, self)


def _keys_in(held: _Held, index_key: str) -> frozenset[str]:
    """The keys of one index a reservation holds."""
    return frozenset(key for taken_index, key in held.keys if taken_index == index_key)


class ReservedView:
    """A ClusterView whose counted names include reserved names."""

    def __init__(self, base: ClusterView, reservations: Reservations) -> None:
        self._base = base
        self._reservations = reservations

    def get_namespace(self, name: str) -> Mapping[str, Any] | None:
        return self._base.get_namespace(name)

    @property
    def synced(self) -> bool:
        return self._base.synced

    def counted_names(self, namespace: str, counter: ObjectCounter) -> Set[str]:
        names = self._base.counted_names(namespace, counter)
        reserved = self._reservations.reserved_names(namespace, counter.key)
        if not reserved:
            return names
        # A union of names: an object both reserved and already seen counts once.
        return frozenset(names) | reserved

    def key_holders(
        self, index: KeyIndex, key: str
    ) -> Mapping[str, Set[tuple[str, str, str]]]:
        found = self._base.key_holders(index, key)
        reserved = self._reservations.reserved_holders(index, key)
        if not reserved:
            return found
        merged = {held: frozenset(holders) for held, holders in found.items()}
        for held, holders in reserved.items():
            merged[held] = merged.get(held, frozenset()) | holders
        return merged
