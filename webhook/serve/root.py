"""Running a built server: uvicorn on the event loop, and every background task beside it under
one supervisor (webhook/serve/supervisor.py).

The parts ``serve`` always runs, and whether their failure makes the pod unready:

* ``policy-files``: polls the policy files and reloads them. Never unready: the last good set
  keeps serving, and a refused or failed reload shows in /readyz and the metrics.
* ``certificate-files``: picks up rotated serving certificates. Never unready: the current
  certificate keeps serving (an expired one makes the pod unready on its own).
* ``reservation-purge``: frees memory of forgotten reservations (without claims). Never
  unready.
* ``certificate-rotation`` (``--manage-certs``): keeps the Secret and caBundles current.
  Never unready (same reason as certificate-files).

``attach_controllers`` adds the controllers' own (``leader-election``, ``cluster-objects``,
``continuous-audit``, ``quota-manager``); see webhook/controllers/runner.py for theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from webhook.admission.listener import raise_file_limit
from webhook.background import BackgroundWork
from webhook.certs.tls import watch_certificate
from webhook.cluster.reservations import Reservations
from webhook.serve.allocator import return_large_blocks
from webhook.serve.build import (
    Runtime,
    certificate_manager_for,
    metrics_server,
    probe_server,
    uvicorn_server,
)
from webhook.serve.supervisor import Supervisor

if TYPE_CHECKING:  # imported when a real cluster is read: the client is slow to import
    from webhook.cluster.connection import ApiClient
    from webhook.controllers.runner import Controllers, Timing

log = logging.getLogger("edgewarden.server")


def core_work(runtime: Runtime) -> list[BackgroundWork]:
    """The background tasks every server runs (see the module's docstring)."""
    policies, certificates = runtime.settings.policies, runtime.settings.certificates
    work = [
        BackgroundWork("policy-files",
                       lambda: runtime.reloader.watch(policies.poll_seconds)),
        BackgroundWork("certificate-files",
                       lambda: watch_certificate(runtime.certificate, certificates.poll_seconds)),
    ]
    reservations = runtime.reservations
    if reservations is not None:
        work.append(BackgroundWork("reservation-purge", lambda: _purge_reservations(
            reservations, reservations.grace_seconds)))
    if certificates.manage:
        from webhook.controllers.registration import PausableCertStore

        manager = certificate_manager_for(certificates)
        # An uninstall under way: the Secret it removes is not made again (registration.py).
        manager.api = PausableCertStore(manager.api, lambda: runtime.writes_paused())
        work.append(BackgroundWork("certificate-rotation",
                                   lambda: manager.run(certificates.rotation_seconds)))
    return work


def attach_controllers(
    runtime: Runtime, *, api: ApiClient | None = None, clock: Callable[[], float] | None = None,
    timing: Timing | None = None,
) -> Controllers | None:
    """Wire the controllers into ``runtime`` (a server reading a real cluster; None
    otherwise): their loops join the supervisor, their verdict and status /readyz, their
    stop the server's. They are given what they need and change nothing after this."""
    if not runtime.settings.reads_the_api:
        return None
    from webhook.cluster.connection import api_client_from_environment
    from webhook.controllers.runner import Controllers

    assert runtime.exceptions is not None  # built for a server that reads the API
    settings = runtime.settings
    controllers = Controllers(
        settings.controllers, state=runtime.state, reloader=runtime.reloader,
        exceptions=runtime.exceptions, api=api or api_client_from_environment(),
        policies=settings.policies, cache=settings.cache,
        follow_objects=settings.watches_cluster_objects,
        claims=runtime.claims.book if runtime.claims is not None else None,
        claims_interval=settings.claims.interval_seconds,
        certificates=settings.certificates,
        clock=clock or runtime.state.clock, timing=timing)
    runtime.state.readiness.add_check(controllers.not_ready)
    runtime.state.readiness.add_detail("clusterObjects", controllers.objects_status)
    if controllers.registration is not None:
        runtime.state.readiness.add_detail("webhookRegistration",
                                           controllers.registration.status)
        # An uninstall under way pauses the certificate rotation's writes too.
        runtime.writes_paused = controllers.uninstalling
    runtime.background.extend(controllers.work())
    runtime.on_stop.append(controllers.stop)
    return controllers


def supervisor_for(runtime: Runtime) -> Supervisor:
    """One supervisor over the core work and whatever was added to ``runtime.background``;
    its verdict and per-task status join /readyz, which is fixed from then on."""
    state = runtime.state
    supervisor = Supervisor([*core_work(runtime), *runtime.background], counter=state.metrics)
    state.readiness.add_check(supervisor.not_ready)
    state.readiness.add_detail("background", supervisor.status)
    state.readiness.fix()
    return supervisor


async def serve(runtime: Runtime, server: uvicorn.Server,
                sockets: list[socket.socket] | None = None,
                probe_socket: socket.socket | None = None) -> None:
    """Run uvicorn, the probe listener and the supervised background work until the server
    is told to exit. ``sockets`` and ``probe_socket``: already bound (tests)."""
    loop = asyncio.get_running_loop()
    _drain_before_exit(runtime, server, loop)  # its readiness check, before readiness is fixed
    supervisor = supervisor_for(runtime)
    supervised = asyncio.create_task(supervisor.run(), name="supervisor")
    runtime.cluster.start()  # watch threads; /readyz says "not synced" until they have listed
    metrics = metrics_server(runtime)
    probes = probe_server(runtime, probe_socket)
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        loop.add_signal_handler(signal.SIGHUP, runtime.reloader.on_sighup)
    try:
        if probes is not None:
            await probes.start()
        await server.serve(sockets=sockets)
    finally:
        if in_main_thread:
            loop.remove_signal_handler(signal.SIGHUP)
        supervised.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervised
        for stop in runtime.on_stop:
            try:
                await asyncio.to_thread(stop)
            except Exception:  # shutting down: say so, and stop the rest anyway
                log.exception("stopping %s failed", getattr(stop, "__qualname__", stop))
        await asyncio.to_thread(runtime.cluster.stop)
        if metrics is not None:
            metrics.shutdown()
        if probes is not None:
            await probes.stop()
        runtime.state.decision_log.close()


def _drain_before_exit(runtime: Runtime, server: uvicorn.Server,
                       loop: asyncio.AbstractEventLoop) -> None:
    """``--drain-seconds``: the first SIGTERM (or SIGINT) starts a drain instead of the
    shutdown. For that long every answer carries ``Connection: close`` and /readyz fails,
    then uvicorn shuts down as usual; a second signal shuts down at once.

    Why: the API server keeps connections to a webhook alive, and uvicorn's shutdown closes
    the idle ones at once; a request the API server sends on one at that moment meets a
    closed connection (EOF), which it does not retry and turns into the failure policy. A
    closed-after-answer connection is never reused, so the next request opens a new one,
    which the Service sends to a replica that is not stopping."""
    seconds = runtime.settings.server.drain_seconds
    if seconds <= 0:
        return
    shutdown = server.handle_exit
    draining = False
    runtime.state.readiness.add_check(lambda: "shutting down" if draining else None)

    def handle_exit(sig: int, frame: FrameType | None) -> None:
        nonlocal draining
        if draining:
            shutdown(sig, frame)
            return
        draining = True
        server.server_state.draining = True  # type: ignore[attr-defined]
        log.info("signal %d: draining connections for %.0f s, then shutting down", sig, seconds)
        loop.call_soon_threadsafe(loop.call_later, seconds, shutdown, sig, frame)

    # uvicorn installs ``server.handle_exit`` as its signal handler when it starts serving.
    server.handle_exit = handle_exit  # type: ignore[method-assign]


def start_watching(runtime: Runtime) -> None:
    """Start the watch cache ahead of the rest of the start-up (the CLI calls it once the
    policies are loaded): its LISTs, seconds for 100,000 objects, then overlap building the
    controllers and the listener. The collector is tuned first, as the LISTs build what
    lives as long as the process. serve() would start it otherwise (a second start is
    none); serve() also stops it."""
    _tune_garbage_collector()
    runtime.cluster.start()


_gc_tuned = False


def _tune_garbage_collector() -> None:
    """A review of a few MB is tens of thousands of containers: with the default thresholds
    the collector runs many times while one is parsed, and a full collection then scans the
    whole heap, policies included. Everything loaded so far lives as long as the process:
    freeze it out of the scans, and collect the young generation less often (reference
    counting frees a review's objects anyway; the collector only finds cycles). Once."""
    global _gc_tuned
    if _gc_tuned:
        return
    _gc_tuned = True
    return_large_blocks()  # before the LISTs: their page bodies are the large blocks
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)


async def _purge_reservations(reservations: Reservations, interval: float) -> None:
    # Reads purge lazily per namespace; this sweep bounds memory for namespaces nobody
    # asks about again.
    while True:
        await asyncio.sleep(max(interval, 1.0))
        reservations.purge()


def run(runtime: Runtime) -> None:
    """Serve in the foreground (the CLI), on uvloop, until SIGINT/SIGTERM."""
    import uvloop

    raise_file_limit()  # before the listener sizes its connection cap from it
    _tune_garbage_collector()
    server = uvicorn_server(runtime)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(runtime, server))
