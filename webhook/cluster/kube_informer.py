"""One list+watch loop per kind, feeding the watch cache (the pattern of client-go's reflector).

LIST (paged) gives the objects and a resourceVersion; WATCH from there applies ADDED,
MODIFIED, DELETED and BOOKMARK events. A 410 Gone (an HTTP 410, or the ERROR event with
code 410 the API server sends inside a watch stream) means the history is compacted: LIST
again. Any other failure reconnects from the last resourceVersion with exponential backoff
and jitter; the backoff starts over once a watch has been established, so a connection
that drops now and then reconnects at once every time, not ever more slowly. Nothing here
ever raises out of ``run``: the webhook keeps serving from the last known state while the
connection is down.

Progress is the time of the last event, bookmark or LIST. The API server sends a bookmark
to every watch that allows them about once a minute (and 2 s before the watch's timeout),
so a healthy quiet watch still shows progress; a watch with no progress for
``stall_seconds`` is stalled (a half-open connection, a stuck proxy): the watchdog
(``check_stall``) cuts it and the loop LISTs again instead of waiting for the read timeout.

The API functions of the ``kubernetes`` client are called with ``_preload_content=False``
and the stream is parsed here rather than through ``kubernetes.watch.Watch``: policies need
plain dicts (Watch deserializes every event into models, which costs time and fails on
objects a model's client-side validation rejects), and the ERROR/410 and bookmark handling
must be explicit (Watch retries a 410 once on its own and loses the event otherwise).
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from webhook.cluster.backoff import backoff_delay
from webhook.cluster.list_pages import continue_token
from webhook.errors import one_line
from webhook.policy.model.kinds import KindRef

log = logging.getLogger("edgewarden.cluster")

HTTP_GONE = 410
# The message of the 410 a kind the API server does not serve answers its watch with
# (kube_kinds.AbsentIsEmpty): a relist after the back-off, once the CRD may be installed,
# not news worth a log line every few seconds (the kind's absence was warned about once).
KIND_NOT_SERVED = "the API server does not serve this kind (yet)"
MAX_LIST_PAGES = 10_000  # bounds the paging loop: 5 million objects at the default page size
# A continue token can expire (410) while a long LIST is paged: the LIST starts over, at
# once this many times in a row, then the informer's backoff takes over.
MAX_LIST_RESTARTS = 3

# (kind, event type "LISTED" | "ADDED" | "MODIFIED", object, appeared), after the store is
# updated; ``appeared`` is True when the cache did not hold the object before. The object is
# what the API server sent (a LISTED one: its namespace and name alone).
SeenHook = Callable[[str, str, dict[str, Any], bool], None]
# (kind): the cache of ``kind`` is current as of now (an event, a bookmark or a LIST).
ProgressHook = Callable[[str], None]


class ListChunks(Protocol):
    """One LIST being taken page by page: the store cuts and indexes each page as it
    arrives, and swaps the whole LIST in at ``finish`` (readers never see half of one)."""

    @property
    def size(self) -> int:
        """Objects added so far."""
        ...

    @property
    def seen(self) -> Iterable[tuple[str, str]]:
        """(namespace, name) of every object added."""
        ...

    def decode(self, data: bytes) -> dict[str, Any]:
        """One page's body as JSON, decoded to what ``add`` needs of it (called in the
        pages' order, each just before its ``add``)."""
        ...

    def add(self, items: Iterable[Mapping[str, Any]]) -> None:
        """One page, its items as the API server sent them (as ``decode`` gave them)."""
        ...

    def finish(self) -> Container[tuple[str, str]]:
        """Swap the LIST in; the (namespace, name) of objects not held before."""
        ...


class InformerStore(Protocol):
    """Where an informer keeps its kind: the watch cache (KubeStore), or the store of
    another kind's consumer (the Policy and PolicyException objects, webhook.controllers).
    Objects are handed over as the API server sent them; the store decides what to keep."""

    def begin_list(self, kind: str) -> ListChunks:
        """A fresh LIST of ``kind``, to be added page by page."""
        ...

    def upsert(self, kind: str, obj: dict[str, Any]) -> bool:
        """Store ``obj``; True when it was not held before (it appeared)."""
        ...

    def delete(self, kind: str, namespace: str, name: str) -> None: ...

    def count(self, kind: str) -> int: ...


@dataclass(frozen=True)
class Resource:
    """A watched kind and the client function that lists or watches it cluster-wide.

    ``key`` is what the store files objects under: the kind's key (see
    webhook/policy/model/kinds.py) unless the caller names another."""

    ref: KindRef
    list_func: Callable[..., Any]
    key: str = ""

    @property
    def kind(self) -> str:
        return self.key or self.ref.key

    @property
    def api_version(self) -> str:
        return self.ref.api_version

    @property
    def carried_kind(self) -> str:
        """The ``kind`` its objects carry (``Gateway`` for ``Gateway.networking.istio.io``)."""
        return self.ref.kind


@dataclass(frozen=True)
class InformerSettings:
    watch_timeout_seconds: int = 240  # server-side end of each watch; then re-watch
    connect_timeout: float = 10.0
    list_timeout: float = 60.0
    # Larger than client-go's 500: each page costs the API server (and etcd, when it
    # serves the LIST) a round of its own. On 100,000 Services (benchmarks/cache_scale.py,
    # 2026-12-06) ready took 7.1 s with pages of 1,000, 5.8 s with 3,000, 5.5-5.6 s with
    # 5,000 and 5.2 s with 8,000, for an RSS once synced of 172, 186, 192 and 194 MiB:
    # the page bodies glibc kept once freed (170 MiB with 5,000 since serve has them
    # returned, webhook/serve/allocator.py). Three pages at most are in memory at once.
    page_size: int = 5000
    backoff_initial: float = 0.5
    # Short enough that a cache is current again within seconds of an API-server outage
    # ending; the jitter keeps many replicas from reconnecting in lockstep.
    backoff_max: float = 8.0
    # No event or bookmark for this long: the watch is stalled, LIST again. Above the
    # watch's own timeout (before which the API server sends a bookmark), far below the
    # read timeout (watch timeout + 30 s).
    stall_seconds: float = 90.0
    # A cache with no progress for longer than this is stale (state, metrics, /readyz) and
    # is not answered from (webhook/cluster/kube.py: synced is False meanwhile).
    stale_after_seconds: float = 180.0


class WatchExpired(Exception):
    """The resourceVersion is too old (410 Gone): the cache must LIST again."""


class WatchFailed(Exception):
    """The API server sent an ERROR event other than 410."""


class WatchStalled(Exception):
    """No event or bookmark arrived within ``stall_seconds``: the stream was cut."""


class ListExpired(Exception):
    """A continue token expired (410 Gone) while a LIST was paged: LIST from the start."""


def describe(error: BaseException) -> str:
    """A one-line summary for logs: never a response body or an object."""
    if isinstance(error, ApiException):
        return f"HTTP {error.status} {error.reason}"
    return one_line(error)


class Informer:
    """Keeps ``store`` current for one kind until ``stop`` is set."""

    def __init__(
        self,
        resource: Resource,
        store: InformerStore,
        stop: threading.Event,
        settings: InformerSettings,
        on_seen: SeenHook | None = None,
        on_progress: ProgressHook | None = None,
    ) -> None:
        self.resource = resource
        self._store = store
        self._stop = stop
        self._settings = settings
        self._on_seen = on_seen
        self._on_progress = on_progress
        self.synced = threading.Event()
        self.resource_version: str | None = None
        self.relists = 0
        self.errors = 0
        self.stalls = 0
        self.failures = 0  # in a row; the backoff grows with it
        self.retry_delay = 0.0  # the last backoff waited, in seconds
        # time.monotonic() of the last event, bookmark or LIST
        self.last_event: float | None = None
        self._applied = 0  # watch events applied, to tell a stuck loop from progress
        self._resp: Any = None
        self._resp_lock = threading.Lock()
        self._stalled = False  # set by the watchdog when it cuts a silent stream
        # Set by request_relist: what the store holds lacks something (new fields to keep);
        # not fresh until the LIST that follows has been swapped in.
        self._relist_due = threading.Event()
        self._relist_generation = 0  # request_relist calls so far
        self.list_restarts = 0  # LISTs started over after a continue token expired
        self._opened_at: float | None = None  # when the current watch was accepted
        self._lines = 0  # events the current watch carried

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def settings(self) -> InformerSettings:
        return self._settings

    def fresh(self, now: float) -> bool:
        """Listed, and with progress within ``stale_after_seconds`` of ``now``
        (time.monotonic()): what it holds may be answered from."""
        last = self.last_event
        return (self.synced.is_set() and not self._relist_due.is_set() and last is not None
                and now - last <= self._settings.stale_after_seconds)

    def age(self) -> float | None:
        """Seconds since the last event, bookmark or LIST (None before the first LIST)."""
        return None if self.last_event is None else time.monotonic() - self.last_event

    def state(self) -> dict[str, Any]:
        age = self.age()
        return {
            "synced": self.synced.is_set() and not self._relist_due.is_set(),
            "objects": self._store.count(self.kind),
            "last_event_age": age,
            "stale": age is not None and age > self._settings.stale_after_seconds,
            "relists": self.relists,
            "list_restarts": self.list_restarts,
            "errors": self.errors,
            "stalls": self.stalls,
            "retry_delay": self.retry_delay,
            "resource_version": self.resource_version,
        }

    # ---- the loop ----

    def run(self) -> None:
        expired_in_a_row = 0
        while not self._stop.is_set():
            applied_before = self._applied
            self._opened_at = None
            self._lines = 0
            self._stalled = False  # a cut that raced the end of the last watch is moot
            try:
                if self.resource_version is None or self._relist_due.is_set():
                    self._relist()
                elif self._progress_overdue():
                    # No event or bookmark for too long, and the last watch ended without
                    # one (or the connection was down): what we hold may be stale.
                    self._note_stall("no event or bookmark")
                    self._relist()
                quick_empty = self._watch()
                cut_for_relist = self._relist_due.is_set()
                self.failures = self.failures + 1 if quick_empty and not cut_for_relist else 0
                expired_in_a_row = 0
            except WatchStalled:
                self._note_stall("the watch went silent")
                self.resource_version = None
                self.failures = 0  # LIST again at once
            except (WatchExpired, ApiException) as error:
                if isinstance(error, ApiException) and error.status != HTTP_GONE:
                    self._failed(error)
                else:
                    not_served = isinstance(error, WatchExpired) and \
                        str(error) == KIND_NOT_SERVED
                    log.log(logging.DEBUG if not_served else logging.INFO,
                            "%s watch expired (410 Gone); listing again", self.kind)
                    self.resource_version = None
                    self.relists += 1
                    # The first 410 relists at once; 410s with no progress between back off.
                    progressed = self._applied != applied_before
                    expired_in_a_row = 1 if progressed else expired_in_a_row + 1
                    self.failures = expired_in_a_row - 1
            except Exception as error:
                if self._stop.is_set():
                    break
                if self._stalled:  # the watchdog cut the stream: not the server's failure
                    self._stalled = False
                    self._note_stall("the watch went silent")
                    self.resource_version = None
                    self.failures = 0
                elif self._relist_due.is_set() and self._opened_at is not None:
                    self.failures = 0  # request_relist cut the watch: LIST at once
                else:
                    self._failed(error)
            if self.failures and not self._stop.is_set():
                delay = backoff_delay(
                    self.failures, self._settings.backoff_initial, self._settings.backoff_max
                )
                self.retry_delay = delay
                self._stop.wait(delay)
        log.debug("%s informer stopped", self.kind)

    def _established(self) -> bool:
        """The watch that just ended had been established: the server accepted it and it
        carried events or lasted a while (a server that accepts and drops at once has not)."""
        opened = self._opened_at
        return opened is not None and (self._lines > 0 or time.monotonic() - opened >= 1.0)

    def _failed(self, error: BaseException) -> None:
        self.errors += 1
        if self._established():
            # A drop after a working watch is a new incident, not the next attempt of the
            # last one: without this reset every drop waited longer (0.2 s, then 23 s by
            # the eighth) while the cache stayed behind.
            self.failures = 0
        self.failures += 1
        failures = self.failures
        # A long outage logs its first failure and then every tenth, not every attempt.
        level = logging.WARNING if failures == 1 or failures % 10 == 0 else logging.DEBUG
        log.log(
            level,
            "%s list/watch failed %d time(s) in a row (%s); reconnecting",
            self.kind,
            failures,
            describe(error),
        )

    # ---- stalls ----

    def _progress_overdue(self) -> bool:
        age = self.age()
        return age is not None and age > self._settings.stall_seconds

    def _note_stall(self, why: str) -> None:
        self.stalls += 1
        self.relists += 1
        log.warning(
            "%s cache: %s for %.0f s (stall limit %.0f s); listing again",
            self.kind, why, self.age() or 0.0, self._settings.stall_seconds,
        )

    def check_stall(self) -> bool:
        """Cut the open watch when it has shown no progress for ``stall_seconds`` (called
        by the watchdog thread); True when it did."""
        with self._resp_lock:
            watching = self._resp is not None
        if not watching or self._stalled or not self._progress_overdue():
            return False
        self._stalled = True
        self.shutdown_stream()
        return True

    def request_relist(self) -> None:
        """LIST again soon (the store must keep more of each object than it holds): cut
        the open watch, and count as not fresh until that LIST is swapped in."""
        self._relist_generation += 1
        self._relist_due.set()
        self.shutdown_stream()

    def shutdown_stream(self) -> None:
        """Unblock a watch read from another thread (stop must not wait out a timeout)."""
        with self._resp_lock:
            resp = self._resp
        if resp is None:
            return
        try:
            if hasattr(resp, "shutdown"):  # urllib3 >= 2.3
                resp.shutdown()
            else:
                sock = getattr(getattr(resp, "connection", None), "sock", None)
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
        except Exception:  # the stream may already be closing; nothing to do then
            log.debug("%s watch stream already closed", self.kind)

    # ---- LIST ----

    def _relist(self) -> None:
        """LIST in pages into the store; a continue token that expires on the way (410)
        starts the LIST over, as client-go's reflector does."""
        for restart in range(MAX_LIST_RESTARTS + 1):
            try:
                self._list_once()
                return
            except ListExpired:
                self.list_restarts += 1
                log.info("%s list: the continue token expired (410 Gone); listing again "
                         "from the start", self.kind)
                if restart == MAX_LIST_RESTARTS:
                    # The 410 path of run(): relist after the backoff of expiries in a row.
                    raise WatchExpired("continue token expired") from None
                if self._stop.is_set():
                    return

    def _list_once(self) -> None:
        # A relist requested while this LIST runs must LIST again: only the requests made
        # before it started are answered by it.
        generation = self._relist_generation
        chunks = self._store.begin_list(self.kind)
        resource_version: str | None = None
        kind, api_version = self.resource.carried_kind, self.resource.api_version
        with _PageReader(self) as bodies:
            for body in bodies:
                page = chunks.decode(body)
                del body
                metadata = page.get("metadata") or {}
                resource_version = metadata.get("resourceVersion") or resource_version
                items = page.get("items") or []
                for item in items:  # LIST items carry neither; a watch event's object does
                    item["kind"], item["apiVersion"] = kind, api_version
                chunks.add(items)
                del page, items  # the page's objects go now: only their records are kept
                if self._stop.is_set():
                    return
        if not resource_version:
            raise WatchFailed(f"{self.kind} list carried no resourceVersion")
        first = not self.synced.is_set()
        appeared = chunks.finish()
        self.resource_version = str(resource_version)
        if self._relist_generation == generation:
            self._relist_due.clear()
        if first:
            log.info("%s cache synced: %d objects", self.kind, chunks.size)
        self.synced.set()
        if self._on_seen is not None:
            for namespace, name in chunks.seen:
                # At the first LIST everything is new to us; nothing has newly appeared.
                self._on_seen(self.kind, "LISTED",
                              {"metadata": {"namespace": namespace, "name": name}},
                              not first and (namespace, name) in appeared)
        self._progressed()

    def _progressed(self) -> None:
        # After the objects were handed on: a reservation must see its object appear
        # before it sees the cache move past its deadline.
        self.last_event = time.monotonic()
        if self._on_progress is not None:
            self._on_progress(self.kind)

    # ---- WATCH ----

    def _watch(self) -> bool:
        """Follow one watch until it ends; True when it ended at once with nothing in it."""
        started = time.monotonic()
        timeout = self._settings.watch_timeout_seconds
        resp = self.resource.list_func(
            watch=True,
            resource_version=self.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout,
            _preload_content=False,
            # The read timeout outlives the server-side timeout so a quiet watch is not an error.
            _request_timeout=(self._settings.connect_timeout, timeout + 30),
        )
        self._opened_at = time.monotonic()
        with self._resp_lock:
            self._resp = resp
        try:
            # A stop or relist request that came before the stream was kept cut nothing.
            if self._stop.is_set() or self._relist_due.is_set():
                return False
            for line in iter_resp_lines(resp):
                if self._stop.is_set():
                    return False
                if line:
                    self._lines += 1
                    self._apply(line)
        finally:
            with self._resp_lock:
                self._resp = None
            resp.close()
            resp.release_conn()
        if self._stalled:
            self._stalled = False
            raise WatchStalled(self.kind)
        if time.monotonic() - started >= timeout - 1:
            # The server ended the watch at its timeout, as asked: the connection was alive
            # and nothing was missed until now.
            self._progressed()
        # A server that ends watches at once would otherwise be hammered in a tight loop.
        return self._lines == 0 and time.monotonic() - started < 1.0

    def _apply(self, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            log.warning("%s watch sent a line that is not JSON; skipped", self.kind)
            return
        event_type = event.get("type")
        obj = event.get("object") or {}
        if event_type == "ERROR":
            if obj.get("code") == HTTP_GONE:
                raise WatchExpired(str(obj.get("message", "")))
            raise WatchFailed(f"{obj.get('code')} {obj.get('reason')}: {obj.get('message')}")
        metadata = obj.get("metadata") or {}
        if event_type in ("ADDED", "MODIFIED"):
            appeared = self._store.upsert(self.kind, obj)
            if self._on_seen is not None:
                self._on_seen(self.kind, event_type, obj, appeared)
        elif event_type == "DELETED":
            self._store.delete(self.kind, metadata.get("namespace", ""), metadata.get("name", ""))
        elif event_type != "BOOKMARK":
            log.warning("%s watch sent an unknown event type %r; skipped", self.kind, event_type)
            return
        resource_version = metadata.get("resourceVersion")
        if resource_version:
            self.resource_version = str(resource_version)
        self._applied += 1
        self._progressed()


_END = object()


class _PageReader:
    """The bodies of one paged LIST, read by a thread of its own while the informer decodes,
    cuts and indexes the page before: the API server (another process) encodes page n+1
    while page n is handled, instead of each side waiting for the other. The next page is
    asked for as soon as a body has arrived, its continue token read without decoding the
    page (list_pages.continue_token). At most one body waits read ahead, which bounds the
    memory of a LIST at three pages (one handled, one waiting, one being read)."""

    def __init__(self, informer: Informer) -> None:
        self._informer = informer
        self._bodies: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._done = threading.Event()  # the consumer left: the reader stops
        self._thread = threading.Thread(
            target=self._read, name=f"edgewarden-list-{informer.kind.lower()}", daemon=True)

    def __enter__(self) -> Iterator[bytes]:
        self._thread.start()
        return self._iterate()

    def __exit__(self, *exc: object) -> None:
        # Not joined: a reader blocked in a request sees this when it returns, and its page
        # is dropped (a stop must not wait out a LIST's timeout).
        self._done.set()

    def _iterate(self) -> Iterator[bytes]:
        while True:
            body = self._bodies.get()
            if body is _END:
                return
            if isinstance(body, BaseException):
                raise body
            yield body

    def _hand_over(self, body: Any) -> bool:
        while not self._done.is_set():
            try:
                self._bodies.put(body, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        informer = self._informer
        settings = informer.settings
        token: str | None = None
        try:
            for _ in range(MAX_LIST_PAGES):
                try:
                    resp = informer.resource.list_func(
                        limit=settings.page_size,
                        _continue=token,
                        _preload_content=False,
                        _request_timeout=(settings.connect_timeout, settings.list_timeout),
                    )
                except ApiException as error:
                    if error.status == HTTP_GONE and token is not None:
                        raise ListExpired() from None
                    raise
                try:
                    body: bytes = resp.data
                finally:
                    resp.release_conn()
                token = continue_token(body)
                if not self._hand_over(body):
                    return
                del body
                if token is None:
                    break
            self._hand_over(_END)
        except BaseException as error:  # the informer's loop judges it, as before
            self._hand_over(error)
