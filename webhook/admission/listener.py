"""Accepting connections ourselves, so that their number can be bounded before TLS.

Why not ``loop.create_server``: it accepts whatever arrives and wraps it in TLS before our
protocol hears of it. A thousand clients that connect and never finish (or never start)
the handshake hold a thousand file descriptors; at the file limit libuv accepts and
closes every new connection at once, and the API server's calls fail with nothing in our
log. Here the listening socket is read by our own accept loop:

* each accepted socket is counted from the start, through the TLS handshake
  (``connect_accepted_socket`` with a handshake timeout) and for its whole life;
* at ``max_connections`` (lowered to the file limit less a reserve) whichever has waited
  longest is cut to make room: the least recently active connection that is not answering
  a request, the oldest handshake, or the connection whose body has been arriving the
  longest. An idle flood, or a flood of slow bodies, gives way to new callers instead of
  locking them out;
* an accept that fails for lack of descriptors evicts one and pauses accepting briefly;
* it keeps the count of requests in flight (``--max-concurrent-requests``), which a
  request joins once its body has arrived (http_protocol.py).

``EdgeServer`` is a ``uvicorn.Server`` whose ``startup`` puts this listener and the
guarded protocol in place of ``create_server``; everything else (serving, graceful
shutdown, signals) is uvicorn's. ``ProbeServer`` runs a second listener, plain HTTP, for
the kubelet's probes only (``serve --probe-port``): its own socket, connection table and
request count, on the same event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import math
import resource
import socket
import ssl
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.server import ServerState as UvicornServerState

from webhook.admission.http_protocol import GuardedHttpProtocol, waited_since
from webhook.admission.refusals import RefusalLog
from webhook.admission.settings import ConnectionSettings
from webhook.errors import EdgewardenError

log = logging.getLogger("edgewarden.server")

RESERVED_FILES = 64  # policies, certificates, audit log, the Kubernetes client, metrics
MIN_CONNECTIONS = 16
ACCEPT_BATCH = 64  # accepts per wake-up, so one burst cannot starve the loop
ACCEPT_PAUSE = 0.1  # after EMFILE: give closing connections a moment
SHUTDOWN_TIMEOUT = 5.0  # a TLS close_notify we wait for, at most
# The kubelet opens a connection per probe and closes it: a few dozen is plenty, and the
# probe port cannot take descriptors the webhook port needs.
PROBE_CONNECTIONS = 32
_OUT_OF_FILES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def connection_cap(configured: int, soft_file_limit: int | None = None) -> int:
    """``configured``, lowered so that connections cannot exhaust the file limit."""
    if soft_file_limit is None:
        soft_file_limit, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft_file_limit == resource.RLIM_INFINITY:
        return configured
    return max(MIN_CONNECTIONS, min(configured, soft_file_limit - RESERVED_FILES))


def raise_file_limit(ceiling: int = 65536) -> int:
    """Raise the soft file limit to the hard one (as Go programs do), up to ``ceiling``;
    returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft


class Listener:
    """The accept loop and the connection table (see the module docstring)."""

    def __init__(
        self,
        sock: socket.socket,
        ssl_context: ssl.SSLContext | None,
        protocol_factory: Callable[..., GuardedHttpProtocol],
        settings: ConnectionSettings,
        refusals: RefusalLog,
        *,
        max_connections: int,
    ) -> None:
        self._sock = sock
        self._ssl = ssl_context
        self._factory = protocol_factory
        self._settings = settings
        self._refusals = refusals
        self.max_connections = max_connections
        self._pending: dict[socket.socket, float] = {}  # in the handshake: accepted at
        self._open: set[GuardedHttpProtocol] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accepting = False
        self._closed = False
        self._sweeper: asyncio.TimerHandle | None = None
        self._in_flight = 0  # requests whose body has arrived, until their app returns
        # Deadlines are checked this often: a timeout fires up to this much late.
        self._sweep_every = min(1.0, settings.header_timeout / 4, settings.body_timeout / 4)

    def __len__(self) -> int:
        return len(self._pending) + len(self._open)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock.setblocking(False)
        self._resume()
        self._sweep()

    def _sweep(self) -> None:
        """Act on every header and body deadline that has passed (see http_protocol)."""
        assert self._loop is not None
        now = self._loop.time()
        for connection in list(self._open):
            connection.check_deadline(now)
        if not self._closed:
            self._sweeper = self._loop.call_later(self._sweep_every, self._sweep)

    # ---- accepting ----

    def _resume(self) -> None:
        if self._closed or self._accepting or self._loop is None:
            return
        self._loop.add_reader(self._sock.fileno(), self._accept_ready)
        self._accepting = True

    def _pause(self) -> None:
        if self._accepting and self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._accepting = False

    def _accept_ready(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno not in _OUT_OF_FILES:
                    log.warning("accept failed: %s", error)
                    return
                self._refusals.hit("file_limit", "listener")
                self._evict_one()
                self._pause()
                assert self._loop is not None
                self._loop.call_later(ACCEPT_PAUSE, self._resume)
                return
            self._admit(conn)

    def _admit(self, conn: socket.socket) -> None:
        if len(self) >= self.max_connections and not self._evict_one():
            self._refusals.hit("max_connections", _peer_of(conn))
            conn.close()  # every connection is answering a request: refuse the newcomer
            return
        conn.setblocking(False)
        assert self._loop is not None
        self._pending[conn] = waited_since()
        task = self._loop.create_task(self._handshake(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handshake(self, conn: socket.socket) -> None:
        assert self._loop is not None
        peer = _peer_of(conn)
        factory = functools.partial(self._factory, tracker=self, key=conn)
        try:
            if self._ssl is None:
                await self._loop.connect_accepted_socket(factory, conn)
            else:
                await self._loop.connect_accepted_socket(
                    factory, conn, ssl=self._ssl,
                    ssl_handshake_timeout=self._settings.handshake_timeout,
                    ssl_shutdown_timeout=SHUTDOWN_TIMEOUT,
                )
        except ConnectionAbortedError as error:
            if "longer than" in str(error):  # the loop's handshake timeout
                self._refusals.hit("handshake_timeout", peer)
        except ssl.SSLError as error:
            # A client certificate the client CA did not sign, a protocol mismatch:
            # log the reason once in a while, never the bytes.
            self._refusals.hit("tls_refused", peer, str(error.reason or type(error).__name__))
        except OSError:
            pass  # the client went away during the handshake (or was evicted)
        finally:
            self._pending.pop(conn, None)

    # ---- the connection table (ConnectionTracker) ----

    def established(self, connection: GuardedHttpProtocol) -> None:
        self._pending.pop(connection.key, None)
        self._open.add(connection)

    def closed(self, connection: GuardedHttpProtocol) -> None:
        self._open.discard(connection)

    def hit(self, limit: str, peer: str) -> None:
        self._refusals.hit(limit, peer)

    @property
    def requests_in_flight(self) -> int:
        return self._in_flight

    def admit_request(self) -> bool:
        if self._in_flight >= self._settings.max_concurrent_requests:
            return False
        self._in_flight += 1
        return True

    def request_done(self) -> None:
        self._in_flight -= 1

    def _evict_one(self) -> bool:
        """Cut whichever has waited longest: the least recently active idle connection,
        the oldest handshake, or the connection whose body has been arriving the longest.
        False when every connection is answering a complete request."""
        # A scan, but only at the cap: nothing per request keeps an order up to date.
        idle = min((c for c in self._open if not c.busy), key=lambda c: c.last_active,
                   default=None)
        oldest = min(self._pending.items(), key=lambda item: item[1], default=None)
        # API servers send a body in milliseconds, and an idle keep-alive connection of
        # theirs was active a moment ago: a crowd of slow senders evicts itself first.
        slowest = min((c for c in self._open if c.body_since is not None),
                      key=lambda c: c.body_since or 0.0, default=None)
        waited = [(idle.last_active, 0) if idle is not None else None,
                  (oldest[1], 1) if oldest is not None else None,
                  (slowest.body_since or 0.0, 2) if slowest is not None else None]
        candidates = [entry for entry in waited if entry is not None]
        if not candidates:
            return False
        _since, which = min(candidates)
        if which == 1:
            assert oldest is not None
            conn = oldest[0]
            del self._pending[conn]
            self._refusals.hit("evicted_handshake", _peer_of(conn))
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # the handshake fails; the loop closes it
        elif which == 2:
            assert slowest is not None
            self._open.discard(slowest)
            slowest.evict_slow_body()
        else:
            assert idle is not None
            self._open.discard(idle)
            self._refusals.hit("evicted_idle", idle.peer)
            idle.transport.abort()
        return True

    # ---- what uvicorn.Server.shutdown calls on its servers ----

    def close(self) -> None:
        self._pause()
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in self._tasks:
            task.cancel()

    async def wait_closed(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _peer_of(conn: socket.socket) -> str:
    try:
        host, port = conn.getpeername()[:2]
    except OSError:
        return "unknown peer"
    return f"{host}:{port}"


class EdgeServer(uvicorn.Server):
    """uvicorn with our listener and guarded protocol (see the module docstring)."""

    def __init__(self, config: uvicorn.Config, settings: ConnectionSettings,
                 refusals: RefusalLog) -> None:
        super().__init__(config)
        self.settings = settings
        self.refusals = refusals
        self.listener: Listener | None = None
        self._own_socket: socket.socket | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            self.should_exit = True
            return
        config = self.config
        sock = sockets[0] if sockets else _bind(config.host, config.port)
        sock.listen(config.backlog)
        factory = functools.partial(
            GuardedHttpProtocol, config=config, server_state=self.server_state,
            app_state=self.lifespan.state, settings=self.settings,
        )
        cap = connection_cap(self.settings.max_connections)
        self.listener = Listener(sock, config.ssl, factory, self.settings, self.refusals,
                                 max_connections=cap)
        self.listener.start()
        self.servers: list[Any] = [self.listener]
        if not sockets:
            self._log_started_message([sock])  # "Uvicorn running on https://HOST:PORT"
        log.info("at most %d connections (file limit %s)",
                 cap, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        self._own_socket = None if sockets else sock
        self.started = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        if self._own_socket is not None:
            self._own_socket.close()


class ProbeServer:
    """Plain HTTP for the kubelet's probes on its own listener (``serve --probe-port``).

    Its own socket, connection table (``PROBE_CONNECTIONS``) and request count, the same
    header, body and idle timeouts as the webhook port: however many connections hold the
    webhook port, the probes are accepted and answered here. It shares the event loop with
    the webhook port on purpose: a loop too blocked to answer admissions fails liveness.
    """

    def __init__(self, app: ASGIApp, host: str, port: int, settings: ConnectionSettings,
                 refusals: RefusalLog, sock: socket.socket | None = None) -> None:
        self.config = uvicorn.Config(
            app, host=host, port=port, http="httptools", ws="none", lifespan="off",
            access_log=False, log_config=None, server_header=False, proxy_headers=False,
            date_header=False, timeout_keep_alive=math.ceil(settings.idle_timeout),
        )
        self.config.load()
        self.settings = settings
        self.refusals = refusals
        self._sock = sock
        self._own_socket = sock is None
        self._state = UvicornServerState()
        self.listener: Listener | None = None

    @property
    def port(self) -> int:
        assert self._sock is not None, "not started"
        return int(self._sock.getsockname()[1])

    async def start(self) -> None:
        if self._sock is None:
            self._sock = _bind(self.config.host, self.config.port)
        self._sock.listen(self.config.backlog)
        factory = functools.partial(
            GuardedHttpProtocol, config=self.config, server_state=self._state, app_state={},
            settings=self.settings,
        )
        self.listener = Listener(self._sock, None, factory, self.settings, self.refusals,
                                 max_connections=connection_cap(PROBE_CONNECTIONS))
        self.listener.start()
        log.info("probes on http://%s:%d/healthz, /livez and /readyz",
                 self.config.host, self.port)

    async def stop(self) -> None:
        if self.listener is None:
            return
        self.listener.close()
        await self.listener.wait_closed()
        # A probe is answered at once: nothing in flight is worth waiting for.
        for connection in list(self._state.connections):
            connection.transport.abort()
        if self._own_socket and self._sock is not None:
            self._sock.close()
        self.listener = None


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise EdgewardenError(
            f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return sock
