"""The Policy and PolicyException objects of the cluster, kept current by the same list+watch
informer as the watch cache, and a signal for whoever acts on a change.

The informer threads write here; the controllers read a consistent copy (``items``) and are
woken through ``changed`` (an asyncio event set from the informer threads with the loop's
``call_soon_threadsafe``), so every reaction runs on the server's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from kubernetes import client

from webhook.cluster.kube_informer import Informer, InformerSettings
from webhook.cluster.kube_kinds import kind_resource
from webhook.cluster.records import slim
from webhook.policy.model.kinds import KindRef

log = logging.getLogger("edgewarden.controllers")

Key = tuple[str, str]  # (namespace, name); "" for a cluster-scoped kind


class ObjectStore:
    """Objects by kind and key; an InformerStore. Tells ``on_change`` the kind that changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, dict[Key, dict[str, Any]]] = {}
        self._listeners: list[Any] = []

    def listen(self, callback: Any) -> None:
        """``callback(kind)`` after every change (from the informer's thread)."""
        self._listeners.append(callback)

    def items(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._objects.get(kind, {}).values())

    # ---- InformerStore ----

    def begin_list(self, kind: str) -> _ListedObjects:
        return _ListedObjects(self, kind)

    def replace(self, kind: str, objs: Iterable[Mapping[str, Any]]) -> set[Key]:
        """Swap in a fresh LIST of ``kind``; the keys of the objects not held before."""
        fresh = {_key(o): _slim(kind, o) for o in objs}
        with self._lock:
            before = set(self._objects.get(kind, {}))
            self._objects[kind] = fresh
            appeared = set(fresh) - before
        self._changed(kind)
        return appeared

    def upsert(self, kind: str, obj: Mapping[str, Any]) -> bool:
        obj = _slim(kind, obj)
        with self._lock:
            held = self._objects.setdefault(kind, {})
            appeared = _key(obj) not in held
            held[_key(obj)] = obj
        self._changed(kind)
        return appeared

    def delete(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._objects.get(kind, {}).pop((namespace, name), None)
        self._changed(kind)

    def count(self, kind: str) -> int:
        with self._lock:
            return len(self._objects.get(kind, {}))

    def _changed(self, kind: str) -> None:
        for callback in self._listeners:
            try:
                callback(kind)
            except Exception:  # a listener must not stop the watch
                log.exception("a listener of %s objects failed", kind)


def _key(obj: Mapping[str, Any]) -> Key:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def _slim(kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """What the controllers read: metadata and spec (status is theirs to write)."""
    return slim(str(obj.get("kind") or kind), str(obj.get("apiVersion") or ""), obj)


class _ListedObjects:
    """A LIST of Policy or PolicyException objects: few, kept whole, swapped in at once."""

    def __init__(self, store: ObjectStore, kind: str) -> None:
        self._store = store
        self._kind = kind
        self._objects: list[Mapping[str, Any]] = []

    @property
    def size(self) -> int:
        return len(self._objects)

    @property
    def seen(self) -> list[Key]:
        return [_key(o) for o in self._objects]

    def decode(self, data: bytes) -> dict[str, Any]:
        page: dict[str, Any] = orjson.loads(data)  # kept whole
        return page

    def add(self, items: Iterable[Mapping[str, Any]]) -> None:
        self._objects.extend(items)

    def finish(self) -> set[Key]:
        return self._store.replace(self._kind, self._objects)


class ObjectWatch:
    """One informer thread per kind, filling one ObjectStore; ``changed`` wakes the loop."""

    def __init__(self, api: client.ApiClient, kinds: Iterable[KindRef],
                 settings: InformerSettings | None = None) -> None:
        self.store = ObjectStore()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._informers = [
            # Filed under the plain kind name: the controllers ask for "Policy".
            Informer(kind_resource(api, kind, key=kind.kind), self.store, self._stop,
                     settings or InformerSettings())
            for kind in kinds
        ]
        self._loop: asyncio.AbstractEventLoop | None = None
        self.changed = asyncio.Event()
        self.store.listen(self._wake)

    def _wake(self, kind: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.changed.set)

    def start(self) -> None:
        """Start the informers (once; later calls only move the wake-ups to this loop);
        ``changed`` is set on this (running) loop from now on."""
        self._loop = asyncio.get_running_loop()
        if self._threads:
            return
        self._stop.clear()
        for informer in self._informers:
            thread = threading.Thread(target=informer.run, daemon=True,
                                      name=f"edgewarden-watch-{informer.kind.lower()}")
            thread.start()
            self._threads.append(thread)
        watchdog = threading.Thread(target=self._watchdog, daemon=True,
                                    name="edgewarden-objects-watchdog")
        watchdog.start()
        self._threads.append(watchdog)

    def _watchdog(self) -> None:
        # A stalled stream blocks its thread in a read; only another thread can cut it.
        interval = min((i.settings.stall_seconds for i in self._informers), default=4.0) / 4
        while not self._stop.wait(min(1.0, interval)):
            for informer in self._informers:
                try:
                    informer.check_stall()
                except Exception:  # never let the watchdog die
                    log.exception("%s stall check failed", informer.kind)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for informer in self._informers:
            informer.shutdown_stream()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    @property
    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self._informers)

    def state(self) -> dict[str, dict[str, Any]]:
        return {i.kind: i.state() for i in self._informers}
