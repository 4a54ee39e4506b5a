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
from typing import TYPE_CHECKING

import uvicorn

from webhook.admission.listener import raise_file_limit
from webhook.background import BackgroundWork
from webhook.certs.tls import watch_certificate
from webhook.cluster.reservations import Reservations
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
        manager = certificate_manager_for(certificates)
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
        clock=clock or runtime.state.clock, timing=timing)
    runtime.state.readiness.add_check(controllers.not_ready)
    runtime.state.readiness.add_detail("clusterObjects", controllers.objects_status)
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
    supervisor = supervisor_for(runtime)
    supervised = asyncio.create_task(supervisor.run(), name="supervisor")
    runtime.cluster.start()  # watch threads; /readyz says "not synced" until they have listed
    metrics = metrics_server(runtime)
    probes = probe_server(runtime, probe_socket)
    loop = asyncio.get_running_loop()
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


def _tune_garbage_collector() -> None:
    """A review of a few MB is tens of thousands of containers: with the default thresholds
    the collector runs many times while one is parsed, and a full collection then scans the
    whole heap, policies included. Everything loaded so far lives as long as the process:
    freeze it out of the scans, and collect the young generation less often (reference
    counting frees a review's objects anyway; the collector only finds cycles)."""
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
