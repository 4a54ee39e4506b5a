"""Places under a limit taken by admissions the watch has not shown yet (one replica).

Between allowing a CREATE and the watch event for the new object, the cache does not
count it, so a burst of admissions could all see "1 of 2" and all be allowed. The
admission layer therefore, per namespace::

    with reservations.lock(namespace):
        decision = engine.evaluate(request, reservations.view(cluster))
        if decision.allowed and not request.dry_run:
            reservations.reserve(decision.limit_claims)

A reservation counts as an object until the watch shows that object
(``observed(kind, namespace, name)``) or ``ttl_seconds`` pass (the API server may still
reject the object after we allowed it, e.g. another webhook denies it). Reservations live
in this process only: several replicas can each hand out the last place. A ResourceQuota
``services.loadbalancers`` per namespace (``edgewarden quota``) is the API-server-side
backstop; see docs/cluster.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Set
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from webhook.policy.decision import LimitClaim
from webhook.policy.ports import ClusterView, ObjectCounter

_Slot = tuple[str, str]  # (namespace, counter key)
_Object = tuple[str, str, str]  # (kind, namespace, name)


@dataclass
class _NamespaceLock:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0  # holders and waiters; the entry is dropped when it reaches 0


class Reservations:
    """Per-replica reservations of limit places, and the per-namespace admission lock."""

    def __init__(
        self, ttl_seconds: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._guard = threading.Lock()
        # slot -> name -> (expiry, kind)
        self._held: dict[_Slot, dict[str, tuple[float, str]]] = {}
        # object -> slots it holds, so observed() does not scan every reservation
        self._by_object: dict[_Object, set[_Slot]] = {}
        self._locks: dict[str, _NamespaceLock] = {}
        self._locks_guard = threading.Lock()

    # ---- the per-namespace lock ----

    @contextmanager
    def lock(self, namespace: str) -> Iterator[None]:
        """Serialise evaluate+reserve in one namespace; other namespaces run in parallel."""
        with self._locks_guard:
            entry = self._locks.get(namespace)
            if entry is None:
                entry = self._locks[namespace] = _NamespaceLock()
            entry.users += 1
        try:
            with entry.lock:
                yield
        finally:
            # Dropping unused entries keeps the table as small as the admissions in flight.
            with self._locks_guard:
                entry.users -= 1
                if entry.users == 0:
                    del self._locks[namespace]

    # ---- reservations ----

    def reserve(self, claims: Iterable[LimitClaim]) -> None:
        """Hold a place for each claim until the watch shows the object or the TTL passes."""
        expiry = self._clock() + self.ttl_seconds
        with self._guard:
            for claim in claims:
                slot = (claim.namespace, claim.counter_key)
                self._held.setdefault(slot, {})[claim.name] = (expiry, claim.kind)
                obj = (claim.kind, claim.namespace, claim.name)
                self._by_object.setdefault(obj, set()).add(slot)

    def observed(self, kind: str, namespace: str, name: str) -> None:
        """The watch shows this object: the cache counts it now, release its places."""
        obj = (kind, namespace, name)
        if obj not in self._by_object:  # the common case, decided without the lock
            return
        with self._guard:
            for slot in self._by_object.pop(obj, ()):
                self._drop(slot, name)

    def reserved_names(self, namespace: str, counter_key: str) -> frozenset[str]:
        """Names with a live reservation in (namespace, counter_key); purges expired ones."""
        slot = (namespace, counter_key)
        if slot not in self._held:
            return frozenset()
        now = self._clock()
        with self._guard:
            held = self._held.get(slot, {})
            for name, (expiry, kind) in list(held.items()):
                if expiry <= now:
                    self._drop(slot, name)
                    self._forget_object((kind, namespace, name), slot)
            return frozenset(self._held.get(slot, {}))

    def purge(self) -> int:
        """Drop every expired reservation (for a periodic sweep); returns how many."""
        now = self._clock()
        dropped = 0
        with self._guard:
            for slot, held in list(self._held.items()):
                for name, (expiry, kind) in list(held.items()):
                    if expiry <= now:
                        self._drop(slot, name)
                        self._forget_object((kind, slot[0], name), slot)
                        dropped += 1
        return dropped

    def __len__(self) -> int:
        """Reservations held, expired ones included until purged (a metric)."""
        return sum(len(held) for held in list(self._held.values()))

    def _drop(self, slot: _Slot, name: str) -> None:
        held = self._held.get(slot)
        if held is not None:
            held.pop(name, None)
            if not held:
                del self._held[slot]

    def _forget_object(self, obj: _Object, slot: _Slot) -> None:
        slots = self._by_object.get(obj)
        if slots is not None:
            slots.discard(slot)
            if not slots:
                del self._by_object[obj]

    # ---- the view the engine reads ----

    def view(self, base: ClusterView) -> ClusterView:
        """``base`` plus the live reservations, each name counted once."""
        return ReservedView(base, self)


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
