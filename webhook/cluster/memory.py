"""An in-memory cluster loaded from YAML: for ``--dev``, ``--cluster-state``, tests and CI."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from pathlib import Path
from typing import Any

import yaml

from webhook.cluster.backend import ObservationSink
from webhook.errors import ClusterStateError
from webhook.policy.load.reads import FieldReads
from webhook.policy.model.key_table import KeyTable
from webhook.policy.model.kinds import NAMESPACE, KindRef, key_of_object
from webhook.policy.model.ports import KeyIndex, ObjectCounter

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


def _key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    """(kind key, namespace, name): the kind by its key (kinds.py), so two kinds of one
    name in two groups never collide."""
    metadata = obj.get("metadata") or {}
    namespace = (
        "" if obj.get("kind") == "Namespace" else str(metadata.get("namespace") or "default")
    )
    return key_of_object(obj), namespace, str(metadata.get("name") or "")


_Holder = tuple[str, str, str]  # (kind key, namespace, name)
_NONE: frozenset[str] = frozenset()


def _holder(key: tuple[str, str, str]) -> _Holder:
    """Who holds keys: the object; a Namespace (grants) is its own namespace."""
    kind, namespace, name = key
    return (kind, name, name) if kind == NAMESPACE.key else (kind, namespace, name)


def flatten_documents(documents: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Every object in a stream of YAML documents, opening ``kind: List`` wrappers."""
    for document in documents:
        if not isinstance(document, dict):
            continue
        if document.get("kind") == "List" or str(document.get("kind", "")).endswith("List"):
            yield from flatten_documents(document.get("items") or [])
        else:
            yield document


class MemoryCluster:
    """Namespaces and objects of any kind held in memory; a ClusterView.

    Counting walks the objects of one namespace; results are cached per counter until the
    next change, which is plenty for a laptop, a CI run or an audit of a YAML dump. A
    server tells it which kinds its policies follow (``watch_kinds``): its reads (sample,
    snapshot, state) then show those kinds and Namespaces only, as the watch cache does.
    """

    def __init__(self, objects: Iterable[Mapping[str, Any]] = ()) -> None:
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        # namespace -> the keys of its objects: a count walks one namespace, not the cluster
        self._in_namespace: dict[str, set[tuple[str, str, str]]] = {}
        # (counter key, namespace) -> counted names; a change drops its namespace's entries
        self._count_cache: dict[tuple[str, str], frozenset[str]] = {}
        # index key -> (index, its table): built on first use, then kept current by
        # add() and remove(), so `check` replaying many manifests rekeys one at a time
        self._key_tables: dict[str, tuple[KeyIndex, KeyTable[_Holder]]] = {}
        self._kinds: tuple[str, ...] | None = None  # followed kind keys; None: every kind
        for obj in objects:
            self.add(obj)

    @classmethod
    def from_yaml(cls, *paths: str | Path) -> MemoryCluster:
        cluster = cls()
        for path in paths:
            try:
                text = Path(path).read_text(encoding="utf-8")
                documents = list(yaml.load_all(text, Loader=_Loader))
            except OSError as error:
                raise ClusterStateError(f"{path}: cannot read cluster state: {error}") from None
            except yaml.YAMLError as error:
                raise ClusterStateError(f"{path}: not valid YAML: {error}") from None
            for obj in flatten_documents(documents):
                if not obj.get("kind") or not obj.get("apiVersion"):
                    continue  # not an API object
                if not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
                    raise ClusterStateError(f"{path}: a {obj.get('kind')} has no metadata.name")
                cluster.add(obj)
        return cluster

    # -- changes -----------------------------------------------------------------------

    def add(self, obj: Mapping[str, Any]) -> None:
        """Add or replace an object (by kind, namespace and name)."""
        key = _key(obj)
        with self._lock:
            old = self._objects.get(key)
            new = self._objects[key] = dict(obj)
            self._changed(key, old, new)

    def remove(self, kind: str, namespace: str, name: str) -> None:
        """Remove an object (``kind``: the kind's key)."""
        key = (kind, "" if kind == "Namespace" else namespace, name)
        with self._lock:
            old = self._objects.pop(key, None)
            if old is not None:
                self._changed(key, old, None)

    def _changed(self, key: tuple[str, str, str], old: Mapping[str, Any] | None,
                 new: Mapping[str, Any] | None) -> None:
        """Keep the namespace index, the counts and the key indexes in step (lock held)."""
        _, namespace, _ = key
        members = self._in_namespace.setdefault(namespace, set())
        if new is None:
            members.discard(key)
        else:
            members.add(key)
        for cached in [c for c in self._count_cache if c[1] == namespace]:
            del self._count_cache[cached]
        self._rekey(key, new)

    def _rekey(self, key: tuple[str, str, str], obj: Mapping[str, Any] | None) -> None:
        for index, table in self._key_tables.values():
            if key[0] in index.kinds:
                table.hold(_holder(key), index.keys_of(obj) if obj is not None else _NONE)

    def _followed(self, kind: str) -> bool:
        return self._kinds is None or kind == NAMESPACE.key or kind in self._kinds

    # -- reads -------------------------------------------------------------------------

    def namespaces(self) -> list[dict[str, Any]]:
        return [o for (kind, _, _), o in self._objects.items() if kind == "Namespace"]

    def objects(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [o for (k, _, _), o in self._objects.items() if kind is None or k == kind]

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get((kind, "" if kind == "Namespace" else namespace, name))

    def get_namespace(self, name: str) -> Mapping[str, Any] | None:
        return self._objects.get(("Namespace", "", name))

    def sample(self, limit: int) -> Sequence[Mapping[str, Any]]:
        """Up to ``limit`` objects that are not Namespaces, in the order they were added."""
        return [
            o
            for (kind, _, _), o in self._objects.items()
            if kind != "Namespace" and self._followed(kind)
        ][:limit]

    def snapshot(self) -> Sequence[Mapping[str, Any]]:
        """Every object held of the kinds followed, Namespaces included."""
        return [o for (kind, _, _), o in self._objects.items() if self._followed(kind)]

    def counted_names(self, namespace: str, counter: ObjectCounter) -> Set[str]:
        cache_key = (counter.key, namespace)
        cached = self._count_cache.get(cache_key)
        if cached is not None:
            return cached
        with self._lock:
            names = frozenset(
                name
                for kind, _, name in self._in_namespace.get(namespace, ())
                if kind == counter.kind and counter.counts(self._objects[(kind, namespace, name)])
            )
            self._count_cache[cache_key] = names
        return names

    def key_holders(
        self, index: KeyIndex, key: str
    ) -> Mapping[str, Set[tuple[str, str, str]]]:
        built = self._key_tables.get(index.key)
        if built is None:
            with self._lock:
                table: KeyTable[_Holder] = KeyTable(index.match)
                for stored, obj in self._objects.items():
                    if stored[0] in index.kinds:
                        table.hold(_holder(stored), index.keys_of(obj))
                built = self._key_tables[index.key] = (index, table)
        return built[1].overlapping(key)

    # ---- ClusterBackend: a static cluster is complete the moment it is built ----

    @property
    def synced(self) -> bool:
        return True

    def register_counters(self, counters: Iterable[ObjectCounter]) -> None:
        """Nothing to index: counting walks one namespace's objects, cached per change."""

    def register_key_indexes(self, indexes: Iterable[KeyIndex]) -> None:
        """Keep tables for these indexes only (each is built on first use, then kept
        current by every change)."""
        wanted = {index.key for index in indexes}
        with self._lock:
            self._key_tables = {k: v for k, v in self._key_tables.items() if k in wanted}

    def keep_fields(self, reads: FieldReads) -> None:
        """Nothing to cut: objects loaded from YAML are few and kept whole."""

    def watch_kinds(self, kinds: Iterable[KindRef]) -> None:
        """Show exactly these kinds (and Namespaces) from now on."""
        self._kinds = tuple(sorted(ref.key for ref in kinds))

    def attach_reservations(self, sink: ObservationSink | None) -> None:
        """Nothing appears here on its own; reservations simply expire."""
        if sink is not None:
            sink.follow_static_cluster()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def state(self) -> dict[str, dict[str, Any]]:
        kinds: dict[str, int] = {}
        for kind, _, _ in self._objects:
            kinds[kind] = kinds.get(kind, 0) + 1
        followed = (
            sorted(k for k in kinds if k != NAMESPACE.key)
            if self._kinds is None
            else list(self._kinds)
        )
        return {
            kind: {"synced": True, "objects": kinds.get(kind, 0)}
            for kind in (NAMESPACE.key, *followed)
        }
