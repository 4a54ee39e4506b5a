"""The double's state: objects per kind, one resourceVersion counter, the event history.

One counter across all kinds, like etcd's revision. Every write stamps the object with the
next revision and appends an event to its kind's history, which watches replay from any
revision still in it; :meth:`Store.compact` forgets the history, so a watch from before it
gets 410 Gone. Everything is guarded by one condition, which open watches wait on.
"""

from __future__ import annotations

import copy
import datetime
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from .resources import Catalog, Resource

FIRST_REVISION = 100

Object = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); the namespace is "" for cluster-scoped kinds


@dataclass(frozen=True)
class Event:
    revision: int
    type: str  # ADDED, MODIFIED, DELETED or BOOKMARK
    object: Object


def key_of(obj: Object) -> Key:
    metadata = obj.get("metadata") or {}
    return metadata.get("namespace") or "", metadata["name"]


class Store:
    def __init__(self, catalog: Catalog) -> None:
        self.cond = threading.Condition(threading.RLock())
        self.catalog = catalog
        self.revision = FIRST_REVISION
        self._objects: dict[Resource, dict[Key, Object]] = {}
        self._history: dict[Resource, list[Event]] = {}
        self._oldest: dict[Resource, int] = {}  # a watch from an older revision: 410 Gone

    def _kind(self, resource: Resource) -> dict[Key, Object]:
        if resource not in self._objects:
            self._objects[resource] = {}
            self._history[resource] = []
            self._oldest[resource] = 0
        return self._objects[resource]

    # ---- reads (copies: nobody changes the store behind its back) ----

    def get(self, resource: Resource, key: Key) -> Object | None:
        with self.cond:
            found = self._kind(resource).get(key)
            return copy.deepcopy(found) if found is not None else None

    def items(self, resource: Resource, namespace: str | None = None) -> list[Object]:
        """The objects of a kind (in one namespace, or all), sorted by namespace and name."""
        with self.cond:
            objects = self._kind(resource)
            return [
                copy.deepcopy(objects[key])
                for key in sorted(objects)
                if namespace is None or key[0] == namespace
            ]

    # ---- writes ----

    def write(self, resource: Resource, event_type: str, obj: Object) -> Object:
        """Store (or, for DELETED, remove) ``obj`` at the next revision; returns the copy."""
        with self.cond:
            self.revision += 1
            stored = copy.deepcopy(obj)
            stored["apiVersion"], stored["kind"] = resource.api_version, resource.kind
            metadata = stored.setdefault("metadata", {})
            metadata["resourceVersion"] = str(self.revision)
            if event_type == "ADDED":
                metadata.setdefault("uid", str(uuid.uuid4()))
                metadata.setdefault("creationTimestamp", _now())
            objects = self._kind(resource)
            if resource.status and event_type != "DELETED":
                metadata["generation"] = _generation(objects.get(key_of(stored)), stored)
            if event_type == "DELETED":
                objects.pop(key_of(stored), None)
            else:
                objects[key_of(stored)] = stored
            self._history[resource].append(Event(self.revision, event_type, stored))
            self.cond.notify_all()
            return copy.deepcopy(stored)

    def bookmark(self, resource: Resource) -> int:
        """A BOOKMARK at a new revision (as if other kinds changed meanwhile)."""
        with self.cond:
            self._kind(resource)
            self.revision += 1
            marker = {
                "kind": resource.kind,
                "apiVersion": resource.api_version,
                "metadata": {"resourceVersion": str(self.revision)},
            }
            self._history[resource].append(Event(self.revision, "BOOKMARK", marker))
            self.cond.notify_all()
            return self.revision

    def compact(self) -> None:
        """Forget the history of every kind: watches from before now get 410 Gone."""
        with self.cond:
            for resource in self.catalog:
                self._kind(resource)
                self._history[resource] = []
                self._oldest[resource] = self.revision

    # ---- what watches read ----

    def too_old(self, resource: Resource, revision: int) -> bool:
        with self.cond:
            self._kind(resource)
            return revision < self._oldest[resource]

    def events_after(
        self, resource: Resource, revision: int, namespace: str | None = None
    ) -> list[Event]:
        with self.cond:
            self._kind(resource)
            return [
                event
                for event in self._history[resource]
                if event.revision > revision and _in_namespace(event, namespace)
            ]


def _in_namespace(event: Event, namespace: str | None) -> bool:
    return namespace is None or event.type == "BOOKMARK" or key_of(event.object)[0] == namespace


def _generation(previous: Object | None, new: Object) -> int:
    """As the API server counts a custom resource's generation: 1 when created, one more
    for every change to anything but metadata and status."""
    if previous is None:
        return 1
    generation = int(previous["metadata"].get("generation") or 1)
    ignored = ("metadata", "status", "apiVersion", "kind")
    before = {k: v for k, v in previous.items() if k not in ignored}
    after = {k: v for k, v in new.items() if k not in ignored}
    return generation + 1 if before != after else generation


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
