"""``edgewarden serve``: the admission webhook over HTTPS (see docs/server.md)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from webhook.cli.app import app, console, user_errors
from webhook.errors import EdgewardenError
from webhook.policy.loader import FLAVOUR_ENVIRONMENT
from webhook.policy.model import INTERNAL_LB_FLAVOURS

MAX_BODY = 6 * 1024 * 1024  # an UPDATE carries object and oldObject
DEV_DIR = Path(".edgewarden-dev")


@app.command()
@user_errors
def serve(
    policies: Annotated[list[Path] | None, typer.Option(
        "--policies", help="Policy file or folder (repeatable). Default: ./policies")] = None,
    host: Annotated[str | None, typer.Option(
        help="Address to bind. Default 0.0.0.0, or 127.0.0.1 with --dev.")] = None,
    port: Annotated[int, typer.Option(help="HTTPS port.")] = 8443,
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
        "--dev-dir", help="Where --dev keeps certificates and a sample review.")] = DEV_DIR,
    manage_certs: Annotated[bool, typer.Option(
        "--manage-certs", help="Issue and rotate the serving certificate.")] = False,
    cert_dir: Annotated[Path | None, typer.Option(
        "--cert-dir", help="Where --manage-certs writes tls.crt/tls.key.")] = None,
    cert_host: Annotated[list[str] | None, typer.Option(
        "--cert-host", help="Extra DNS name or IP address in a --manage-certs serving "
                            "certificate, for a server reached by URL (repeatable).")] = None,
    max_body_bytes: Annotated[int, typer.Option(
        "--max-body-bytes", help="Largest request body accepted (413 above).")] = MAX_BODY,
    log_level: Annotated[str, typer.Option(
        "--log-level", help="debug, info, warning or error.")] = "info",
    internal_lb_flavour: Annotated[str | None, typer.Option(
        "--internal-lb-flavour", envvar=FLAVOUR_ENVIRONMENT,
        help="Cloud of every internalLoadBalancer mutation: aws, aws-lbc, gcp or azure "
             "(default: as each policy says).")] = None,
) -> None:
    """Serve the admission webhook over HTTPS: /validate, /mutate, /healthz, /readyz, /metrics."""
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Imported here so the other commands start without the server stack.
    from webhook.admission.server import build_runtime, run
    from webhook.admission.settings import ServerSettings

    if internal_lb_flavour:
        if internal_lb_flavour not in INTERNAL_LB_FLAVOURS:
            raise typer.BadParameter(
                f"one of {', '.join(INTERNAL_LB_FLAVOURS)}", param_hint="--internal-lb-flavour"
            )
        # Every load, reloads included, reads the setting from here.
        os.environ[FLAVOUR_ENVIRONMENT] = internal_lb_flavour
    if max_body_bytes <= 0:
        raise typer.BadParameter("must be positive", param_hint="--max-body-bytes")
    settings = ServerSettings(
        policies=tuple(policies or [Path("policies")]),
        host=host or ("127.0.0.1" if dev else "0.0.0.0"),
        port=port, tls_cert=tls_cert, tls_key=tls_key, dry_run=dry_run, audit_log=audit_log,
        cluster_state=cluster_state, dev=dev, dev_dir=dev_dir, manage_certs=manage_certs,
        cert_dir=cert_dir, cert_hosts=tuple(cert_host or ()), max_body_bytes=max_body_bytes,
        log_level=log_level,
    )
    for path in settings.policies:
        if not path.exists():
            raise EdgewardenError(f"--policies {path}: no such file or folder")
    runtime = build_runtime(settings)
    if dev and runtime.dev_ca_bundle is not None:
        from webhook.admission.devmode import next_steps

        console.print(next_steps(dev_dir, dev_dir / "ca.crt", runtime.dev_ca_bundle, port),
                      highlight=False, markup=False, soft_wrap=True)
    run(runtime)
