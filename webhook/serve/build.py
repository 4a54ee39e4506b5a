"""The composition root: every dependency of the webhook built once from ``ServeSettings``
(certificates, cluster, policies, metrics, uvicorn over TLS), nothing changed afterwards but
the policy slot.

``build_runtime`` does everything that can fail on bad input (missing certificate files,
a broken policy set, an unreadable cluster-state file) before a socket is opened, raising
EdgewardenError so the CLI prints one message and exits 2. webhook/serve then runs uvicorn
and the supervised background work on one event loop.
"""

from __future__ import annotations

import functools
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from starlette.types import ASGIApp

from webhook.admission.app import create_app
from webhook.admission.claiming import ClaimGate
from webhook.admission.decisionlog import DecisionLog
from webhook.admission.listener import EdgeServer, ProbeServer
from webhook.admission.metrics import Metrics
from webhook.admission.policies_reload import PolicyReloader
from webhook.admission.probes import ProbeEndpoints
from webhook.admission.refusals import RefusalLog
from webhook.admission.settings import ServerSettings
from webhook.admission.state import ServerState, certificate_expiry
from webhook.background import BackgroundWork
from webhook.certs.settings import CertificateSettings
from webhook.certs.tls import ServingCertificate, uvicorn_config
from webhook.cluster.backend import ClusterBackend
from webhook.cluster.claims import ClaimBook, ClaimSettings
from webhook.cluster.memory import MemoryCluster
from webhook.cluster.reservations import Reservations
from webhook.errors import CertificateError
from webhook.native.coverage import webhook_share
from webhook.policy.load.loader import load_policies
from webhook.policy.model.exceptions import NO_EXCEPTIONS, ExceptionRegistry
from webhook.serve.settings import ServeSettings

if TYPE_CHECKING:  # imported lazily at run time: only --manage-certs and clusters need them
    from webhook.certs.bootstrap import CertificateManager

log = logging.getLogger("edgewarden.server")


@dataclass(frozen=True)
class Claiming:
    """Limit places and unique keys claimed at the API server (webhook/cluster/claims.py):
    the book of Claim objects and the gate admissions take them through."""

    book: ClaimBook
    gate: ClaimGate


@dataclass
class Runtime:
    """A server ready to listen: its state, app and the pieces the background work drives."""

    settings: ServeSettings
    state: ServerState
    app: ASGIApp
    reloader: PolicyReloader
    certificate: ServingCertificate
    cluster: ClusterBackend
    reservations: Reservations | None  # None: claims arbitrate (webhook/admission/claiming.py)
    dev_ca_bundle: str | None = None
    # The PolicyException objects of the cluster, filled by webhook.controllers and read by
    # the handlers (None: no cluster to read them from).
    exceptions: ExceptionRegistry | None = None
    # Claims at the API server (None: the in-process reservations alone); the controllers'
    # collector sweeps the book the handlers' gate writes.
    claims: Claiming | None = None
    # More work to run beside the server (root.attach_controllers adds the watch of Policy
    # and PolicyException objects, leader election and the continuous reports): each started
    # with the server, restarted when it fails, and cancelled when it stops.
    background: list[BackgroundWork] = field(default_factory=list)
    # Run once the server has stopped and the background work is cancelled (e.g. hand the
    # leader Lease over, stop watch threads); blocking calls, run in a thread.
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    # True while the server must write nothing to the cluster that an uninstall removes
    # (webhook/controllers/registration.py sets it; the certificate rotation honours it).
    writes_paused: Callable[[], bool] = lambda: False


def build_runtime(settings: ServeSettings, *,
                  clock: Callable[[], float] = time.time) -> Runtime:
    """Everything the server needs, validated; raises EdgewardenError on bad input.
    ``clock``: what reviews are judged at (PolicyException expiry); tests inject theirs."""
    certificate, ca_bundle = _certificate(settings)
    cluster = _cluster(settings)
    # With claims the API server arbitrates every place (claims, or the managed quota), and
    # an in-process reservation would only let a fabricated review hold a place on one
    # replica (docs/replicas.md): reservations serve the clusters without an API server.
    reservations = None if settings.takes_claims else Reservations(
        grace_seconds=settings.reservations.grace_seconds,
        max_age_seconds=settings.reservations.max_age_seconds,
    )
    # The watch releases what it sees appear, and tells how current it is.
    cluster.attach_reservations(reservations)
    metrics = Metrics()
    metrics.watch_cluster(cluster.state)
    metrics.watch_certificate(lambda: certificate_expiry(certificate))
    # A real cluster's PolicyException objects, once the controllers have read them.
    registry = ExceptionRegistry() if settings.reads_the_api else None
    if registry is not None:
        metrics.watch_exceptions(lambda: registry.current, clock)
    claiming = _claiming(settings) if settings.takes_claims else None
    state = ServerState(
        cluster=cluster,
        metrics=metrics,
        decision_log=DecisionLog.open(settings.server.decision_log),
        reservations=reservations,
        dry_run=settings.server.dry_run,
        max_body_bytes=settings.server.max_body_bytes,
        certificate=certificate,
        require_client_certificate=certificate.verifies_clients,
        refusals=RefusalLog(metrics.count_limit_hit),
        evaluation=settings.evaluation,
        exception_rules=settings.policies.exception_rules,
        exceptions=registry if registry is not None else NO_EXCEPTIONS,
        clock=clock,
        claims=claiming.gate if claiming is not None else None,
    )
    if claiming is not None:
        state.readiness.add_detail("claims", claiming.book.counters)
    policies = settings.policies
    reloader = PolicyReloader(
        policies.paths,
        state,
        loader=functools.partial(load_policies, internal_lb_flavour=policies.internal_lb_flavour),
        settings=policies.reload,
        share=(functools.partial(webhook_share, keep=policies.keep_on_webhook)
               if policies.except_exported else None),
        shadow_paths=policies.shadow,
    )
    # Policy objects of the cluster may be all there is; readiness then waits for them.
    reloader.load_initial(files_may_be_empty=settings.watches_cluster_objects)
    runtime = Runtime(settings, state, create_app(state), reloader, certificate, cluster,
                      reservations, ca_bundle, registry, claiming)
    if claiming is not None:
        runtime.on_stop.append(claiming.gate.close)
    return runtime


def _claiming(settings: ServeSettings) -> Claiming:
    """The Claim objects live beside the leader's Lease, in edgewarden's namespace."""
    from webhook.cluster.claims_api import KubeClaimStore
    from webhook.cluster.connection import api_client_from_environment
    from webhook.controllers.leader import default_namespace

    namespace = settings.controllers.leader_namespace or default_namespace()
    timeout = settings.reservations.webhook_timeout_seconds
    book = ClaimBook(
        KubeClaimStore(api_client_from_environment(), namespace), namespace,
        ClaimSettings(pending_seconds=settings.reservations.grace_seconds,
                      cooldown_seconds=settings.claims.cooldown_seconds,
                      deadline_seconds=max(1.0, timeout - 1.0)))
    return Claiming(book, ClaimGate(book, manage_quotas=settings.controllers.manage_quotas))


def _certificate(settings: ServeSettings) -> tuple[ServingCertificate, str | None]:
    if settings.dev:
        from webhook.certs.files import generate_dev_certificates

        dev = generate_dev_certificates(settings.dev_dir)
        return (ServingCertificate(dev.cert_file, dev.key_file, _client_ca(settings.certificates),
                                   require_client_certificate=_probes_apart(settings.server)),
                dev.ca_bundle_b64)
    certificates = settings.certificates
    cert_file, key_file = certificates.tls_cert, certificates.tls_key
    if certificates.manage:
        if certificates.directory is None:
            raise CertificateError("--manage-certs needs --cert-dir DIR (where tls.crt/tls.key "
                                   "are written for the server to read)")
        _first_certificate_sync(certificates)
        cert_file = cert_file or certificates.directory / "tls.crt"
        key_file = key_file or certificates.directory / "tls.key"
    if cert_file is None or key_file is None:
        raise CertificateError(
            "serving needs a certificate: pass --tls-cert FILE and --tls-key FILE "
            "(see `edgewarden certs generate`), --manage-certs --cert-dir DIR, or --dev"
        )
    for flag, path in (("--tls-cert", cert_file), ("--tls-key", key_file)):
        if not Path(path).is_file():
            raise CertificateError(f"{flag} {path}: no such file")
    return (ServingCertificate(Path(cert_file), Path(key_file), _client_ca(certificates),
                               require_client_certificate=_probes_apart(settings.server)),
            None)


def _probes_apart(settings: ServerSettings) -> bool:
    """The kubelet probes a plain-HTTP listener of its own (``--probe-port``), so with
    ``--client-ca`` the webhook port can refuse a caller without a certificate at the
    handshake (without it, the probes on this port present none)."""
    return settings.probe_port is not None


def _client_ca(settings: CertificateSettings) -> Path | None:
    if settings.client_ca is not None and not settings.client_ca.is_file():
        raise CertificateError(f"--client-ca {settings.client_ca}: no such file")
    return settings.client_ca


def certificate_manager_for(settings: CertificateSettings) -> CertificateManager:
    from webhook.certs.bootstrap import CertificateManager, ManagerSettings
    from webhook.certs.secretstate import current_namespace

    validating, mutating = settings.webhook_configuration_names
    manager_settings = ManagerSettings(
        namespace=current_namespace(), hosts_extra=settings.hosts,
        service=settings.service_name, secret_name=settings.secret_name,
        webhook_configurations=(("validating", validating), ("mutating", mutating)),
    )
    return CertificateManager(settings=manager_settings, cert_dir=settings.directory)


def _first_certificate_sync(settings: CertificateSettings) -> None:
    """--manage-certs: the Secret and the files must exist before the listener does."""
    try:
        certificate_manager_for(settings).sync_once()
    except CertificateError:
        raise
    except Exception as error:  # the kubernetes client raises its own types
        raise CertificateError(f"--manage-certs: first certificate sync failed: {error}") from None


def _cluster(settings: ServeSettings) -> ClusterBackend:
    if settings.cache.state_file is not None:
        return MemoryCluster.from_yaml(settings.cache.state_file)
    if settings.dev:
        return MemoryCluster()
    from webhook.cluster.kube import KubeCluster  # only a real cluster needs the client

    # The canary judges up to --canary-sample objects: the cache keeps that many whole, per
    # kind (an object created after the kind's samples filled up is never judged otherwise).
    return KubeCluster.from_environment(settings=settings.cache.informer(),
                                        sample_size=settings.policies.reload.canary_sample)


def uvicorn_server(runtime: Runtime) -> EdgeServer:
    """uvicorn with the reloading TLS context, one worker, uvloop + httptools, behind our
    own listener and connection limits (webhook/admission/listener.py)."""
    settings = runtime.settings.server
    limits = settings.connections
    config = uvicorn_config(
        runtime.app, settings.host, settings.port, runtime.certificate,
        loop="uvloop", http="httptools", ws="none", lifespan="off", access_log=False,
        log_level=runtime.settings.log_level.lower(), server_header=False,
        # The API server keeps connections open; a short keep-alive only adds handshakes.
        timeout_keep_alive=limits.idle_timeout, log_config=None,
        # No X-Forwarded-* rewriting: the API server sends none, and the peer that refusal
        # logs name is the one connected (uvicorn's middleware also cost a call a request).
        proxy_headers=False,
    )
    metrics = runtime.state.metrics
    refusals = runtime.state.refusals or RefusalLog(metrics.count_limit_hit)
    server = EdgeServer(config, limits, refusals)
    metrics.watch_connections(lambda: len(server.listener) if server.listener else 0)
    return server


def metrics_server(runtime: Runtime) -> WSGIServer | None:
    """``--metrics-port``: /metrics over plain HTTP for Prometheus, on its own thread."""
    settings = runtime.settings.server
    if settings.metrics_port is None:
        return None
    server, _thread = start_http_server(
        settings.metrics_port, addr=settings.host, registry=runtime.state.metrics.registry
    )
    log.info("metrics on http://%s:%d/metrics", settings.host, server.server_port)
    return server


def probe_server(runtime: Runtime, sock: socket.socket | None = None) -> ProbeServer | None:
    """``--probe-port``: /healthz, /livez and /readyz over plain HTTP on their own listener
    (webhook/admission/listener.py, ProbeServer), answered whatever holds the HTTPS port."""
    settings = runtime.settings.server
    if settings.probe_port is None and sock is None:
        return None
    state = runtime.state
    return ProbeServer(ProbeEndpoints(state), settings.host, settings.probe_port or 0,
                       settings.connections,
                       state.refusals or RefusalLog(state.metrics.count_limit_hit), sock)


