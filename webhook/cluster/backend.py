"""What the server needs of a cluster backend beyond the engine's view, as one protocol.

Both backends (the in-memory cluster and the Kubernetes watch cache) implement all of it,
so the server calls these methods directly instead of probing for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from webhook.policy.load.reads import FieldReads
from webhook.policy.model.kinds import KindRef
from webhook.policy.model.ports import ClusterView, KeyIndex, ObjectCounter


class ObservationSink(Protocol):
    """Told what the cache sees and how current it is (``Reservations`` implements it)."""

    def observed(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        appeared: bool = False,
        counted_by: Iterable[str] = (),
    ) -> None:
        """The cache shows this object (``appeared``: it did not hold it before), counted
        by the limit counters whose keys are ``counted_by``."""
        ...

    def caught_up(self, kind: str) -> None:
        """The cache of ``kind`` is current as of now (an event, a bookmark or a LIST)."""
        ...

    def follow_static_cluster(self) -> None:
        """The cluster never changes on its own: nothing the sink waits for will appear."""
        ...


class ClusterBackend(ClusterView, Protocol):
    """A cluster the server runs on: the engine's view plus its lifecycle and readiness."""

    def register_counters(self, counters: Iterable[ObjectCounter]) -> None:
        """Index exactly these limit counters (start-up and every policy reload)."""
        ...

    def register_key_indexes(self, indexes: Iterable[KeyIndex]) -> None:
        """Keep key -> holders for exactly these ``unique`` indexes (start-up and reload)."""
        ...

    def keep_fields(self, reads: FieldReads) -> None:
        """Keep at least these fields of each object (start-up and every policy reload,
        before ``watch_kinds``): what the loaded policies and the reports read."""
        ...

    def watch_kinds(self, kinds: Iterable[KindRef]) -> None:
        """Follow exactly these kinds, and Namespaces (start-up and every policy reload):
        the kinds the loaded policies match."""
        ...

    def attach_reservations(self, sink: ObservationSink | None) -> None:
        """Tell ``sink`` about every object that appears."""
        ...

    def sample(self, limit: int) -> Sequence[Mapping[str, Any]]:
        """Up to ``limit`` objects the backend holds, Namespaces aside (the reload canary)."""
        ...

    def namespaces(self) -> Sequence[Mapping[str, Any]]:
        """Every Namespace held."""
        ...

    def snapshot(self) -> Sequence[Mapping[str, Any]]:
        """Every Namespace and object the backend holds (what the continuous audit judges)."""
        ...

    def state(self) -> Mapping[str, Mapping[str, Any]]:
        """Per kind: ``synced``, ``objects`` and backend-specific numbers (metrics)."""
        ...

    def start(self) -> None:
        """Begin following the cluster (no-op for a static one)."""
        ...

    def stop(self) -> None:
        """Stop following it and release threads and connections."""
        ...
