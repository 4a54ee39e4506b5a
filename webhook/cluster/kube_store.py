"""The watch cache's memory: slimmed objects by kind, and per-counter name indexes.

Writers are the informer threads (one per kind); readers are admissions. Every write
takes one lock; the indexes hold frozensets that are replaced, never mutated, so a
reader gets a consistent answer from plain dict lookups without taking the lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any

from webhook.policy.model.key_table import KeyTable
from webhook.policy.model.ports import KeyIndex, ObjectCounter

log = logging.getLogger("edgewarden.cluster")

NAMESPACE = "Namespace"
SERVICE = "Service"
INGRESS = "Ingress"

# Annotations that can be large and that no exposure policy needs to read.
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)

_EMPTY: frozenset[str] = frozenset()
Holder = tuple[str, str, str]  # (kind key, namespace, name)


def slim(kind: str, api_version: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Keep what policies read (metadata and spec; status for Namespaces) to bound memory.

    LIST items arrive without ``kind``/``apiVersion``; they are set here so a counter's
    expression sees the same shape as an admitted object.
    """
    metadata = dict(obj.get("metadata") or {})
    metadata.pop("managedFields", None)
    annotations = metadata.get("annotations")
    if annotations and any(a in annotations for a in _DROPPED_ANNOTATIONS):
        metadata["annotations"] = {
            k: v for k, v in annotations.items() if k not in _DROPPED_ANNOTATIONS
        }
    slimmed: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    if kind == NAMESPACE:
        if "status" in obj:
            slimmed["status"] = obj["status"]
    elif "spec" in obj:
        slimmed["spec"] = obj["spec"]
    return slimmed


def _interleave(
    groups: Sequence[Sequence[Mapping[str, Any]]], limit: int
) -> list[Mapping[str, Any]]:
    """Round-robin over ``groups`` so a sample holds every kind, not only the largest."""
    taken: list[Mapping[str, Any]] = []
    position = 0
    while len(taken) < limit and any(position < len(g) for g in groups):
        taken.extend(g[position] for g in groups if position < len(g))
        position += 1
    return taken[:limit]


def _safe_counts(counter: ObjectCounter, obj: Mapping[str, Any]) -> bool:
    # A counter that cannot judge an object must not take the informer down.
    try:
        return bool(counter.counts(obj))
    except Exception:
        log.debug("counter %s could not judge an object; it does not count", counter.key)
        return False


def _namespace_holder(name: str) -> Holder:
    # A Namespace is its own namespace: grants compare with holders by namespace.
    return (NAMESPACE, name, name)


class KubeStore:
    """Objects of the watched kinds (by kind key) and the counted-name index of each counter."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        # Namespaces by name; Services and Ingresses by kind -> namespace -> name.
        self._namespaces: dict[str, dict[str, Any]] = {}
        self._objects: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        self._counters: dict[str, ObjectCounter] = {}
        # counter key -> namespace -> names counted (frozensets, replaced on change)
        self._index: dict[str, dict[str, frozenset[str]]] = {}
        # unique index key -> the keys each object (and Namespace, for grants) holds
        self._key_indexes: dict[str, KeyIndex] = {}
        self._key_tables: dict[str, KeyTable[Holder]] = {}

    # ---- reads (admission path: no lock, no I/O) ----

    def get_namespace(self, name: str) -> Mapping[str, Any] | None:
        return self._namespaces.get(name)

    def counted_names(self, namespace: str, counter: ObjectCounter) -> Set[str]:
        by_namespace = self._index.get(counter.key)
        if by_namespace is None:
            # First use of a counter nobody registered: index it now, then read.
            self.add_counter(counter)
            by_namespace = self._index.get(counter.key, {})
        return by_namespace.get(namespace, _EMPTY)

    def key_holders(self, index: KeyIndex, key: str) -> Mapping[str, Set[Holder]]:
        table = self._key_tables.get(index.key)
        if table is None:
            self.add_key_index(index)  # first use of an index nobody registered
            table = self._key_tables[index.key]
        return table.overlapping(key)

    def sample(self, limit: int) -> Sequence[Mapping[str, Any]]:
        """Up to ``limit`` stored objects (not Namespaces), taken from every kind in turn."""
        with self._lock:
            per_kind = [
                [o for objects in by_namespace.values() for o in objects.values()]
                for by_namespace in self._objects.values()
            ]
        return _interleave(per_kind, limit)

    def namespaces(self) -> list[Mapping[str, Any]]:
        """Every stored Namespace (the stored dicts: callers must not change them)."""
        with self._lock:
            return list(self._namespaces.values())

    def snapshot(self) -> list[Mapping[str, Any]]:
        """Every stored Namespace and object (the stored dicts: callers must not change them)."""
        with self._lock:
            found: list[Mapping[str, Any]] = list(self._namespaces.values())
            for by_namespace in self._objects.values():
                for objects in by_namespace.values():
                    found.extend(objects.values())
        return found

    def count(self, kind: str) -> int:
        with self._lock:
            if kind == NAMESPACE:
                return len(self._namespaces)
            return sum(len(names) for names in self._objects.get(kind, {}).values())

    def forget(self, kind: str) -> None:
        """Drop every object of ``kind`` (no longer watched)."""
        with self._lock:
            self._objects.pop(kind, None)
            for key, counter in self._counters.items():
                if counter.kind == kind:
                    self._index[key] = {}
            self._rekey_kind(kind)

    # ---- counters ----

    def set_counters(self, counters: Iterable[ObjectCounter]) -> None:
        """Replace the registered counters and rebuild every index from the cache."""
        with self._lock:
            self._counters = {c.key: c for c in counters}
            self._index = {key: self._build_index(c) for key, c in self._counters.items()}

    def add_counter(self, counter: ObjectCounter) -> None:
        with self._lock:
            if counter.key in self._counters:
                return
            self._counters[counter.key] = counter
            self._index[counter.key] = self._build_index(counter)

    def _build_index(self, counter: ObjectCounter) -> dict[str, frozenset[str]]:
        by_namespace = self._objects.get(counter.kind, {})
        index: dict[str, frozenset[str]] = {}
        for namespace, objects in by_namespace.items():
            names = frozenset(n for n, o in objects.items() if _safe_counts(counter, o))
            if names:
                index[namespace] = names
        return index

    # ---- unique key indexes ----

    def set_key_indexes(self, indexes: Iterable[KeyIndex]) -> None:
        """Replace the registered key indexes and rebuild each from the cache."""
        with self._lock:
            self._key_indexes = {i.key: i for i in indexes}
            self._key_tables = {}
            for index in self._key_indexes.values():
                self._build_key_index(index)

    def add_key_index(self, index: KeyIndex) -> None:
        with self._lock:
            if index.key not in self._key_indexes:
                self._key_indexes[index.key] = index
                self._build_key_index(index)

    def _build_key_index(self, index: KeyIndex) -> None:
        # Built aside and swapped in whole: readers never see a half-built table.
        table: KeyTable[Holder] = KeyTable(index.match)
        for kind in index.kinds:
            if kind == NAMESPACE:
                for name, namespace_object in self._namespaces.items():
                    table.hold(_namespace_holder(name), index.keys_of(namespace_object))
                continue
            for namespace, objects in self._objects.get(kind, {}).items():
                for name, obj in objects.items():
                    table.hold((kind, namespace, name), index.keys_of(obj))
        self._key_tables[index.key] = table

    def _rekey_one(self, index: KeyIndex, holder: Holder, obj: Mapping[str, Any] | None) -> None:
        table = self._key_tables[index.key]
        table.hold(holder, index.keys_of(obj) if obj is not None else _EMPTY)

    def _rekey_namespace(self, name: str, obj: Mapping[str, Any] | None) -> None:
        """A Namespace holds the hosts its grant annotation names (unique.py)."""
        for index in self._key_indexes.values():
            if NAMESPACE in index.kinds:
                self._rekey_one(index, _namespace_holder(name), obj)

    def _rekey_kind(self, kind: str) -> None:
        for index in self._key_indexes.values():
            if kind in index.kinds:
                self._build_key_index(index)

    def counted_by(self, kind: str, namespace: str, name: str) -> list[str]:
        """The keys of the registered counters that count the stored object."""
        return [
            key
            for key, counter in list(self._counters.items())
            if counter.kind == kind and name in self._index.get(key, {}).get(namespace, _EMPTY)
        ]

    # ---- writes (informer threads) ----

    def upsert(self, kind: str, obj: dict[str, Any]) -> bool:
        """Store ``obj``; True when the cache did not hold it before (it appeared)."""
        metadata = obj["metadata"]
        name = metadata.get("name", "")
        with self._lock:
            if kind == NAMESPACE:
                appeared = name not in self._namespaces
                self._namespaces[name] = obj
                self._rekey_namespace(name, obj)
                return appeared
            namespace = metadata.get("namespace", "")
            objects = self._objects.setdefault(kind, {}).setdefault(namespace, {})
            appeared = name not in objects
            objects[name] = obj
            self._reindex_one(kind, namespace, name, obj)
            for index in self._key_indexes.values():
                if kind in index.kinds:
                    self._rekey_one(index, (kind, namespace, name), obj)
            return appeared

    def delete(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            if kind == NAMESPACE:
                self._namespaces.pop(name, None)
                self._rekey_namespace(name, None)
                return
            by_namespace = self._objects.get(kind, {})
            objects = by_namespace.get(namespace)
            if objects is not None:
                objects.pop(name, None)
                if not objects:
                    del by_namespace[namespace]
            self._reindex_one(kind, namespace, name, None)
            for index in self._key_indexes.values():
                if kind in index.kinds:
                    self._rekey_one(index, (kind, namespace, name), None)

    def replace(self, kind: str, objs: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
        """Swap in a fresh LIST of ``kind``: whatever it lacks was deleted meanwhile.
        Returns the (namespace, name) of the objects the cache did not hold before."""
        with self._lock:
            if kind == NAMESPACE:
                before = self._namespaces
                self._namespaces = {o["metadata"].get("name", ""): o for o in objs}
                self._rekey_kind(NAMESPACE)
                return {("", name) for name in self._namespaces if name not in before}
            previous = self._objects.get(kind, {})
            fresh: dict[str, dict[str, dict[str, Any]]] = {}
            appeared: set[tuple[str, str]] = set()
            for o in objs:
                md = o["metadata"]
                namespace, name = md.get("namespace", ""), md.get("name", "")
                fresh.setdefault(namespace, {})[name] = o
                if name not in previous.get(namespace, {}):
                    appeared.add((namespace, name))
            self._objects[kind] = fresh
            for key, counter in self._counters.items():
                if counter.kind == kind:
                    self._index[key] = self._build_index(counter)
            self._rekey_kind(kind)
            return appeared

    def _reindex_one(
        self, kind: str, namespace: str, name: str, obj: Mapping[str, Any] | None
    ) -> None:
        for key, counter in self._counters.items():
            if counter.kind != kind:
                continue
            by_namespace = self._index.setdefault(key, {})
            before = by_namespace.get(namespace, _EMPTY)
            counted = obj is not None and _safe_counts(counter, obj)
            if counted and name not in before:
                by_namespace[namespace] = before | {name}
            elif not counted and name in before:
                after = before - {name}
                if after:
                    by_namespace[namespace] = after
                else:
                    del by_namespace[namespace]
