"""Connection limits over the real server: a client that says nothing, a slowloris, a body
that never comes, oversized headers and too many requests in flight are answered (4xx) or
cut, never with a 5xx, and the server keeps serving new connections."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.support import eventually
from webhook.admission.listener import connection_cap
from webhook.admission.refusals import RefusalLog
from webhook.admission.settings import ConnectionSettings
from webhook.certs.files import GeneratedCertificates
from webhook.serve.build import Runtime

from .harness import SERVICE_HOST, RunningServer, base_settings, load_review, start_server

LIMITS = ConnectionSettings(header_timeout=1.0, body_timeout=1.0, idle_timeout=2.0,
                            max_header_bytes=8192, max_headers=20,
                            max_concurrent_requests=2)
READ_TIMEOUT = 15.0  # bounds a test against a server that never cuts; never expected


@pytest.fixture(scope="module")
def server(certificates: GeneratedCertificates,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("limits")
    running = start_server(base_settings(certificates, tmp, connections=LIMITS),
                           certificates.ca_file)
    yield running
    running.stop()


@contextlib.contextmanager
def tls_connection(server: RunningServer) -> Iterator[ssl.SSLSocket]:
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT)
    tls = server.ssl_context().wrap_socket(raw, server_hostname=SERVICE_HOST)
    try:
        yield tls
    finally:
        tls.close()


def read_to_end(tls: ssl.SSLSocket) -> bytes:
    """Everything the server sends until it closes; a hang fails at READ_TIMEOUT."""
    data = b""
    with contextlib.suppress(ssl.SSLError, ConnectionResetError, BrokenPipeError):
        while chunk := tls.recv(65536):
            data += chunk
    return data


def read_response(tls: ssl.SSLSocket) -> bytes:
    """One whole answer on a keep-alive connection: its head, then Content-Length bytes."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(65536)
        assert chunk, f"closed after {data[:200]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        chunk = tls.recv(65536)
        assert chunk, "closed in the body"
        body += chunk
    return head + b"\r\n\r\n" + body


def still_served(server: RunningServer) -> None:
    assert server.get("/healthz").status_code == 200


def hits(server: RunningServer, limit: str) -> float:
    return server.metric("edgewarden_connection_limit_hits_total", limit=limit)


def test_a_client_that_connects_and_sends_nothing_is_cut(server: RunningServer) -> None:
    """Before: uvicorn armed no timer until a first response; such a connection stayed
    open for good (and a thousand of them exhausted the file limit)."""
    before = hits(server, "idle_connection")
    with tls_connection(server) as tls:
        assert read_to_end(tls) == b""  # nothing to answer: closed
    assert hits(server, "idle_connection") == before + 1
    still_served(server)


def test_a_slowloris_trickling_headers_gets_408(server: RunningServer) -> None:
    before = hits(server, "header_timeout")
    with tls_connection(server) as tls:
        tls.sendall(b"POST /validate HTTP/1.1\r\nHost: edgewarden\r\n")
        for index in range(100):  # a header line every 0.1 s: bytes keep coming
            readable, _, _ = select.select([tls], [], [], 0.1)
            if readable:
                break
            tls.sendall(b"X-Slow-%d: still-coming\r\n" % index)
        answer = read_to_end(tls)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b'"reason":"RequestTimeout"' in answer
    assert hits(server, "header_timeout") == before + 1
    still_served(server)


def test_a_body_that_never_comes_gets_408(server: RunningServer) -> None:
    with tls_connection(server) as tls:
        tls.sendall(b"POST /validate HTTP/1.1\r\nHost: edgewarden\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"api")
        answer = read_to_end(tls)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    still_served(server)


@pytest.mark.parametrize("head", [
    b"X-Big: " + b"a" * 65536 + b"\r\n",  # one header over the limit
    b"".join(b"X-H%d: v\r\n" % i for i in range(50)),  # too many headers
    b"GET /" + b"a" * 9000,  # a request line that does not end
], ids=["oversized-header", "too-many-headers", "endless-request-line"])
def test_oversized_heads_get_431_and_the_server_keeps_serving(
    server: RunningServer, head: bytes
) -> None:
    if not head.startswith(b"GET"):
        head = b"GET /healthz HTTP/1.1\r\nHost: e\r\n" + head + b"\r\n"
    with tls_connection(server) as tls:
        with contextlib.suppress(ssl.SSLError, ConnectionResetError, BrokenPipeError):
            tls.sendall(head)
        answer = read_to_end(tls)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    still_served(server)


def test_an_oversized_head_pipelined_behind_a_request_gets_431(server: RunningServer) -> None:
    with tls_connection(server) as tls:
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: e\r\n\r\n"
                    b"GET /healthz HTTP/1.1\r\nHost: e\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
        answer = read_to_end(tls)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert b"HTTP/1.1 431 " in answer
    still_served(server)


def test_an_endless_header_is_cut_at_the_limit_not_buffered(server: RunningServer) -> None:
    """httptools buffers a header until it ends: the raw bytes are counted as they come."""
    with tls_connection(server) as tls:
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: e\r\nX-Endless: ")
        sent = 0
        with contextlib.suppress(ssl.SSLError, ConnectionResetError, BrokenPipeError):
            while sent < 8 * 1024 * 1024:
                tls.sendall(b"a" * 16384)
                sent += 16384
                if select.select([tls], [], [], 0)[0]:
                    break
        answer = read_to_end(tls)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert sent < 8 * 1024 * 1024
    still_served(server)


class HeldRequests:
    """The server's own app behind two doors. ``POST /hold`` reads its whole body, then is
    answered only once the test opens ``door``: a request the server is still judging, as
    a slow judgement would be, without slowing the judgement itself. ``POST /stream``
    starts its answer before its body has come (so it takes no place), and finishes it
    once ``stream_door`` opens."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.door = threading.Event()
        self.stream_door = threading.Event()
        self.waiting = 0
        self.streaming = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in ("/hold", "/stream"):
            await self.app(scope, receive, send)
            return
        start = {"type": "http.response.start", "status": 200,
                 "headers": [(b"content-length", b"4")]}
        if scope["path"] == "/stream":
            await send(start)
        while (await receive()).get("more_body"):
            pass
        if scope["path"] == "/stream":
            self.streaming += 1
            await _opened(self.stream_door)
            self.streaming -= 1
        else:
            self.waiting += 1
            await _opened(self.door)
            self.waiting -= 1
            await send(start)
        await send({"type": "http.response.body", "body": b"done"})


async def _opened(door: threading.Event) -> None:
    while not door.is_set():
        await asyncio.sleep(0.01)


def hold(tls: ssl.SSLSocket) -> None:
    tls.sendall(b"POST /hold HTTP/1.1\r\nHost: e\r\nContent-Length: 2\r\n\r\n{}")


def send_slow_body(tls: ssl.SSLSocket) -> None:
    """Headers that announce a body, one byte of it, and then nothing."""
    tls.sendall(b"POST /validate HTTP/1.1\r\nHost: e\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")


def test_requests_over_the_in_flight_limit_get_429_with_retry_after_but_probes_never(
    certificates: GeneratedCertificates, tmp_path: Path
) -> None:
    server, door = held_server(certificates, tmp_path)
    review = load_review("nodeport-create-payments.json")
    try:
        with tls_connection(server) as first, tls_connection(server) as second:
            for connection in (first, second):  # two requests being answered
                hold(connection)
            eventually(lambda: door.waiting == 2, what="two requests in flight")

            answer = server.post("/validate", review)

            assert answer.status_code == 429
            assert answer.headers["retry-after"] == "1"
            assert answer.json()["reason"] == "TooManyRequests"
            # Probes never count: the kubelet must not see a busy pod as a dead one.
            for path in ("/healthz", "/livez", "/readyz"):
                assert server.get(path).status_code == 200, path
                assert server.probe(path).status_code == 200, path

            door.door.set()
            for connection in (first, second):
                assert read_response(connection).startswith(b"HTTP/1.1 200 ")
        assert server.post("/validate", review).status_code == 200
    finally:
        door.door.set()
        server.stop()


def held_server(certificates: GeneratedCertificates, tmp_path: Path
                ) -> tuple[RunningServer, HeldRequests]:
    door: list[HeldRequests] = []

    def behind_a_door(runtime: Runtime) -> None:
        door.append(HeldRequests(runtime.app))
        runtime.app = door[0]

    server = start_server(base_settings(certificates, tmp_path, connections=LIMITS),
                          certificates.ca_file, prepare=behind_a_door)
    return server, door[0]


def in_flight(server: RunningServer) -> int:
    return int(server._server.listener.requests_in_flight)


def test_a_pipelined_request_counts_once_its_turn_comes_and_is_refused_in_order(
    certificates: GeneratedCertificates, tmp_path: Path
) -> None:
    server, door = held_server(certificates, tmp_path)
    body = orjson.dumps(load_review("nodeport-create-payments.json"))
    try:
        with tls_connection(server) as pipelined, tls_connection(server) as first, \
                tls_connection(server) as second:
            # An answer begun before its body came (it holds no place), and a review
            # queued behind it.
            pipelined.sendall(b"POST /stream HTTP/1.1\r\nHost: e\r\nContent-Length: 2\r\n\r\n")
            assert pipelined.recv(65536).startswith(b"HTTP/1.1 200 ")
            pipelined.sendall(b"{}POST /validate HTTP/1.1\r\nHost: e\r\n"
                              b"Content-Type: application/json\r\n"
                              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            eventually(lambda: door.streaming == 1, what="the first body in")
            assert in_flight(server) == 0, "a request waiting for its turn takes no place"
            for connection in (first, second):  # both places taken meanwhile
                hold(connection)
            eventually(lambda: door.waiting == 2, what="two requests in flight")

            door.stream_door.set()  # the review's turn comes: no place for it
            answers = read_to_end(pipelined)

            assert answers.startswith(b"done"), answers[:200]  # the answer before it first
            assert answers[4:].startswith(b"HTTP/1.1 429 "), answers[:200]
            assert b'"reason":"TooManyRequests"' in answers
            door.door.set()
        eventually(lambda: in_flight(server) == 0, what="every place free again")
    finally:
        door.door.set()
        door.stream_door.set()
        server.stop()


def test_every_place_is_given_back_however_a_request_ends(
    certificates: GeneratedCertificates, tmp_path: Path
) -> None:
    """A place that leaked would, one by one, lock every review out with 429 for good."""
    server, door = held_server(certificates, tmp_path)
    review = load_review("nodeport-create-payments.json")
    body = orjson.dumps(review)
    try:
        # The client goes away while its request is being answered.
        with tls_connection(server) as gone:
            hold(gone)
            eventually(lambda: door.waiting == 1, what="a request in flight")
            assert in_flight(server) == 1
        eventually(lambda: in_flight(server) == 0, what="the place of a client gone")
        # Pipelined reviews, answered in order on one connection.
        with tls_connection(server) as tls:
            one = (b"POST /validate HTTP/1.1\r\nHost: e\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            tls.sendall(one * 3 + b"GET /healthz HTTP/1.1\r\nHost: e\r\nConnection: close\r\n\r\n")
            answers = read_to_end(tls)
        assert answers.count(b"HTTP/1.1 200 ") == 4, answers[:400]
        # Refused before the body (415), over the body limit (413), a bad review (400).
        assert server.post("/validate", b"{}", content_type="text/plain").status_code == 415
        assert server.post("/validate", b"not json").status_code == 400
        door.door.set()
        eventually(lambda: door.waiting == 0, what="the abandoned request to finish")
        assert in_flight(server) == 0
        answers = [server.post("/validate", review).status_code for _ in range(3)]
        assert answers == [200, 200, 200]
        assert in_flight(server) == 0
    finally:
        door.door.set()
        server.stop()


def test_a_request_counts_toward_the_limit_only_once_its_body_has_arrived(
    certificates: GeneratedCertificates, tmp_path: Path
) -> None:
    """Before: a request counted from its headers, so two clients withholding their
    bodies took both places (of 2) until the body timeout, and every review got 429."""
    limits = replace(LIMITS, body_timeout=60.0)  # the slow bodies outlast the test
    server = start_server(base_settings(certificates, tmp_path, connections=limits),
                          certificates.ca_file)
    review = load_review("nodeport-create-payments.json")
    try:
        with contextlib.ExitStack() as stack:
            slow = [stack.enter_context(tls_connection(server)) for _ in range(5)]
            for connection in slow:
                send_slow_body(connection)
            tasks = server._server.server_state.tasks
            eventually(lambda: len(tasks) >= 5, what="five requests waiting for their bodies")

            answers = [server.post("/validate", review) for _ in range(5)]

            assert [a.status_code for a in answers] == [200] * 5
            assert all(a.json()["response"]["allowed"] is False for a in answers)
            assert len(tasks) >= 5, "the slow senders are still connected and waiting"
    finally:
        server.stop()


def test_at_the_connection_cap_the_slowest_body_gives_way_to_a_new_caller(
    certificates: GeneratedCertificates, tmp_path: Path
) -> None:
    # Only the cap may cut a connection here: with LIMITS' 1 s header timeout, a loaded host
    # that takes over a second for the 16 handshakes cut the first ones as idle instead.
    limits = replace(LIMITS, header_timeout=60.0, body_timeout=60.0, idle_timeout=60.0,
                     max_connections=16)
    server = start_server(base_settings(certificates, tmp_path, connections=limits),
                          certificates.ca_file)
    review = load_review("nodeport-create-payments.json")
    try:
        assert server._server.listener.max_connections == 16
        before = hits(server, "evicted_slow_body")
        with contextlib.ExitStack() as stack:
            slow = [stack.enter_context(tls_connection(server)) for _ in range(16)]
            listener = server._server.listener

            def awaiting_bodies() -> int:
                # Counted on the connections themselves: the task set can still hold the
                # finished /metrics request above, which let the wait end too early.
                return sum(c.body_since is not None for c in list(listener._open))

            send_slow_body(slow[0])  # the oldest body, before any other began
            eventually(lambda: awaiting_bodies() >= 1, what="the first body awaited")
            for connection in slow[1:]:
                send_slow_body(connection)
            eventually(lambda: awaiting_bodies() >= 16,
                       what="every connection waiting for a body")

            answer = server.post("/validate", review)

            assert answer.status_code == 200
            assert read_to_end(slow[0]) == b"", "the oldest slow sender was cut"
        # (Reading the metric may evict another, if the closes above are not yet seen.)
        assert hits(server, "evicted_slow_body") >= before + 1
    finally:
        server.stop()


def test_at_the_connection_cap_a_slow_body_goes_before_a_callers_idle_connection(
    certificates: GeneratedCertificates, tmp_path: Path
) -> None:
    """The API server's keep-alive connection, idle between two reviews, is not the one
    cut when slow senders crowd the server: they have waited longer."""
    limits = replace(LIMITS, header_timeout=60.0, body_timeout=60.0, idle_timeout=60.0,
                     max_connections=16)
    server = start_server(base_settings(certificates, tmp_path, connections=limits),
                          certificates.ca_file)
    body = orjson.dumps(load_review("nodeport-create-payments.json"))
    review = (b"POST /validate HTTP/1.1\r\nHost: e\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    try:
        with contextlib.ExitStack() as stack:
            slow = [stack.enter_context(tls_connection(server)) for _ in range(15)]
            tasks = server._server.server_state.tasks
            for connection in slow:
                send_slow_body(connection)
            eventually(lambda: len(tasks) >= 15, what="fifteen bodies awaited")
            api_server = stack.enter_context(tls_connection(server))
            api_server.sendall(review)
            assert read_response(api_server).startswith(b"HTTP/1.1 200 ")
            # At the cap (16): a newcomer needs a place.

            assert server.post("/validate", body).status_code == 200

            api_server.sendall(review)  # the same connection, still open
            assert read_response(api_server).startswith(b"HTTP/1.1 200 ")
    finally:
        server.stop()


def test_idle_keep_alive_connections_are_closed_after_the_idle_timeout(
    server: RunningServer,
) -> None:
    with tls_connection(server) as tls:
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: e\r\n\r\n")
        answer = read_to_end(tls)  # answered, then closed when idle
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_limit_hits_are_all_counted_but_logged_at_most_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counted: list[str] = []
    now = [0.0]
    refusals = RefusalLog(counted.append, interval=10.0, clock=lambda: now[0])

    for second in range(25):
        now[0] = float(second)
        for _ in range(40):
            refusals.hit("header_timeout", "10.0.0.1:1234")

    assert len(counted) == 1000
    lines = [r.getMessage() for r in caplog.records if "connection limit hit" in r.getMessage()]
    assert len(lines) == 3  # at 0 s, 10 s and 20 s
    assert "399 more since the last report" in lines[1]


def test_the_connection_cap_leaves_room_under_the_file_limit() -> None:
    assert connection_cap(1000, soft_file_limit=1024) == 960
    assert connection_cap(1000, soft_file_limit=1048576) == 1000
    assert connection_cap(1000, soft_file_limit=resource.RLIM_INFINITY) == 1000
    assert connection_cap(1000, soft_file_limit=64) == 16  # never none at all
