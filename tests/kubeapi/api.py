"""``KubeApi``: the Kubernetes API double the tests share, and what a test does with it.

A test seeds and changes objects directly (``create``, ``update``, ``delete``: these are
"someone else" writing, neither recorded nor refused), switches faults on, and asserts on
the recorded requests. The code under test talks to it over HTTPS through a kubeconfig.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from . import verbs
from .faults import HANG_UP, Faults
from .recording import Request
from .resources import DEFAULT_RESOURCES, Catalog, Resource, Route
from .store import Object, Store, key_of
from .tls import serving_tls
from .wire import Server

ResourceName = str | Resource


class KubeApi:
    def __init__(self, resources: Iterable[Resource] = DEFAULT_RESOURCES, *, tls: bool = True):
        self.catalog = Catalog(resources)
        self.store = Store(self.catalog)
        self.faults = Faults(self.store.cond)
        self._tls = serving_tls() if tls else None
        self._requests: list[Request] = []
        self._requests_lock = threading.Lock()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----

    def start(self) -> KubeApi:
        """Serve; after a ``stop``, on the same port again (an API server restarted)."""
        context = self._tls.server_context() if self._tls else None
        port = self._server.server_address[1] if self._server is not None else 0
        self.faults.stopped = False
        self._server = Server(self, context, port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="kubeapi-double", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.faults.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> KubeApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the double first"
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    @property
    def ca_pem(self) -> bytes | None:
        """The CA that signed the serving certificate (None over plain HTTP)."""
        return self._tls.ca_pem if self._tls else None

    def add_resource(self, resource: Resource) -> None:
        """Serve one more kind (a Gateway API kind, a CRD)."""
        self.catalog.add(resource)

    # ---- state, as another writer changes it ----

    def resource(self, name: ResourceName) -> Resource:
        return name if isinstance(name, Resource) else self.catalog.by_plural(name)

    def create(self, obj: Object) -> Object:
        resource = self.catalog.of(obj)
        with self.store.cond:
            if self.store.get(resource, key_of(obj)) is not None:
                raise ValueError(f"{resource.kind} {key_of(obj)} exists already; update() it")
            return self.store.write(resource, "ADDED", obj)

    def update(self, obj: Object) -> Object:
        """Store ``obj`` as the new state of an existing object (its resourceVersion is ignored)."""
        resource = self.catalog.of(obj)
        with self.store.cond:
            if self.store.get(resource, key_of(obj)) is None:
                raise ValueError(f"{resource.kind} {key_of(obj)} does not exist; create() it")
            return self.store.write(resource, "MODIFIED", obj)

    def delete(self, resource: ResourceName, name: str, *, namespace: str | None = None) -> None:
        found = self.resource(resource)
        verbs.delete(self.store, Route(found, namespace, name), None)

    def get(self, resource: ResourceName, name: str, *, namespace: str | None = None) -> Object:
        """A copy of the stored object; KeyError when there is none."""
        found = self.store.get(self.resource(resource), (namespace or "", name))
        if found is None:
            raise KeyError(f"no {self.resource(resource).kind} {namespace or ''}/{name}")
        return found

    def exists(self, resource: ResourceName, name: str, *, namespace: str | None = None) -> bool:
        return self.store.get(self.resource(resource), (namespace or "", name)) is not None

    def objects(self, resource: ResourceName, *, namespace: str | None = None) -> list[Object]:
        return self.store.items(self.resource(resource), namespace)

    @property
    def revision(self) -> int:
        """The newest resourceVersion handed out, across all kinds."""
        return self.store.revision

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Changes made inside reach open watches together, after the block."""
        with self.store.cond:
            yield

    def bookmark(self, resource: ResourceName) -> int:
        """A BOOKMARK event at a new resourceVersion; returns it."""
        return self.store.bookmark(self.resource(resource))

    def compact(self) -> None:
        """Forget the event history: a watch from an older resourceVersion gets 410 Gone."""
        self.store.compact()

    # ---- faults ----

    def forbid(self, verb: str | None = None, resource: str | None = None) -> None:
        """Answer 403 Forbidden to ``verb`` (every verb when None) on ``resource`` (or all)."""
        self.faults.refuse(verb, resource, 403, "Forbidden")

    def fail(
        self, verb: str | None = None, resource: str | None = None, *, code: int = 500,
        reason: str = "InternalError",
    ) -> None:
        """Answer ``code`` to ``verb`` on ``resource`` (as forbid)."""
        self.faults.refuse(verb, resource, code, reason)

    def hang_up(self, verb: str | None = None, resource: str | None = None) -> None:
        """Matching requests get no answer: the connection closes, as when a proxy or the
        API server dies mid-request (urllib3 raises ProtocolError, not an ApiException)."""
        self.faults.refuse(verb, resource, HANG_UP, "HangUp")

    def clear_refusals(self) -> None:
        self.faults.clear_refusals()

    @property
    def gone_as_http(self) -> bool:
        return self.faults.gone_as_http

    @gone_as_http.setter
    def gone_as_http(self, value: bool) -> None:
        """A watch from a compacted resourceVersion: plain HTTP 410, not an ERROR event."""
        self.faults.gone_as_http = value

    @property
    def max_page_size(self) -> int | None:
        return self.faults.max_page_size

    @max_page_size.setter
    def max_page_size(self, value: int | None) -> None:
        """List pages hold at most this many items, whatever ``limit`` the client asks."""
        self.faults.max_page_size = value

    def fail_continued_lists(self, times: int = 1, *, code: int = 410,
                             reason: str = "Expired") -> None:
        """The next ``times`` list requests for a page after the first (those carrying a
        continue token) fail with ``code``: 410 Expired by default, as when the token
        outlived etcd's compaction; a 500 is a LIST failing midway."""
        self.faults.refuse_continued_lists(code, reason, times)

    def expire_watches(self, code: int = 410, reason: str = "Expired") -> None:
        """Open watches end with an ERROR event carrying a Status (410 Gone by default)."""
        self.faults.expire_watches(code, reason)

    def drop_watches(self) -> None:
        """Open watches lose their connection mid-stream."""
        self.faults.drop_watches()

    @contextmanager
    def stalled_watches(self) -> Iterator[None]:
        """Inside the block watches stay open but deliver nothing; after it, all at once."""
        self.faults.stall_watches(True)
        try:
            yield
        finally:
            self.faults.stall_watches(False)

    # ---- recorded requests ----

    def record(self, request: Request) -> None:
        with self._requests_lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[Request]:
        """Every request received so far, oldest first (a copy)."""
        with self._requests_lock:
            return list(self._requests)

    def requests_for(self, verb: str | None = None, resource: str | None = None) -> list[Request]:
        return [
            r
            for r in self.requests
            if verb in (None, r.verb) and resource in (None, r.plural)
        ]

    def lists(self, resource: str) -> list[Request]:
        return self.requests_for("list", resource)

    def watches(self, resource: str) -> list[Request]:
        return self.requests_for("watch", resource)

    def writes(self) -> list[Request]:
        """The requests that were not reads (not GET)."""
        return [r for r in self.requests if r.method != "GET"]

