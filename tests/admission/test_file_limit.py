"""1,100 idle connections against a server whose file limit is 1,024: the idle ones give
way, new callers are still served. The server runs as its own process with the lowered
limit (resource.setrlimit in the child, never in the test process)."""

from __future__ import annotations

import contextlib
import resource
import socket
import ssl
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.process_output import ProcessOutput
from webhook.certs.files import GeneratedCertificates

from .harness import DEFAULT_POLICIES, FIXTURES, SERVICE_HOST, SNI
from .test_cli import EDGEWARDEN, WAIT

FILE_LIMIT = 1024
IDLE = 1100
TIMEOUT = 10.0


def _lowered_file_limit() -> None:  # runs in the child, before exec
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


@pytest.fixture
def room_for_the_clients() -> Iterator[None]:
    """The test process itself holds 1,100 sockets: raise its soft limit if it is lower
    (never lower it), and put it back."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = IDLE + 256
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"the test process may open at most {hard} files; it needs {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def server_port(certificates: GeneratedCertificates) -> Iterator[tuple[int, ProcessOutput]]:
    process = subprocess.Popen(
        [*EDGEWARDEN, "serve", "--policies", str(DEFAULT_POLICIES),
         "--cluster-state", str(FIXTURES / "cluster.yaml"),
         "--tls-cert", str(certificates.cert_file), "--tls-key", str(certificates.key_file),
         "--host", "127.0.0.1", "--port", "0", "--log-level", "info",
         # Nothing times out during the test: what must make room is the connection cap.
         "--handshake-timeout", "300", "--header-timeout", "300"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=_lowered_file_limit,
    )
    output = ProcessOutput(process, timeout=WAIT)
    try:
        port = int(output.wait_for(r"running on https://127\.0\.0\.1:(\d+)").group(1))
        yield port, output
    finally:
        process.terminate()
        process.wait(timeout=30)


def _context(certificates: GeneratedCertificates) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificates.ca_file))


def test_eleven_hundred_idle_connections_do_not_lock_new_callers_out(
    room_for_the_clients: None, server_port: tuple[int, ProcessOutput],
    certificates: GeneratedCertificates,
) -> None:
    """Before: uvicorn accepted until the 1,024 descriptors were gone; then libuv closed
    every new connection at once, with nothing in the log."""
    port, output = server_port
    context = _context(certificates)

    def idle(index: int) -> socket.socket | None:
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        except OSError:
            return None
        if index % 2:
            return raw  # never starts the TLS handshake
        try:
            return context.wrap_socket(raw, server_hostname=SERVICE_HOST)  # then silent
        except OSError:
            raw.close()
            return None  # evicted during its own handshake

    with contextlib.ExitStack() as stack, ThreadPoolExecutor(32) as pool:
        for sock in pool.map(idle, range(IDLE)):
            if sock is not None:
                stack.callback(sock.close)

        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context,
                          timeout=TIMEOUT) as client:
            health = client.get("/healthz", extensions=SNI)
            metrics = client.get("/metrics", extensions=SNI).text

    assert health.status_code == 200
    assert 'edgewarden_connection_limit_hits_total{limit="evicted_' in metrics
    open_now = next(float(line.split()[-1]) for line in metrics.splitlines()
                    if line.startswith("edgewarden_connections_open "))
    assert open_now <= FILE_LIMIT - 64
    output.wait_for(r"connection limit hit: evicted_(idle|handshake)")
    assert "Traceback" not in output.text
