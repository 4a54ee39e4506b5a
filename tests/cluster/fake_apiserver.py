"""A local HTTP server that speaks the Kubernetes list/watch protocol, for the watch cache tests.

What it imitates of the API server:
- ``GET /api/v1/namespaces``, ``/api/v1/services``, ``/apis/networking.k8s.io/v1/ingresses``
  answer ``{kind: XList, apiVersion, metadata: {resourceVersion, continue?}, items}``
  (items without kind/apiVersion, as the real server sends them), paged by ``limit``.
- ``?watch=true&resourceVersion=N`` streams newline-delimited JSON events
  ``{"type": ..., "object": ...}`` with chunked transfer: every change after N, then live
  changes until ``timeoutSeconds``; BOOKMARK events only with ``allowWatchBookmarks=true``.
- A resourceVersion older than the compacted history gets the ERROR event with a 410
  ``Status`` inside a 200 stream (what the real server does), or a plain HTTP 410 when
  ``gone_as_http`` is set.
- One resourceVersion counter across all kinds, like etcd's revision.
Test controls: ``compact``, ``expire_watches`` (ERROR 410 mid-stream), ``drop_watches``
(close the socket without ending the chunked body), ``fail_lists`` (HTTP 500) and
``atomic()`` to make several changes before any open watch sees one of them.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Kind:
    plural: str
    kind: str
    api_version: str
    path: str
    namespaced: bool


KINDS = {
    k.plural: k
    for k in (
        Kind("namespaces", "Namespace", "v1", "/api/v1/namespaces", False),
        Kind("services", "Service", "v1", "/api/v1/services", True),
        Kind(
            "ingresses",
            "Ingress",
            "networking.k8s.io/v1",
            "/apis/networking.k8s.io/v1/ingresses",
            True,
        ),
    )
}
BY_PATH = {k.path: k for k in KINDS.values()}
MAX_WATCH_SECONDS = 60  # every stream ends, whatever the client asks


@dataclass(frozen=True)
class Request:
    plural: str
    watch: bool
    resource_version: str | None
    params: dict[str, str]


def gone_status(message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Expired",
        "code": 410,
    }


class FakeApiServer:
    """State, history and controls; the HTTP handler below reads them under ``_cond``."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._rv = 100
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {p: {} for p in KINDS}
        self._history: dict[str, list[tuple[int, str, dict[str, Any]]]] = {p: [] for p in KINDS}
        self._oldest: dict[str, int] = dict.fromkeys(KINDS, 0)  # watch from rv < this: 410
        self._drop_gen = 0
        self._expire_gen = 0
        self._error_status = (410, "Expired")
        self._stopped = False
        self.gone_as_http = False
        self.fail_lists: set[str] = set()
        self.requests: list[Request] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----

    def start(self) -> FakeApiServer:
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # ---- state changes ----

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Changes made inside reach open watches together, after the block."""
        with self._cond:
            yield

    def _record(self, plural: str, event_type: str, obj: dict[str, Any]) -> int:
        with self._cond:
            self._rv += 1
            obj = copy.deepcopy(obj)
            obj.setdefault("metadata", {})["resourceVersion"] = str(self._rv)
            key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            if event_type == "DELETED":
                self._objects[plural].pop(key, None)
            else:
                self._objects[plural][key] = obj
            self._history[plural].append((self._rv, event_type, obj))
            self._cond.notify_all()
            return self._rv

    def create(self, plural: str, obj: dict[str, Any]) -> int:
        return self._record(plural, "ADDED", obj)

    def update(self, plural: str, obj: dict[str, Any]) -> int:
        return self._record(plural, "MODIFIED", obj)

    def delete(self, plural: str, namespace: str, name: str) -> int:
        with self._cond:
            obj = self._objects[plural][(namespace, name)]
            return self._record(plural, "DELETED", obj)

    def bookmark(self, plural: str) -> int:
        """A BOOKMARK at a new resourceVersion (as if other kinds changed meanwhile)."""
        with self._cond:
            self._rv += 1
            kind = KINDS[plural]
            obj = {
                "kind": kind.kind,
                "apiVersion": kind.api_version,
                "metadata": {"resourceVersion": str(self._rv)},
            }
            self._history[plural].append((self._rv, "BOOKMARK", obj))
            self._cond.notify_all()
            return self._rv

    def compact(self) -> None:
        """Forget the history: watches from an older resourceVersion get 410 Gone."""
        with self._cond:
            for plural in KINDS:
                self._history[plural] = []
                self._oldest[plural] = self._rv

    def expire_watches(self, code: int = 410, reason: str = "Expired") -> None:
        """Open watches end with an ERROR event carrying a Status (410 Gone by default)."""
        with self._cond:
            self._error_status = (code, reason)
            self._expire_gen += 1
            self._cond.notify_all()

    def drop_watches(self) -> None:
        """Open watches lose their connection mid-stream."""
        with self._cond:
            self._drop_gen += 1
            self._cond.notify_all()

    # ---- inspection ----

    @property
    def resource_version(self) -> int:
        return self._rv

    def watches(self, plural: str) -> list[Request]:
        return [r for r in list(self.requests) if r.plural == plural and r.watch]

    def lists(self, plural: str) -> list[Request]:
        return [r for r in list(self.requests) if r.plural == plural and not r.watch]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeApiServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        kind = BY_PATH.get(url.path)
        if kind is None:
            self._json(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
            return
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        watch = params.get("watch", "").lower() in ("1", "true")
        self.fake.requests.append(
            Request(kind.plural, watch, params.get("resourceVersion"), params)
        )
        try:
            if watch:
                self._watch(kind, params)
            else:
                self._list(kind, params)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _json(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _list(self, kind: Kind, params: dict[str, str]) -> None:
        fake = self.fake
        if kind.plural in fake.fail_lists:
            self._json(500, {"kind": "Status", "code": 500, "reason": "InternalError"})
            return
        start = int(params.get("continue") or 0)
        with fake._cond:
            objects = fake._objects[kind.plural]
            keys = sorted(objects)
            limit = int(params.get("limit") or 0) or len(keys) or 1
            page = [copy.deepcopy(objects[k]) for k in keys[start : start + limit]]
            rv = fake._rv
        for item in page:  # the real server leaves these out of list items
            item.pop("kind", None)
            item.pop("apiVersion", None)
        metadata: dict[str, Any] = {"resourceVersion": str(rv)}
        if start + limit < len(keys):
            metadata["continue"] = str(start + limit)
        body = {
            "kind": f"{kind.kind}List",
            "apiVersion": kind.api_version,
            "metadata": metadata,
            "items": page,
        }
        self._json(200, body)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _event(self, event_type: str, obj: dict[str, Any]) -> None:
        self._chunk(json.dumps({"type": event_type, "object": obj}).encode() + b"\n")

    def _end(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _watch(self, kind: Kind, params: dict[str, str]) -> None:
        fake = self.fake
        bookmarks = params.get("allowWatchBookmarks", "").lower() == "true"
        timeout = min(int(params.get("timeoutSeconds") or MAX_WATCH_SECONDS), MAX_WATCH_SECONDS)
        with fake._cond:
            cursor = int(params.get("resourceVersion") or fake._rv)
            too_old = cursor < fake._oldest[kind.plural]
            drop_gen, expire_gen = fake._drop_gen, fake._expire_gen
            current = fake._rv
        message = f"too old resource version: {cursor} ({current})"
        if too_old and fake.gone_as_http:
            self._json(410, gone_status(message))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if too_old:
            self._event("ERROR", gone_status(message))
            self._end()
            return
        deadline = time.monotonic() + timeout
        while True:
            with fake._cond:
                pending = [e for e in fake._history[kind.plural] if e[0] > cursor]
                if not pending and not self._interrupted(drop_gen, expire_gen):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    fake._cond.wait(min(left, 0.5))
                    continue
                if fake._drop_gen != drop_gen or fake._stopped:
                    self._abort()
                    return
                if fake._expire_gen != expire_gen:
                    status = gone_status(f"too old resource version: {cursor}")
                    status["code"], status["reason"] = fake._error_status
                    self._event("ERROR", status)
                    break
            for rv, event_type, obj in pending:
                cursor = rv
                if event_type == "BOOKMARK" and not bookmarks:
                    continue
                self._event(event_type, obj)
        self._end()

    def _interrupted(self, drop_gen: int, expire_gen: int) -> bool:
        fake = self.fake
        return fake._stopped or fake._drop_gen != drop_gen or fake._expire_gen != expire_gen

    def _abort(self) -> None:
        """Close the socket without the final chunk: the client sees a broken stream."""
        self.close_connection = True
        with suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
