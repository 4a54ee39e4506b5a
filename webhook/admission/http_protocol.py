"""uvicorn's HTTP/1.1 connection (httptools) with the limits it lacks.

uvicorn arms its keep-alive timer only after a response, has no header or body timeout
and no header size limit: a client that connects and sends nothing, or sends its headers
a byte at a time, or an endless header, holds a file descriptor and memory for as long as
it likes. This subclass adds, per connection:

* a header deadline from the connection's start (after the TLS handshake), and from the
  first byte of each later request, to the end of its headers: a silent client is cut,
  a slow one gets 408;
* a body deadline from the headers to the last byte of the body: 408;
* a size limit on the request line and headers, counted as the bytes arrive (httptools
  would otherwise buffer an endless header), and on their number: 431;

The deadlines are timestamps the listener's once-a-second sweep compares with the clock
(``check_deadline``), not timers: arming and cancelling a loop timer twice per request
cost more than the rest of this class together (benchmarks/protocol_overhead.py).
Likewise the head is measured only when its raw byte count says it might be too long, not
in a callback per header.

* a limit on requests in flight across the server: 429 with ``Retry-After`` (the API
  server's client retries it), never uvicorn's 503, which counts idle connections too.
  A request counts only once its body has fully arrived, until its answer is written:
  a client that sends headers and then trickles (or withholds) its body holds its own
  connection, bounded by the body timeout and the connection cap, but no place that a
  complete request could use. Probes (``/healthz``, ``/livez``, ``/readyz``) never count;
* the ASGI TLS extension in the scope (``client_cert_name``), so /validate and /mutate can
  require a verified client certificate while probes stay open.

Every limit that cuts or refuses is reported to the tracker (the listener), which counts
it and logs it, rate-limited. The idle keep-alive timeout (``idle_timeout``) is a deadline
the same sweep checks, in place of uvicorn's per-answer timer, and closes the connection as
uvicorn would; the number of connections is the listener's business.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, Protocol

import httptools
import orjson
from uvicorn._types import ASGI3Application, Scope
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from webhook.admission.probes import PROBE_METHODS, PROBE_PATHS
from webhook.admission.settings import ConnectionSettings

# The clock of the stamps eviction compares (last_active, body_since, a handshake's start):
# uvloop's loop.time() counts whole milliseconds, read once per turn of the loop, so stamps
# taken in one turn tie and "the longest waiting" became any of them.
waited_since = time.monotonic

# The uvicorn series this subclass (and listener.EdgeServer) was written against: both use
# uvicorn internals, so pyproject.toml bounds uvicorn to it, and
# tests/admission/test_uvicorn_internals.py fails on any other version (docs/http.md).
UVICORN_SERIES = "0.54"

TLS_EXTENSION = "tls"
_MEASURE = 1 << 62  # a raw count that makes on_headers_complete measure the head


class ConnectionTracker(Protocol):
    """The listener, as a connection reports to it."""

    def established(self, connection: GuardedHttpProtocol) -> None: ...

    def closed(self, connection: GuardedHttpProtocol) -> None: ...

    def hit(self, limit: str, peer: str) -> None: ...

    @property
    def requests_in_flight(self) -> int: ...

    def admit_request(self) -> bool:
        """Count one more request in flight; False (nothing counted) at the limit."""

    def request_done(self) -> None: ...


class _Refusal(Exception):
    """Raised from a parser callback to stop parsing; answered by ``data_received``."""

    def __init__(self, code: int, reason: str, message: str, limit: str,
                 *, after_body: bool = False) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.limit = code, reason, message, limit
        self.after_body = after_body  # refused at the end of its body, once started


class GuardedHttpProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        settings: ConnectionSettings,
        tracker: ConnectionTracker,
        key: Any = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.settings = settings
        self.tracker = tracker
        self.key = key  # the listener's handle for this connection (its accepted socket)
        self.busy = False  # a request is being answered: never evicted then
        self.last_active = waited_since()
        self.deadline = math.inf  # loop.time() by which the head or the body must be in
        self.body_since: float | None = None  # waited_since() its body began to be awaited
        self._counted: set[RequestResponseCycle] = set()  # requests in flight (see below)
        self._answering: RequestResponseCycle | None = None  # whose application runs
        self._reading_body = False  # which of the two the deadline is for
        self._awaiting_head = True  # between requests, or reading a request's headers
        self._head_started = False  # bytes of the current request's head have arrived
        self._head_bytes = 0  # raw bytes received while the head is incomplete
        self._deferred: _Refusal | None = None  # sent once the answer before it is out
        self._idle = False  # answered, no byte of the next request yet: deadline is idle's
        self._extensions: dict[str, Any] = {}
        self._held = _HeldAnswer()  # the answer written at the end of this loop step, if any

    @property
    def peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "unknown peer"

    # ---- connection ----

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._extensions = {TLS_EXTENSION: _tls_extension(transport)}
        self.deadline = self.loop.time() + self.settings.header_timeout
        self.tracker.established(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.deadline = math.inf
        self.body_since = None
        # The request being answered, and pipelined ones never started: their places are
        # free (the application, if it still runs, finds the client gone at its next send).
        for cycle in list(self._counted):
            self._release(cycle)
        self.tracker.closed(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's own data_received, with refusals told apart from parse errors: a
        # callback's exception reaches us wrapped in HttpParserCallbackError.
        if self._awaiting_head:
            if not self._head_started:
                self._head_started = True
                self._head_bytes = 0
                if self._idle or self.deadline == math.inf:
                    # The next request after a keep-alive pause: its headers' deadline.
                    self._idle = False
                    self.deadline = self.loop.time() + self.settings.header_timeout
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if isinstance(error.__context__, _Refusal):
                self._refuse(error.__context__)
                return
            self._invalid()
            return
        except httptools.HttpParserUpgrade:
            self._invalid()  # no WebSocket here
            return
        except httptools.HttpParserError:
            self._invalid()
            return
        if (self._awaiting_head and self._head_started
                and self._head_bytes > self.settings.max_header_bytes):
            # Headers still incomplete and already too long: httptools would buffer them
            # without end, so count the raw bytes.
            self._refuse(_too_large(self.settings))

    # ---- parser callbacks ----

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        settings = self.settings
        # The raw count is never below the head's size (it may include body bytes that
        # came in the same read): only when it is over the limit is the head measured.
        if self._head_bytes > settings.max_header_bytes or len(self.headers) > settings.max_headers:
            self._check_head(settings)
        self.busy = True
        self.scope["extensions"] = self._extensions
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None:
            # The response's head and body go out in one write, once this step of the loop
            # is over (see _HeadWithBody).
            cycle.transport = _HeadWithBody(  # type: ignore[assignment]
                self.transport, cycle, self.loop, self._held)
        if getattr(self.server_state, "draining", False) and self.cycle is not None:
            # Shutting down (webhook/serve/root.py): answer, then close, so the client opens
            # its next connection elsewhere instead of meeting a closed one mid-request.
            self.cycle.keep_alive = False
        # The body's deadline; the next chunk usually completes it before any sweep looks.
        self.deadline = self.loop.time() + settings.body_timeout
        self.body_since = waited_since()
        self._reading_body = True

    def on_message_complete(self) -> None:
        self.deadline = math.inf
        self.body_since = None
        self._reading_body = False
        cycle = self.cycle
        if cycle is not None and cycle is self._answering:
            # Only now does the request count toward the limit: it is whole, and its turn
            # has come. (A pipelined one counts when it starts: _start_asgi_task.)
            self._count(cycle)
        super().on_message_complete()
        self._awaiting_head, self._head_started = True, False
        # A next request in the same read starts without a raw count: measure its head.
        self._head_bytes = _MEASURE

    def _count(self, cycle: RequestResponseCycle) -> None:
        """Count ``cycle`` in flight, or raise a 429 at the limit. An answer already begun
        (a 413 or 415 sent before the body) needs no place; probes never take one."""
        if cycle.response_started or cycle.response_complete or is_probe(cycle.scope):
            return
        if not self.tracker.admit_request():
            raise _Refusal(429, "TooManyRequests",
                           f"{self.tracker.requests_in_flight} requests in flight: "
                           "retry shortly", "concurrent_requests", after_body=True)
        self._counted.add(cycle)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # HTTP/1.1 answers in order: the request started last is the one answered next.
        self._answering = cycle
        if not cycle.more_body:
            # Pipelined, and its body came while the request before it was answered.
            try:
                self._count(cycle)
            except _Refusal as refusal:
                self.tracker.hit(refusal.limit, self.peer)
                self._send_refusal(refusal)  # the answer before it is out: in order
                return
        super()._start_asgi_task(cycle, app)

    def _release(self, cycle: RequestResponseCycle) -> None:
        if cycle in self._counted:
            self._counted.discard(cycle)
            self.tracker.request_done()

    def on_response_complete(self) -> None:
        # A counted request holds its place until its answer is written (our endpoints
        # return then); a connection lost first frees it in connection_lost.
        if self._counted and self._answering is not None:
            self._release(self._answering)
        self.busy = False
        self.last_active = waited_since()  # eviction picks the least recently active
        now = self.loop.time()
        if self._deferred is not None:
            self._send_refusal(self._deferred)
            return
        # uvicorn's on_response_complete, but for its keep-alive timer: a loop timer armed
        # after every answer and cancelled by the next request's first byte cost more than
        # the idle deadline the sweep already checks (check_deadline).
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif not self._head_started:
            self._idle = True
            self.deadline = now + self.settings.idle_timeout

    # ---- limits ----

    def _check_head(self, settings: ConnectionSettings) -> None:
        if len(self.headers) > settings.max_headers:
            raise _Refusal(431, "RequestHeaderFieldsTooLarge",
                           f"more than {settings.max_headers} headers", "header_size")
        size = len(self.url) + sum(len(name) + len(value) for name, value in self.headers)
        if size > settings.max_header_bytes:
            raise _too_large(settings)

    def check_deadline(self, now: float) -> None:
        """Called by the listener's sweep: act on a deadline that has passed."""
        if now < self.deadline or self.transport.is_closing():
            return
        self.deadline = math.inf
        if self._idle:
            self._held.release()
            self.transport.close()  # idle past the keep-alive timeout, as uvicorn closes it
        elif self._reading_body:
            self._body_timed_out()
        else:
            self._head_timed_out(now)

    def _head_timed_out(self, now: float) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request waits for the one before it: not the client's delay.
            self.deadline = now + self.settings.header_timeout
            return
        if not self._head_started:
            self.tracker.hit("idle_connection", self.peer)
            self.transport.abort()  # said nothing: nobody to answer
            return
        self._refuse(_Refusal(408, "RequestTimeout",
                              f"request headers not complete within "
                              f"{self.settings.header_timeout:g} s", "header_timeout"))

    def evict_slow_body(self) -> None:
        """Called by the listener at its connection cap: of all the connections it could
        cut, this one (its body still arriving) has waited longest, and a new caller
        needs the place."""
        self.tracker.hit("evicted_slow_body", self.peer)
        self.deadline = math.inf
        self.body_since = None
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the application waiting for the body sees it gone
            cycle.message_event.set()
        self.transport.abort()  # the place is needed now, not after a TLS goodbye

    def _body_timed_out(self) -> None:
        self._refuse(_Refusal(408, "RequestTimeout",
                              f"request body not complete within "
                              f"{self.settings.body_timeout:g} s", "body_timeout"))

    def _refuse(self, refusal: _Refusal) -> None:
        """Answer ``refusal`` with a metav1.Status and close (see _send_refusal)."""
        self.tracker.hit(refusal.limit, self.peer)
        self.deadline = math.inf
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if not self._reading_body and not refusal.after_body:
                # A pipelined request is refused while the one before it is answered:
                # that answer goes first, then this one (on_response_complete).
                self._deferred = refusal
                self.flow.pause_reading()
                return
            if cycle.response_started:
                self.transport.abort()
                return
            # The application is waiting for the body: it sees the client gone, sends nothing.
            cycle.disconnected = True
            cycle.message_event.set()
        self._send_refusal(refusal)

    def _send_refusal(self, refusal: _Refusal) -> None:
        if self.transport.is_closing():
            return
        self._held.release()  # the answer before it (pipelined) goes first
        body = orjson.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                             "message": refusal.message, "reason": refusal.reason,
                             "code": refusal.code})
        head = [
            f"HTTP/1.1 {refusal.code} {refusal.reason}\r\n".encode(),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
        ]
        if refusal.code == 429:
            head.append(b"retry-after: 1\r\n")
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()

    def _invalid(self) -> None:
        # uvicorn logs every one of these; a flood of them must not flood the log.
        self.tracker.hit("invalid_request", self.peer)
        self.deadline = math.inf
        if not self.transport.is_closing():
            self._held.release()  # the answer before it (pipelined) goes first
            self.send_400_response("Invalid HTTP request received.")

    def shutdown(self) -> None:
        # uvicorn closes an idle connection at once: an answer still held goes out first.
        self._held.release()
        super().shutdown()


class _HeldAnswer:
    """A connection's answer held by its cycle's transport (_HeadWithBody) until the end of
    the loop's step: the protocol's own writes (a refusal, a 400, a close) release it
    first, so the bytes go out in order."""

    __slots__ = ("transport",)

    def __init__(self) -> None:
        self.transport: _HeadWithBody | None = None

    def release(self) -> None:
        if self.transport is not None:
            self.transport.release()


class _HeadWithBody:
    """The transport as one response's cycle sees it: the answer (its head and what is
    written with it in the same step of the event loop) is held, then written in one write
    once that step is over.

    uvicorn writes a response's status line and headers, then its body, with a write each;
    over TLS each write is a TLS record and a send on the socket, and the peer wakes up
    twice for one answer. Held together, they are one record and one send (docs/http.md).
    Held to the end of the step, the answers of the requests that arrived together are
    judged one after another, then written one after another, instead of each judgment
    being followed by the TLS and socket work of its write: under load that took 27-30 %
    off the CPU each request costs (benchmarks/throughput_ab.py, docs/http.md). The bytes
    are the same; only how and when they are cut into segments changes. A write after the
    held answer is out (a later chunk of a streamed body) goes at once, and the
    connection's own writes and closes release a held answer first (``_HeldAnswer``).
    """

    __slots__ = ("_cycle", "_held", "_loop", "_pending", "_transport", "_waiting")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle,
                 loop: asyncio.AbstractEventLoop, held: _HeldAnswer) -> None:
        self._transport = transport
        # Until the head is written: the cycle holds this transport, so holding the cycle
        # past that would make each request a reference cycle, freed only by the collector.
        self._cycle: RequestResponseCycle | None = cycle
        self._loop = loop
        self._held = held
        self._pending: bytes | None = None
        # For the head: the first write once the response has started. A HEAD request's
        # answer has no body write to wait for.
        self._waiting = cycle.scope["method"] != "HEAD"

    def write(self, data: bytes) -> None:
        pending = self._pending
        if pending is not None:
            self._pending = pending + data
        elif self._waiting and self._cycle is not None and self._cycle.response_started:
            self._waiting = False
            self._cycle = None
            self._pending = data
            self._held.transport = self
            self._loop.call_soon(self.release)
        else:
            self._transport.write(data)

    def release(self) -> None:
        """Write what is held now (at the end of the step, or before the connection's own
        write or close)."""
        pending, self._pending = self._pending, None
        if self._held.transport is self:
            self._held.transport = None
        if pending is not None and not self._transport.is_closing():
            self._transport.write(pending)

    def close(self) -> None:
        self.release()
        self._transport.close()

    def abort(self) -> None:
        self._pending = None  # an abort sends nothing more
        if self._held.transport is self:
            self._held.transport = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)


def is_probe(scope: Scope) -> bool:
    """A kubelet probe: never counted toward the limit, so never answered 429."""
    return scope.get("path") in PROBE_PATHS and scope.get("method") in PROBE_METHODS


def _too_large(settings: ConnectionSettings) -> _Refusal:
    return _Refusal(431, "RequestHeaderFieldsTooLarge",
                    f"request line and headers over {settings.max_header_bytes} bytes",
                    "header_size")


def _tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any]:
    """The ASGI TLS extension's client certificate fields. A certificate is only ever
    present once verified: the handshake fails on one the client CA did not sign."""
    ssl_object = transport.get_extra_info("ssl_object")
    peer = ssl_object.getpeercert() if ssl_object is not None else None
    name = None
    if peer:
        name = ",".join(
            f"{_SHORT_NAMES.get(key, key)}={value}"
            for rdn in reversed(peer.get("subject", ())) for key, value in rdn
        ) or "(empty subject)"  # verified all the same: present, even without a subject
    return {"client_cert_name": name, "client_cert_error": None}


_SHORT_NAMES = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
                "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST"}
