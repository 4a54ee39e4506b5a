"""The cluster as the Kubernetes API shows it: a list+watch cache of Namespaces, Services
and Ingresses, cluster-wide, with per-namespace counted-name indexes for every limit.

Admissions read it through ``get_namespace``/``counted_names``: dict lookups, no I/O, no
LIST on the admission path. Three background threads (the ``kubernetes`` client is
synchronous) keep it current, and a fourth, the watchdog, cuts a watch that has gone
silent (see kube_informer). ``synced`` turns true once each kind was listed once, and
stays true while a watch reconnects (serving slightly stale state beats refusing every
admission while the API server is briefly unreachable); ``state()`` says per kind how old
the cache is, and ``stale`` once that passes ``InformerSettings.stale_after_seconds``.

Typical use::

    cluster = KubeCluster.from_environment()
    cluster.attach_reservations(reservations)
    cluster.register_counters(engine.counters())
    cluster.start()
    cluster.wait_synced(timeout=30)
    ...
    cluster.stop()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any

from kubernetes import client

from webhook.cluster.backend import ObservationSink
from webhook.cluster.connection import api_client_from_environment
from webhook.cluster.kube_informer import Informer, InformerSettings, Resource
from webhook.cluster.kube_store import INGRESS, NAMESPACE, SERVICE, KubeStore
from webhook.policy.ports import ObjectCounter

log = logging.getLogger("edgewarden.cluster")

KINDS = (NAMESPACE, SERVICE, INGRESS)


class KubeCluster:
    """A ``ClusterView`` backed by list+watch caches of the Kubernetes API."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        settings: InformerSettings | None = None,
        reservations: ObservationSink | None = None,
    ) -> None:
        self._api_client = api_client
        self._store = KubeStore()
        self._stop = threading.Event()
        self._settings = settings or InformerSettings()
        self._reservations = reservations
        self._threads: list[threading.Thread] = []
        core = client.CoreV1Api(api_client)
        networking = client.NetworkingV1Api(api_client)
        resources = (
            Resource(NAMESPACE, "v1", core.list_namespace),
            Resource(SERVICE, "v1", core.list_service_for_all_namespaces),
            Resource(INGRESS, "networking.k8s.io/v1", networking.list_ingress_for_all_namespaces),
        )
        self._informers = {
            r.kind: Informer(
                r, self._store, self._stop, self._settings, self._seen, self._progressed
            )
            for r in resources
        }

    @classmethod
    def from_environment(
        cls, *, kubeconfig: str | None = None, context: str | None = None, **kwargs: Any
    ) -> KubeCluster:
        """In-cluster service account config, else the kubeconfig (``$KUBECONFIG`` or ~/.kube)."""
        return cls(api_client_from_environment(kubeconfig, context), **kwargs)

    # ---- ClusterView ----

    def get_namespace(self, name: str) -> Mapping[str, Any] | None:
        return self._store.get_namespace(name)

    def counted_names(self, namespace: str, counter: ObjectCounter) -> Set[str]:
        return self._store.counted_names(namespace, counter)

    def sample(self, limit: int) -> Sequence[Mapping[str, Any]]:
        return self._store.sample(limit)

    def snapshot(self) -> Sequence[Mapping[str, Any]]:
        return self._store.snapshot()

    # ---- counters and reservations ----

    def register_counters(self, counters: Iterable[ObjectCounter]) -> None:
        """Index exactly these counters (startup and every policy reload), from the cache."""
        counters = list(counters)
        self._store.set_counters(counters)
        log.info("cluster: indexing %d limit counters", len(counters))

    def attach_reservations(self, reservations: ObservationSink | None) -> None:
        """Tell ``reservations`` about every object the cache sees appear."""
        self._reservations = reservations

    def _seen(self, kind: str, event_type: str, obj: dict[str, Any], appeared: bool) -> None:
        sink = self._reservations
        if sink is None:
            return
        metadata = obj["metadata"]
        namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
        counted_by = self._store.counted_by(kind, namespace, name)
        # ADDED settles a CREATE's reservation. A MODIFIED event or a re-LIST settles one
        # only once the object counts: an unrelated update, or a LIST taken before the
        # admitted UPDATE landed, must not release the place early (the deadline still does).
        if event_type != "ADDED" and not counted_by:
            return
        try:
            sink.observed(kind, namespace, name, appeared=appeared, counted_by=counted_by)
        except Exception:  # a faulty sink must not stop the watch
            log.exception("reservations.observed failed")

    def _progressed(self, kind: str) -> None:
        sink = self._reservations
        if sink is not None:
            sink.caught_up(kind)

    # ---- lifecycle and readiness ----

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        for kind, informer in self._informers.items():
            thread = threading.Thread(
                target=informer.run, name=f"edgewarden-watch-{kind.lower()}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        watchdog = threading.Thread(
            target=self._watchdog, name="edgewarden-watch-watchdog", daemon=True
        )
        watchdog.start()
        self._threads.append(watchdog)

    def _watchdog(self) -> None:
        # A stalled stream blocks its thread in a read; only another thread can cut it.
        interval = min(1.0, self._settings.stall_seconds / 4)
        while not self._stop.wait(interval):
            for informer in self._informers.values():
                try:
                    informer.check_stall()
                except Exception:  # never let the watchdog die
                    log.exception("%s stall check failed", informer.kind)

    def stop(self, timeout: float = 5.0) -> None:
        """End the watch threads: the stop flag, then cut any open stream so reads return."""
        self._stop.set()
        for informer in self._informers.values():
            informer.shutdown_stream()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s did not stop within %.1fs", thread.name, timeout)
        self._threads = []

    @property
    def synced(self) -> bool:
        """True once every kind has been listed once."""
        return all(i.synced.is_set() for i in self._informers.values())

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Block until synced or ``timeout`` seconds pass; returns ``synced``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for informer in self._informers.values():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not informer.synced.wait(left):
                return False
        return True

    def state(self) -> dict[str, dict[str, Any]]:
        """Per kind: synced, objects, last_event_age (s), stale, relists, errors, stalls,
        retry_delay (s), resource_version."""
        return {kind: informer.state() for kind, informer in self._informers.items()}
