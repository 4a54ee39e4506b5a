"""``edgewarden serve``: the admission webhook over HTTPS (see docs/server.md)."""

from __future__ import annotations

import errno
import logging
import re
import socket
from pathlib import Path
from typing import Annotated

import typer

from webhook.admission.settings import (
    DEFAULT_DEV_DIR,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PORT,
    ConnectionSettings,
    ReloadSettings,
)
from webhook.cli.app import app, console, user_errors
from webhook.cli.examples import examples
from webhook.cli.options import FlavourOption, PoliciesOption
from webhook.cli.policy_source import policy_paths
from webhook.cli.registration_options import (
    CaBundleOption,
    CertSecretOption,
    LeaseOption,
    MutatingNameOption,
    RegisterOption,
    ValidatingNameOption,
    WebhookExcludeOption,
    WebhookFailureOption,
    WebhookNamespaceSelectorOption,
    WebhookServiceOption,
    WebhookUrlOption,
    registration_settings,
)
from webhook.errors import EdgewardenError
from webhook.policy.model.decision import FailurePolicy
from webhook.policy.model.exception_rules import DEFAULT_MAX_EXCEPTION_DAYS, ExceptionRules


@app.command(
    epilog=examples(
        ("edgewarden serve --dev", "self-signed certificates, a small in-memory cluster, "
         "curl lines to try (serves until Ctrl-C)"),
        ("edgewarden serve --tls-cert tls/tls.crt --tls-key tls/tls.key "
         "--cluster-state examples/cluster-state.yaml", "serves until Ctrl-C"),
        ("edgewarden serve --manage-certs --cert-dir /etc/edgewarden/tls --metrics-port 8080",
         "in a Pod (needs a cluster)"),
    ),
)
@user_errors
def serve(
    policies: PoliciesOption = None,
    host: Annotated[str | None, typer.Option(
        help="Address to bind. Default 0.0.0.0, or 127.0.0.1 with --dev.")] = None,
    port: Annotated[int, typer.Option(help="HTTPS port.")] = DEFAULT_PORT,
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", help="Also serve GET /metrics over plain HTTP on this port "
        "(for Prometheus; default: /metrics only on the HTTPS port).")] = None,
    tls_cert: Annotated[Path | None, typer.Option(
        "--tls-cert", help="Serving certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(
        "--tls-key", help="Its private key (PEM).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Deny nothing, patch nothing, record everything.")] = False,
    audit_log: Annotated[Path | None, typer.Option(
        "--audit-log", help="Append audit JSON lines here instead of stdout.")] = None,
    cluster_state: Annotated[Path | None, typer.Option(
        "--cluster-state", help="YAML of Namespaces/Services/Ingresses, not the API.")] = None,
    dev: Annotated[bool, typer.Option(
        "--dev", help="Self-signed certificates, in-memory cluster (namespace shop is "
        "production): try it on a laptop.")] = False,
    dev_dir: Annotated[Path, typer.Option(
        "--dev-dir", help="Where --dev keeps certificates, its cluster and sample reviews.")
    ] = DEFAULT_DEV_DIR,
    manage_certs: Annotated[bool, typer.Option(
        "--manage-certs", help="Issue and rotate the serving certificate.")] = False,
    cert_dir: Annotated[Path | None, typer.Option(
        "--cert-dir", help="Where --manage-certs writes tls.crt/tls.key.")] = None,
    cert_host: Annotated[list[str] | None, typer.Option(
        "--cert-host", help="Extra DNS name or IP address in a --manage-certs serving "
                            "certificate, for a server reached by URL (repeatable).")] = None,
    max_body_bytes: Annotated[int, typer.Option(
        "--max-body-bytes", help="Largest request body accepted (413 above).")
    ] = DEFAULT_MAX_BODY_BYTES,
    log_level: Annotated[str, typer.Option(
        "--log-level", help="debug, info, warning or error.")] = "info",
    internal_lb_flavour: FlavourOption = None,
    reload_canary: Annotated[bool, typer.Option(
        "--reload-canary/--no-reload-canary",
        help="Before a reloaded set serves, judge existing objects with it and refuse it if "
        "its policies fail to evaluate on them.")] = True,
    canary_sample: Annotated[int, typer.Option(
        "--canary-sample", min=1, help="How many cached objects the canary judges.")] = 1000,
    reload_suites: Annotated[bool, typer.Option(
        "--reload-suites/--no-reload-suites",
        help="Run the *.test.yaml suites beside the policies before a reloaded set serves.")
    ] = True,
    allow_empty_policies: Annotated[bool, typer.Option(
        "--allow-empty-policies",
        help="Serve (and reload to) a set with no policies; refused by default.")] = False,
    evaluation_budget_ms: Annotated[float, typer.Option(
        "--evaluation-budget-ms", min=1.0,
        help="CEL work one admission may cost, estimated before it runs; a policy over it "
        "fails by its failurePolicy (docs/policies.md, Cost).")] = 50.0,
    evaluation_deadline_ms: Annotated[float, typer.Option(
        "--evaluation-deadline-ms", min=1.0,
        help="Past this, the policies not yet judged fail by their failurePolicy; keep it "
        "well under the webhook's timeoutSeconds.")] = 1000.0,
    client_ca: Annotated[Path | None, typer.Option(
        "--client-ca", help="Answer /validate and /mutate only for callers presenting a "
        "client certificate this CA (PEM) signed (with --probe-port, a caller without one "
        "fails the TLS handshake); reloaded when the file changes.")] = None,
    webhook_timeout: Annotated[float, typer.Option(
        "--webhook-timeout", min=1.0, max=30.0,
        help="The webhook configurations' timeoutSeconds (the longest validating webhook's "
        "beside ours): how long after admission an object may still appear.")] = 5.0,
    reservation_margin: Annotated[float, typer.Option(
        "--reservation-margin", min=0.0,
        help="Seconds added to --webhook-timeout before an unseen reservation is dropped.")
    ] = 5.0,
    watch_stall_timeout: Annotated[float, typer.Option(
        "--watch-stall-timeout", min=1.0,
        help="A watch with no event or bookmark for this long is cut and listed again "
        "(keep it under --cache-max-age).")
    ] = 25.0,
    cache_max_age: Annotated[float, typer.Option(
        "--cache-max-age", min=0.0,
        help="Not ready, and no answer from the cache, while a kind's cache had no event, "
        "bookmark or list for this long (0: never).")] = 30.0,
    handshake_timeout: Annotated[float, typer.Option(
        "--handshake-timeout", min=0.1, help="Seconds for a client's TLS handshake.")] = 5.0,
    header_timeout: Annotated[float, typer.Option(
        "--header-timeout", min=0.1,
        help="Seconds from a connection's start, or a request's first byte, to its headers.")
    ] = 10.0,
    body_timeout: Annotated[float, typer.Option(
        "--body-timeout", min=0.1, help="Seconds from a request's headers to its last byte.")
    ] = 10.0,
    idle_timeout: Annotated[float, typer.Option(
        "--idle-timeout", min=0.1, help="Seconds an idle keep-alive connection stays open.")
    ] = 120.0,
    max_connections: Annotated[int, typer.Option(
        "--max-connections", min=1,
        help="Open connections at most (lowered to the file limit less 64).")] = 1000,
    max_concurrent_requests: Annotated[int, typer.Option(
        "--max-concurrent-requests", min=1,
        help="Requests in flight at most; more are answered 429 with Retry-After.")] = 128,
    max_header_bytes: Annotated[int, typer.Option(
        "--max-header-bytes", min=1024,
        help="Request line and headers at most (431 above).")] = 32 * 1024,
    cluster_objects: Annotated[bool, typer.Option(
        "--cluster-objects/--no-cluster-objects",
        help="Serve the cluster's Policy objects beside the files and honour its "
        "PolicyException objects (when reading a real cluster).")] = True,
    audit_interval: Annotated[str, typer.Option(
        "--audit-interval", metavar="DURATION",
        help="How often the leading replica audits what exists and rewrites the "
        "PolicyReports, e.g. 5m, 90s, 1h; 0 turns it off. Off with --dev and --cluster-state.")
    ] = "5m",
    leader_election_namespace: Annotated[str | None, typer.Option(
        "--leader-election-namespace",
        help="Namespace of the Lease that elects the replica writing statuses and reports "
        "(default: the pod's own).")] = None,
    manage_quotas: Annotated[bool, typer.Option(
        "--manage-quotas",
        help="Keep a ResourceQuota on services.loadbalancers equal to each namespace's "
        "LoadBalancer cap, so the API server makes the cap exact for any number of "
        "replicas (needs a cluster; docs/replicas.md).")] = False,
    except_exported: Annotated[bool, typer.Option(
        "--except-exported",
        help="Hybrid mode: leave to the API server what `edgewarden export` exported "
        "(applied as native objects) and judge only the rest (docs/native.md).")] = False,
    keep_on_webhook: Annotated[list[str] | None, typer.Option(
        "--keep-on-webhook", metavar="POLICY",
        help="With --except-exported: a policy exported with `export --keep` stays here "
        "(repeatable).")] = None,
    allow_policy_removal: Annotated[bool, typer.Option(
        "--allow-policy-removal",
        help="Let a reload serve a set that lacks a policy now serving (removed from the "
        "files on purpose); refused by default, as an emptied or half-written file looks "
        "the same. Deleting a Policy object needs no flag.")] = False,
    max_canary_denial_share: Annotated[float, typer.Option(
        "--max-canary-denial-share", min=0.0, max=1.0,
        help="Refuse a reloaded set that denies existing objects the serving set admits "
        "(an UPDATE of each to itself, or its CREATE), more than this share of those judged.")
    ] = 0.01,
    probe_port: Annotated[int | None, typer.Option(
        "--probe-port", min=0, max=65535,
        help="Also serve GET /healthz, /livez and /readyz over plain HTTP on this port, on "
        "a listener of their own that a flood on the HTTPS port cannot fill (for the "
        "kubelet's probes; they stay on the HTTPS port too).")] = None,
    enable_exceptions: Annotated[bool, typer.Option(
        "--enable-exceptions",
        help="Honour PolicyException objects (off by default), only in the namespaces of "
        "--exception-namespace.")] = False,
    exception_namespace: Annotated[list[str] | None, typer.Option(
        "--exception-namespace", metavar="NAMESPACE",
        help="A namespace whose PolicyExceptions are honoured (repeatable; needed with "
        "--enable-exceptions); exceptions elsewhere are ignored and logged.")] = None,
    max_exception_days: Annotated[int, typer.Option(
        "--max-exception-days", min=1,
        help="Longest lifetime of a PolicyException: expiresAt at most this many days after "
        "its creation, or it is ignored.")] = DEFAULT_MAX_EXCEPTION_DAYS,
    shadow: Annotated[list[Path] | None, typer.Option(
        "--shadow", metavar="DIR",
        help="Candidate policies (a file or folder; repeatable) judged beside the served "
        "ones on every request and never answering: counted in /metrics, logged and "
        "reported where they differ (docs/shadow.md).")] = None,
    register_webhooks: RegisterOption = False,
    webhook_service: WebhookServiceOption = "edgewarden",
    webhook_url: WebhookUrlOption = None,
    webhook_failure_policy: WebhookFailureOption = FailurePolicy.FAIL,
    webhook_exclude_namespace: WebhookExcludeOption = None,
    ca_bundle: CaBundleOption = None,
    drain_seconds: Annotated[float | None, typer.Option(
        "--drain-seconds", metavar="SECONDS", min=0,
        help="On SIGTERM, keep answering this long (closing each connection after its "
        "answer, /readyz failing) before shutting down (default: 5 with a cluster, else "
        "0).")] = None,
    webhook_namespace_selector: WebhookNamespaceSelectorOption = None,
    webhook_validating_name: ValidatingNameOption = "edgewarden-validating",
    webhook_mutating_name: MutatingNameOption = "edgewarden-mutating",
    cert_secret: CertSecretOption = "edgewarden-tls",
    leader_election_lease: LeaseOption = "edgewarden-leader",
    claims: Annotated[bool, typer.Option(
        "--claims/--no-claims",
        help="Claim limit places no quota backs and unique keys (hosts) in Claim objects "
        "at the API server before admitting, so they are exact for any number of replicas "
        "(needs the Claim CRD; docs/replicas.md).")] = True,
) -> None:
    """Serve the admission webhook over HTTPS: /validate, /mutate, /healthz, /readyz, /metrics."""
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Imported here so the other commands start without the server stack.
    from webhook.serve.build import build_runtime
    from webhook.serve.root import run
    from webhook.serve.settings import from_options

    exception_rules = serve_exception_rules(enable_exceptions, exception_namespace or [],
                                            max_exception_days)
    if max_body_bytes <= 0:
        raise typer.BadParameter("must be positive", param_hint="--max-body-bytes")
    if probe_port and probe_port in (port, metrics_port):
        raise typer.BadParameter("must differ from --port and --metrics-port",
                                 param_hint="--probe-port")
    dev_cluster_file: Path | None = None
    if dev and cluster_state is None:
        from webhook.admission.devmode import write_dev_cluster

        try:
            cluster_state = dev_cluster_file = write_dev_cluster(dev_dir)
        except OSError as error:
            raise EdgewardenError(f"--dev-dir {dev_dir}: {error.strerror or error}") from None
    settings = from_options({
        "policies": tuple(policy_paths(policies)),
        "host": host or ("127.0.0.1" if dev else "0.0.0.0"),
        "port": port, "tls_cert": tls_cert, "tls_key": tls_key, "dry_run": dry_run,
        "audit_log": audit_log, "cluster_state": cluster_state, "dev": dev, "dev_dir": dev_dir,
        "manage_certs": manage_certs, "cert_dir": cert_dir, "cert_hosts": tuple(cert_host or ()),
        "max_body_bytes": max_body_bytes, "log_level": log_level,
        "internal_lb_flavour": internal_lb_flavour, "metrics_port": metrics_port,
        "evaluation_budget_ms": evaluation_budget_ms,
        "evaluation_deadline_ms": evaluation_deadline_ms,
        "reload": ReloadSettings(
            canary=reload_canary, canary_sample=canary_sample, run_suites=reload_suites,
            allow_empty=allow_empty_policies, allow_removal=allow_policy_removal,
            max_canary_denial_share=max_canary_denial_share,
        ),
        "client_ca": client_ca, "webhook_timeout_seconds": webhook_timeout,
        "reservation_margin_seconds": reservation_margin,
        "watch_stall_seconds": watch_stall_timeout, "cache_max_age_seconds": cache_max_age,
        "connections": ConnectionSettings(
            handshake_timeout=handshake_timeout, header_timeout=header_timeout,
            body_timeout=body_timeout, idle_timeout=idle_timeout,
            max_connections=max_connections, max_concurrent_requests=max_concurrent_requests,
            max_header_bytes=max_header_bytes,
        ),
        "cluster_objects": cluster_objects,
        "audit_interval_seconds": parse_duration(audit_interval, "--audit-interval"),
        "leader_election_namespace": leader_election_namespace,
        "manage_quotas": manage_quotas,
        "except_exported": except_exported,
        "keep_on_webhook": tuple(keep_on_webhook or ()),
        "probe_port": probe_port,
        "exception_rules": exception_rules,
        "shadow": tuple(shadow or ()),
        "registration": registration_settings(
            register_webhooks, service=webhook_service, url=webhook_url,
            failure_policy=webhook_failure_policy, excluded=webhook_exclude_namespace,
            ca_bundle=ca_bundle, timeout_seconds=webhook_timeout, dry_run=dry_run,
            namespace_selector=webhook_namespace_selector,
            names=(webhook_validating_name, webhook_mutating_name)),
        "claims": claims,
        "leader_election_lease": leader_election_lease,
        "cert_secret": cert_secret,
        "service_name": webhook_service,
        "webhook_configuration_names": (webhook_validating_name, webhook_mutating_name),
    })
    if drain_seconds is None:
        drain_seconds = 5.0 if settings.reads_the_api else 0.0
    settings = from_options({"drain_seconds": drain_seconds}, base=settings)
    if settings.controllers.registration is not None and not settings.reads_the_api:
        raise typer.BadParameter("needs a real cluster (not --dev or --cluster-state)",
                                 param_hint="--register-webhooks")
    for path in settings.policies.paths:
        if not path.exists():
            raise EdgewardenError(f"--policies {path}: no such file or folder")
    # Before certificates and caches: a busy port is one line, not a traceback later.
    server = settings.server
    for flag, number in (("--port", server.port), ("--metrics-port", server.metrics_port)):
        if number:  # None: not served; 0: any free port
            check_port(server.host, number, flag)
    for path in settings.policies.shadow:
        if not path.exists():
            raise EdgewardenError(f"--shadow {path}: no such file or folder")
    runtime = build_runtime(settings)
    from webhook.serve.root import attach_controllers, start_watching

    start_watching(runtime)  # the LISTs overlap the rest of the start-up
    try:
        # Cluster objects, leader election, the continuous reports (real clusters).
        attach_controllers(runtime)
    except BaseException:
        runtime.cluster.stop()  # serve() stops it once it runs; here nothing else would
        raise
    if dev and runtime.dev_ca_bundle is not None:
        from webhook.admission.devmode import next_steps

        console.print(next_steps(dev_dir, dev_dir / "ca.crt", runtime.dev_ca_bundle, port,
                                 dev_cluster_file),
                      highlight=False, markup=False, soft_wrap=True)
    try:
        run(runtime)
    except OSError as error:  # taken between the check above and the bind
        if error.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        raise EdgewardenError(port_message(server.host, port, "--port", error)) from None


def check_port(host: str, port: int, flag: str) -> None:
    """Bind ``host:port`` as the server will (SO_REUSEADDR) and let go; an EdgewardenError
    (exit 2) when it cannot be had: in use, not ours to take, or no such address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise EdgewardenError(port_message(host, port, flag, error)) from None


def port_message(host: str, port: int, flag: str, error: OSError) -> str:
    reason = error.strerror or str(error)
    if error.errno == errno.EADDRINUSE:
        return (f"port {port} on {host} is in use: {reason}; stop what listens there "
                f"(another edgewarden serve?) or choose another {flag}")
    return f"cannot listen on port {port} on {host}: {reason}; choose another {flag} or --host"


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")


def parse_duration(text: str, flag: str) -> float:
    """Seconds of a duration as Kubernetes users write them: ``5m``, ``90s``, ``1h30m``, ``0``."""
    value = text.strip()
    if value in ("0", ""):
        return 0.0
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise typer.BadParameter(f"{text!r} is not a duration such as 5m, 90s or 1h",
                                 param_hint=flag)
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def serve_exception_rules(enabled: bool, namespaces: list[str], max_days: int) -> ExceptionRules:
    """Closed by default: on only with --enable-exceptions, and then only in the namespaces
    named (Kyverno's exceptionNamespace); a namespace without the switch is a mistake."""
    if enabled and not namespaces:
        raise typer.BadParameter(
            "name the namespaces PolicyExceptions may live in with --exception-namespace "
            "(repeatable)", param_hint="--enable-exceptions")
    if namespaces and not enabled:
        raise typer.BadParameter(
            "has no effect while PolicyExceptions are off: add --enable-exceptions",
            param_hint="--exception-namespace")
    return ExceptionRules(enabled=enabled, namespaces=frozenset(namespaces), max_days=max_days)
