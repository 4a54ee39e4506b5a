"""``edgewarden serve``: the admission webhook over HTTPS (see docs/server.md)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated

import typer

from webhook.admission.settings import (
    DEFAULT_DEV_DIR,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PORT,
    ReloadSettings,
    ServerSettings,
)
from webhook.cli.app import app, console, user_errors
from webhook.cli.options import FlavourOption, PoliciesOption
from webhook.errors import EdgewardenError


@app.command()
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
        "--dev", help="Self-signed certificates, in-memory cluster: try it on a laptop.")] = False,
    dev_dir: Annotated[Path, typer.Option(
        "--dev-dir", help="Where --dev keeps certificates and a sample review.")] = DEFAULT_DEV_DIR,
    manage_certs: Annotated[bool, typer.Option(
        "--manage-certs", help="Issue and rotate the serving certificate.")] = False,
    cert_dir: Annotated[Path | None, typer.Option(
        "--cert-dir", help="Where --manage-certs writes tls.crt/tls.key.")] = None,
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
    max_policy_drop: Annotated[float, typer.Option(
        "--max-policy-drop", min=0.0, max=1.0,
        help="Refuse a reload that drops more than this share of the serving policies.")
    ] = 0.5,
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
) -> None:
    """Serve the admission webhook over HTTPS: /validate, /mutate, /healthz, /readyz, /metrics."""
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Imported here so the other commands start without the server stack.
    from webhook.admission.server import build_runtime, run

    if max_body_bytes <= 0:
        raise typer.BadParameter("must be positive", param_hint="--max-body-bytes")
    settings = ServerSettings(
        policies=tuple(policies or [Path("policies")]),
        host=host or ("127.0.0.1" if dev else "0.0.0.0"),
        port=port, tls_cert=tls_cert, tls_key=tls_key, dry_run=dry_run, audit_log=audit_log,
        cluster_state=cluster_state, dev=dev, dev_dir=dev_dir, manage_certs=manage_certs,
        cert_dir=cert_dir, max_body_bytes=max_body_bytes, log_level=log_level,
        internal_lb_flavour=internal_lb_flavour, metrics_port=metrics_port,
        reload=ReloadSettings(
            canary=reload_canary, canary_sample=canary_sample, run_suites=reload_suites,
            allow_empty=allow_empty_policies, max_drop_share=max_policy_drop,
        ),
        cluster_objects=cluster_objects,
        audit_interval_seconds=parse_duration(audit_interval, "--audit-interval"),
        leader_election_namespace=leader_election_namespace,
    )
    for path in settings.policies:
        if not path.exists():
            raise EdgewardenError(f"--policies {path}: no such file or folder")
    runtime = build_runtime(settings)
    from webhook.controllers.runner import attach

    attach(runtime)  # cluster objects, leader election, the continuous audit (real clusters)
    if dev and runtime.dev_ca_bundle is not None:
        from webhook.admission.devmode import next_steps

        console.print(next_steps(dev_dir, dev_dir / "ca.crt", runtime.dev_ca_bundle, port),
                      highlight=False, markup=False, soft_wrap=True)
    run(runtime)


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
