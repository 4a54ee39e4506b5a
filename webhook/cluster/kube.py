"""The cluster as the Kubernetes API shows it: a list+watch cache of Namespaces and of the
kinds the loaded policies match (``watch_kinds``; Services and Ingresses until told),
cluster-wide, with per-namespace counted-name indexes for every limit.

Admissions read it through ``get_namespace``/``counted_names``: dict lookups, no I/O, no
LIST on the admission path. One background thread per kind (the ``kubernetes`` client is
synchronous) keeps it current, and another, the watchdog, cuts a watch that has gone
silent (see kube_informer). A policy reload that names a new kind starts its informer
(the cache is not synced until it has listed); a kind no policy names any longer is
dropped. ``synced`` turns true once each kind was listed once, and stays true while a
watch reconnects (serving slightly stale state beats refusing every admission while the
API server is briefly unreachable); ``state()`` says per kind how old the cache is, and
``stale`` once that passes ``InformerSettings.stale_after_seconds``.

Typical use::

    cluster = KubeCluster.from_environment()
    cluster.attach_reservations(reservations)
    cluster.keep_fields(fields_read(policies.policies))
    cluster.watch_kinds(policies.kinds())
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
from webhook.cluster.kube_informer import Informer, InformerSettings
from webhook.cluster.kube_kinds import kind_resource
from webhook.cluster.kube_store import SAMPLE_PER_KIND, KubeStore
from webhook.policy.load.reads import FieldReads
from webhook.policy.model.kinds import NAMESPACE, SHORT_NAMES, KindRef
from webhook.policy.model.ports import KeyIndex, ObjectCounter

log = logging.getLogger("edgewarden.cluster")

# What the cache follows until the policies say otherwise.
DEFAULT_KINDS = (SHORT_NAMES["Service"], SHORT_NAMES["Ingress"])


class KubeCluster:
    """A ``ClusterView`` backed by list+watch caches of the Kubernetes API."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        settings: InformerSettings | None = None,
        reservations: ObservationSink | None = None,
        sample_size: int = SAMPLE_PER_KIND,
    ) -> None:
        self._api_client = api_client
        # Whole objects kept per kind for the reload canary (--canary-sample judges them).
        self._store = KubeStore(sample_size=sample_size)
        self._stop = threading.Event()
        self._settings = settings or InformerSettings()
        self._reservations = reservations
        self._threads: list[threading.Thread] = []
        self._started = False
        self._kinds_lock = threading.Lock()
        # kind key -> (its ref, informer, the informer's own stop flag)
        self._informers: dict[str, Informer] = {}
        self._refs: dict[str, KindRef] = {}
        self._informer_stops: dict[str, threading.Event] = {}
        self.watch_kinds(DEFAULT_KINDS)

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

    def key_holders(
        self, index: KeyIndex, key: str
    ) -> Mapping[str, Set[tuple[str, str, str]]]:
        return self._store.key_holders(index, key)

    def sample(self, limit: int) -> Sequence[Mapping[str, Any]]:
        return self._store.sample(limit)

    def namespaces(self) -> Sequence[Mapping[str, Any]]:
        return self._store.namespaces()

    def snapshot(self) -> Sequence[Mapping[str, Any]]:
        return self._store.snapshot()

    # ---- counters and reservations ----

    def register_counters(self, counters: Iterable[ObjectCounter]) -> None:
        """Index exactly these counters (startup and every policy reload), from the cache."""
        counters = list(counters)
        self._store.set_counters(counters)
        log.info("cluster: indexing %d limit counters", len(counters))

    def register_key_indexes(self, indexes: Iterable[KeyIndex]) -> None:
        """Keep key -> holders for exactly these ``unique`` indexes, from the cache."""
        indexes = list(indexes)
        self._store.set_key_indexes(indexes)
        if indexes:
            log.info("cluster: indexing the keys of %d unique policies", len(indexes))

    def keep_fields(self, reads: FieldReads) -> None:
        """Keep what ``reads`` says of each object (start-up and every reload, before
        ``watch_kinds``). Records that keep more are cut at their kind's next LIST; a kind
        whose records lack a field now read is listed again, and counts as not synced until
        then (as a kind newly watched does): nothing is judged on fields the cache lacks."""
        behind = set(self._store.set_field_reads(reads))
        with self._kinds_lock:
            informers = list(self._informers.items())
        for key, informer in informers:
            # One still taking its first LIST may be cutting to the fields read before.
            if key in behind or not informer.synced.is_set():
                informer.request_relist()
                if key in behind:
                    log.info("cluster: the policies read more of %s objects than the cache "
                             "holds; listing them again", key)

    def watch_kinds(self, kinds: Iterable[KindRef]) -> None:
        """Follow exactly ``kinds`` and Namespaces: new kinds get an informer (started at
        once when the cache runs), kinds no longer named are stopped and forgotten."""
        wanted = {ref.key: ref for ref in (NAMESPACE, *kinds)}
        with self._kinds_lock:
            for key in [k for k in self._informers if k not in wanted]:
                informer = self._informers.pop(key)
                self._refs.pop(key, None)
                self._informer_stops.pop(key).set()
                informer.shutdown_stream()
                self._store.forget(key)
                log.info("cluster: no policy matches %s any longer; stopped watching it", key)
            for key, ref in wanted.items():
                known = self._refs.get(key)
                if known is not None and known.version == ref.version:
                    continue
                if known is not None:  # another version to watch: start over
                    self._informer_stops.pop(key).set()
                    self._informers.pop(key).shutdown_stream()
                stop = threading.Event()
                self._store.set_kind(key, ref.kind, ref.api_version)
                informer = Informer(kind_resource(self._api_client, ref), self._store, stop,
                                    self._settings, self._seen, self._progressed)
                self._informers[key], self._refs[key], self._informer_stops[key] = (
                    informer, ref, stop)
                if self._started:
                    self._start_informer(key, informer)
                    log.info("cluster: watching %s for the policies", key)

    def _start_informer(self, key: str, informer: Informer) -> None:
        thread = threading.Thread(
            target=informer.run, name=f"edgewarden-watch-{key.lower()}", daemon=True
        )
        thread.start()
        self._threads.append(thread)

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
        with self._kinds_lock:
            if self._started:
                return
            self._started = True
            self._stop.clear()
            for key, informer in self._informers.items():
                self._informer_stops[key].clear()
                self._start_informer(key, informer)
        watchdog = threading.Thread(
            target=self._watchdog, name="edgewarden-watch-watchdog", daemon=True
        )
        watchdog.start()
        self._threads.append(watchdog)

    def _watchdog(self) -> None:
        # A stalled stream blocks its thread in a read; only another thread can cut it.
        interval = min(1.0, self._settings.stall_seconds / 4)
        while not self._stop.wait(interval):
            for informer in list(self._informers.values()):
                try:
                    informer.check_stall()
                except Exception:  # never let the watchdog die
                    log.exception("%s stall check failed", informer.kind)

    def stop(self, timeout: float = 5.0) -> None:
        """End the watch threads: the stop flag, then cut any open stream so reads return."""
        self._stop.set()
        with self._kinds_lock:
            self._started = False
            for stop in self._informer_stops.values():
                stop.set()
            informers = list(self._informers.values())
        for informer in informers:
            informer.shutdown_stream()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s did not stop within %.1fs", thread.name, timeout)
        self._threads = []

    @property
    def synced(self) -> bool:
        """True while every kind has been listed and none is stale: an answer from a cache
        older than ``stale_after_seconds`` would be a guess, so the policies that read it
        fail by their failurePolicy meanwhile, and /readyz says not ready."""
        now = time.monotonic()
        return all(i.fresh(now) for i in list(self._informers.values()))

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Block until synced or ``timeout`` seconds pass; returns ``synced``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for informer in list(self._informers.values()):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not informer.synced.wait(left):
                return False
        return True

    def state(self) -> dict[str, dict[str, Any]]:
        """Per kind: synced, objects, last_event_age (s), stale, relists, errors, stalls,
        retry_delay (s), resource_version."""
        return {kind: informer.state() for kind, informer in list(self._informers.items())}
