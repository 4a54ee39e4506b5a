"""A real uvicorn HTTPS server on 127.0.0.1, built through ``uvicorn_config``, in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
import uvloop

from tests.support import eventually
from webhook.certs.tls import ServingCertificate, uvicorn_config, watch_certificate

HOSTNAME = "edgewarden.edgewarden.svc"


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A trivial ASGI app: ``200 ok`` to every request."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b"ok"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class RunningServer:
    port: int
    cert: ServingCertificate
    server: uvicorn.Server


@contextlib.contextmanager
def serve_tls(
    cert: ServingCertificate, watch_interval: float = 0.02, loop: str = "asyncio"
) -> Iterator[RunningServer]:
    """Serve ``hello_app`` with ``cert`` (and its file watcher) until the block ends, on
    asyncio's loop or on uvloop (what ``edgewarden serve`` runs on)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn_config(
        hello_app,
        "127.0.0.1",
        port,
        cert,
        log_level="warning",
        backlog=1024,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)

    async def main() -> None:
        watcher = asyncio.create_task(watch_certificate(cert, interval=watch_interval))
        try:
            await server.serve(sockets=[sock])
        finally:
            watcher.cancel()

    def run() -> None:
        factory = uvloop.new_event_loop if loop == "uvloop" else None
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def started() -> bool:
        assert thread.is_alive() or server.started, "uvicorn stopped before it started"
        return bool(server.started)

    eventually(started, what="uvicorn to start")
    try:
        yield RunningServer(port, cert, server)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to 127.0.0.1 but verifies the certificate against ``server_hostname``, as
    the API server does when it calls ``SERVICE.NAMESPACE.svc``."""

    def __init__(self, port: int, context: ssl.SSLContext, server_hostname: str = HOSTNAME):
        super().__init__("127.0.0.1", port, context=context, timeout=20)
        self._server_hostname = server_hostname

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            self.sock, server_hostname=self._server_hostname
        )

    @property
    def peer_fingerprint(self) -> str:
        der = self.sock.getpeercert(binary_form=True)
        return hashlib.sha256(der).hexdigest()


def client_context(*ca_files: Any) -> ssl.SSLContext:
    # Not create_default_context: that trusts the system CAs too; here only ours count.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the hostname
    for ca in ca_files:
        context.load_verify_locations(cafile=str(ca))
    return context


def get_ok(connection: PinnedHTTPSConnection) -> str:
    connection.request("GET", "/")
    response = connection.getresponse()
    body = response.read()
    assert response.status == 200 and body == b"ok", (response.status, body)
    return connection.peer_fingerprint


def fetch_fingerprint(port: int, context: ssl.SSLContext, hostname: str = HOSTNAME) -> str:
    connection = PinnedHTTPSConnection(port, context, hostname)
    try:
        return get_ok(connection)
    finally:
        connection.close()
