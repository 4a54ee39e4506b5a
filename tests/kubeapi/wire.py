"""The double on the wire: HTTP/1.1 (over TLS by default) on 127.0.0.1, a free port.

The handler turns a request into a verb on a route, records it, asks the faults whether to
refuse it, and answers with the object, the list page, the watch stream or the Status.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from . import verbs
from .faults import HangUp
from .recording import Request
from .resources import Route
from .status import ApiError
from .watch import Watch

if TYPE_CHECKING:
    from .api import KubeApi

CONNECTION_TIMEOUT = 120.0  # an idle keep-alive connection is closed after this


class Server(ThreadingHTTPServer):
    """Serves one :class:`KubeApi`; each connection in its own thread, TLS done there too."""

    daemon_threads = True
    block_on_close = False  # stop() cuts the open connections instead of waiting for them

    def __init__(self, api: KubeApi, context: ssl.SSLContext | None, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.api = api
        self.context = context
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(CONNECTION_TIMEOUT)
        if self.context is not None:
            try:
                request = self.context.wrap_socket(request, server_side=True)
            except OSError:
                return  # the client went away during the handshake
        with self._open_lock:
            self._open.add(request)
        try:
            Handler(request, client_address, self)
        finally:
            with self._open_lock:
                self._open.discard(request)
            with suppress(OSError):
                request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up is not a test failure

    def close_connections(self) -> None:
        with self._open_lock:
            for connection in list(self._open):
                with suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def _serve(self) -> None:
        api = self.server.api
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        body = self._body()
        route = api.catalog.route(url.path)
        verb = _verb(self.command, route, params)
        api.record(
            Request(
                method=self.command,
                path=url.path,
                params=params,
                verb=verb,
                plural=route.resource.plural if route else None,
                namespace=route.namespace if route else None,
                name=route.name if route else None,
                content_type=content_type,
                body=body,
            )
        )
        try:
            if route is None or verb is None:
                raise ApiError(404, "NotFound", f"the server could not find {url.path}")
            api.faults.check(verb, route)
            self._answer(verb, route, params, body, content_type)
        except ApiError as error:
            self._json(error.code, error.status)
        except HangUp:  # a fault: close without a word (the client sees a ProtocolError)
            self.close_connection = True
        except OSError:  # the client hung up (a broken pipe, a reset, a TLS EOF)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _answer(
        self, verb: str, route: Route, params: dict[str, str], body: Any, content_type: str
    ) -> None:
        api = self.server.api
        store = api.store
        if verb == "watch":
            self._watch(Watch(store, api.faults, route, params))
        elif verb == "list":
            if params.get("continue"):
                api.faults.check_continued_list()
            limit = int(params.get("limit") or 0)
            if api.faults.max_page_size:
                limit = min(limit or api.faults.max_page_size, api.faults.max_page_size)
            self._json(200, verbs.list_page(store, route, limit, int(params.get("continue") or 0),
                                            params.get("labelSelector", "")))
        elif verb == "get":
            self._json(200, verbs.get(store, route))
        elif verb == "create":
            self._json(201, verbs.create(store, route, body))
        elif verb == "update":
            self._json(200, verbs.update(store, route, body))
        elif verb == "patch":
            self._json(200, verbs.patch(store, route, body, content_type))
        else:
            self._json(200, verbs.delete(store, route, body))

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode(errors="replace")

    def _json(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    # ---- the watch stream (the Stream protocol of watch.py) ----

    def _watch(self, watch: Watch) -> None:
        refusal = watch.refusal()
        if refusal is not None:
            self._json(refusal["code"], refusal)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        watch.run(self)

    def send(self, event_type: str, obj: Any) -> None:
        data = json.dumps({"type": event_type, "object": obj}).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def abort(self) -> None:
        """Close the socket without the final chunk: the client sees a broken stream."""
        self.close_connection = True
        with suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _verb(method: str, route: Route | None, params: dict[str, str]) -> str | None:
    if route is None:
        return None
    if route.subresource is not None:
        return {"GET": "get", "PUT": "update", "PATCH": "patch"}.get(method)
    if route.name is None:
        if method == "GET":
            return "watch" if params.get("watch", "").lower() in ("1", "true") else "list"
        creatable = route.namespace is not None or not route.resource.namespaced
        return "create" if method == "POST" and creatable else None
    return {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)

