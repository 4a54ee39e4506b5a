"""Connection limits over the real server: a client that says nothing, a slowloris, a body
that never comes, oversized headers and too many requests in flight are answered (4xx) or
cut, never with a 5xx, and the server keeps serving new connections."""

from __future__ import annotations

import contextlib
import resource
import select
import socket
import ssl
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support import eventually
from webhook.admission.limitlog import LimitLog
from webhook.admission.listener import connection_cap
from webhook.admission.settings import ConnectionSettings
from webhook.certs.files import GeneratedCertificates

from .harness import SERVICE_HOST, RunningServer, base_settings, start_server

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


def test_requests_over_the_in_flight_limit_get_429_with_retry_after(
    certificates: GeneratedCertificates, tmp_path: Path
) -> None:
    limits = replace(LIMITS, body_timeout=60.0)  # the two slow bodies outlast the test
    server = start_server(base_settings(certificates, tmp_path, connections=limits),
                          certificates.ca_file)
    try:
        with tls_connection(server) as first, tls_connection(server) as second:
            for slow in (first, second):  # two requests waiting for their bodies
                slow.sendall(b"POST /validate HTTP/1.1\r\nHost: e\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            tasks = server._server.server_state.tasks
            eventually(lambda: len(tasks) >= 2, what="two requests in flight")

            answer = server.get("/healthz")

            assert answer.status_code == 429
            assert answer.headers["retry-after"] == "1"
            assert answer.json()["reason"] == "TooManyRequests"
        eventually(lambda: server.get("/healthz").status_code == 200, what="served again")
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
    limits = LimitLog(counted.append, interval=10.0, clock=lambda: now[0])

    for second in range(25):
        now[0] = float(second)
        for _ in range(40):
            limits.hit("header_timeout", "10.0.0.1:1234")

    assert len(counted) == 1000
    lines = [r.getMessage() for r in caplog.records if "connection limit hit" in r.getMessage()]
    assert len(lines) == 3  # at 0 s, 10 s and 20 s
    assert "399 more since the last report" in lines[1]


def test_the_connection_cap_leaves_room_under_the_file_limit() -> None:
    assert connection_cap(1000, soft_file_limit=1024) == 960
    assert connection_cap(1000, soft_file_limit=1048576) == 1000
    assert connection_cap(1000, soft_file_limit=resource.RLIM_INFINITY) == 1000
    assert connection_cap(1000, soft_file_limit=64) == 16  # never none at all
