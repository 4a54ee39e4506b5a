"""``edgewarden certs generate|bootstrap`` and ``edgewarden webhook-config`` (docs/certs.md)."""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from webhook.cli.app import app, console, err_console, user_errors
from webhook.cli.examples import examples
from webhook.cli.options import out_file, output_format
from webhook.cli.output import deliver, documents, structured
from webhook.cli.policy_source import policy_paths
from webhook.errors import CertificateError
from webhook.policy.model.decision import FailurePolicy

certs_app = typer.Typer(
    name="certs",
    help="Certificates for the webhook: generate them, or keep them in a cluster Secret.",
    no_args_is_help=True,
    epilog=examples(
        ("edgewarden certs generate --out tls", "a CA and a serving certificate, once"),
        ("edgewarden certs bootstrap --out /etc/edgewarden/tls",
         "kept in a Secret and rotated (needs a cluster)"),
    ),
)
app.add_typer(certs_app, name="certs")


class KeyTypeChoice(StrEnum):
    ecdsa = "ecdsa"
    rsa = "rsa"


@certs_app.command(
    "generate",
    epilog=examples(
        ("edgewarden certs generate --out tls", "the caBundle alone on stdout"),
        ("CA_BUNDLE=$(edgewarden certs generate --out tls 2>/dev/null)", "for a script"),
        ("edgewarden certs generate --out tls --service hooks --namespace platform "
         "--key-type rsa --host 127.0.0.1 -o json", "file names and caBundle as JSON"),
    ),
)
@user_errors
def generate(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for ca.crt, ca.key, tls.crt, tls.key.")
    ],
    service: Annotated[str, typer.Option(help="The webhook's Service name.")] = "edgewarden",
    namespace: Annotated[str, typer.Option(help="The Service's namespace.")] = "edgewarden",
    days: Annotated[int, typer.Option(help="Validity of the serving certificate.")] = 365,
    ca_days: Annotated[int, typer.Option("--ca-days", help="Validity of the CA.")] = 3650,
    key_type: Annotated[
        KeyTypeChoice, typer.Option("--key-type", help="ECDSA P-256, or RSA 2048.")
    ] = KeyTypeChoice.ecdsa,
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host", help="Extra DNS name or IP address in the certificate (repeatable)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing files.")] = False,
    output: Annotated[str, output_format("text", "json", "yaml")] = "text",
) -> None:
    """A CA and a serving certificate for SERVICE.NAMESPACE.svc; prints the caBundle.

    With -o text (the default) the base64 caBundle is alone on stdout; -o json or yaml
    prints it with the files written and the name the certificate serves.
    """
    from webhook.certs.files import generate_certificates

    made = generate_certificates(
        out,
        service=service,
        namespace=namespace,
        days=days,
        ca_days=ca_days,
        key_type=key_type.value,
        hosts_extra=tuple(host or ()),
        force=force,
    )
    err_console.print(
        f"wrote {made.ca_file}, {made.ca_key_file} (CA) and {made.cert_file}, {made.key_file} "
        f"(serving {service}.{namespace}.svc); the caBundle for the webhook configurations:",
        highlight=False,
    )
    if output == "text":
        typer.echo(made.ca_bundle_b64)  # alone on stdout: CA_BUNDLE=$(edgewarden certs generate)
        return
    printout = {
        "service": f"{service}.{namespace}.svc",
        "files": {"ca.crt": str(made.ca_file), "ca.key": str(made.ca_key_file),
                  "tls.crt": str(made.cert_file), "tls.key": str(made.key_file)},
        "caBundle": made.ca_bundle_b64,
    }
    typer.echo(structured(printout, output), nl=False)


@certs_app.command(
    "bootstrap",
    epilog=examples(
        ("edgewarden certs bootstrap --namespace edgewarden --out /etc/edgewarden/tls",
         "an init container's command (needs a cluster)"),
    ),
)
@user_errors
def bootstrap(
    out: Annotated[
        Path, typer.Option("--out", help="Folder the server reads tls.crt/tls.key from.")
    ],
    namespace: Annotated[
        str, typer.Option(help="edgewarden's namespace (holds the Secret).")
    ] = "edgewarden",
    service: Annotated[str, typer.Option(help="The webhook's Service name.")] = "edgewarden",
    secret: Annotated[
        str, typer.Option(help="The Secret keeping CA and serving certificate.")
    ] = "edgewarden-tls",
    validating_name: Annotated[
        str,
        typer.Option(
            "--validating-name", help="ValidatingWebhookConfiguration whose caBundle is kept."
        ),
    ] = "edgewarden-validating",
    mutating_name: Annotated[
        str,
        typer.Option(
            "--mutating-name", help="MutatingWebhookConfiguration whose caBundle is kept."
        ),
    ] = "edgewarden-mutating",
    serving_days: Annotated[int, typer.Option("--serving-days")] = 90,
    ca_days: Annotated[int, typer.Option("--ca-days")] = 1825,
    key_type: Annotated[KeyTypeChoice, typer.Option("--key-type")] = KeyTypeChoice.ecdsa,
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="Extra DNS name or IP address in the serving certificate, for a server "
            "reached by URL (repeatable).",
        ),
    ] = None,
) -> None:
    """Create or renew the certificate Secret, patch both caBundles, write the files (once)."""
    from webhook.certs.bootstrap import CertificateManager, ManagerSettings

    settings = ManagerSettings(
        namespace=namespace,
        service=service,
        secret_name=secret,
        out_dir=out,
        webhook_configurations=(("validating", validating_name), ("mutating", mutating_name)),
        serving_days=serving_days,
        ca_days=ca_days,
        key_type=key_type.value,
        hosts_extra=tuple(host or ()),
    )
    manager = CertificateManager(settings=settings)
    changed = manager.sync_once()
    state = manager.state
    assert state is not None
    expires = f"{state.serving.not_after:%Y-%m-%d %H:%M} UTC"
    console.print(
        f"{'updated' if changed else 'up to date'}: Secret {namespace}/{secret}, "
        f"files in {out}; serving certificate expires {expires}, "
        f"caBundle holds {len(state.bundle)} CA",
        highlight=False,
    )


@app.command(
    "webhook-config",
    epilog=examples(
        ("edgewarden webhook-config --inject-ca-from edgewarden/edgewarden-serving "
         "--out webhooks.yaml", "for cert-manager's CA injector"),
        ('edgewarden webhook-config --policies policies/ --ca-bundle-b64 '
         '"$(edgewarden certs generate --out tls)"', "with the caBundle of a new CA"),
        ("edgewarden webhook-config --policies policies/ -o json --failure-policy Ignore",
         "JSON, failing open"),
    ),
)
@user_errors
def webhook_config(
    policies: Annotated[
        list[Path] | None,
        typer.Option(
            "--policies",
            help="Policy file or folder (repeatable; default: ./policies, else the packaged "
            "defaults).",
        ),
    ] = None,
    ca_bundle: Annotated[
        Path | None,
        typer.Option("--ca-bundle", help="PEM file of the CA(s) the API server must trust."),
    ] = None,
    ca_bundle_b64: Annotated[
        str | None,
        typer.Option(
            "--ca-bundle-b64", help="The same, already base64 (as `certs generate` prints)."
        ),
    ] = None,
    service: Annotated[str, typer.Option(help="The webhook's Service name.")] = "edgewarden",
    namespace: Annotated[
        str, typer.Option(help="edgewarden's namespace (always excluded).")
    ] = "edgewarden",
    port: Annotated[int, typer.Option(help="The Service port.")] = 443,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="https://HOST:PORT of a server outside the cluster: clientConfig.url "
            "(+ /validate, /mutate) instead of the Service.",
        ),
    ] = None,
    timeout: Annotated[int, typer.Option(help="timeoutSeconds, 1..30.")] = 5,
    failure_policy: Annotated[
        FailurePolicy, typer.Option("--failure-policy", help="Validating webhook.")
    ] = FailurePolicy.FAIL,
    mutating_failure_policy: Annotated[
        FailurePolicy, typer.Option("--mutating-failure-policy", help="Mutating webhook.")
    ] = FailurePolicy.FAIL,
    exclude_namespace: Annotated[
        list[str] | None,
        typer.Option("--exclude-namespace", help="Also never send this namespace (repeatable)."),
    ] = None,
    inject_ca_from: Annotated[
        str | None,
        typer.Option(
            "--inject-ca-from", help="NAMESPACE/CERTIFICATE for cert-manager's CA injector."
        ),
    ] = None,
    except_exported: Annotated[bool, typer.Option(
        "--except-exported",
        help="Leave out what `edgewarden export` runs natively (hybrid mode: nothing is "
        "judged twice).")] = False,
    keep: Annotated[list[str] | None, typer.Option(
        "--keep", metavar="POLICY",
        help="With --except-exported: a policy exported with `export --keep` (repeatable).")
    ] = None,
    output: Annotated[str, output_format("yaml", "json")] = "yaml",
    out: Annotated[Path | None, out_file("the configurations")] = None,
) -> None:
    """The Validating/MutatingWebhookConfiguration for the policies, as YAML or a JSON List."""
    from webhook.policy.load.loader import load_policies
    from webhook.registration.render import WebhookSettings, render

    if ca_bundle is not None and ca_bundle_b64 is not None:
        raise CertificateError("give --ca-bundle or --ca-bundle-b64, not both")
    if ca_bundle is not None:
        try:
            ca_bundle_b64 = base64.b64encode(ca_bundle.read_bytes()).decode("ascii")
        except OSError as error:
            raise CertificateError(f"--ca-bundle {ca_bundle}: {error.strerror}") from None
    elif ca_bundle_b64 is not None:
        try:  # tolerate a bundle pasted with line breaks
            ca_bundle_b64 = base64.b64encode(
                base64.b64decode("".join(ca_bundle_b64.split()))
            ).decode()
        except (binascii.Error, ValueError):
            raise CertificateError("--ca-bundle-b64 is not valid base64") from None
    settings = WebhookSettings(
        service=service,
        namespace=namespace,
        port=port,
        ca_bundle_b64=ca_bundle_b64,
        timeout_seconds=timeout,
        failure_policy=failure_policy.value,
        mutating_failure_policy=mutating_failure_policy.value,
        excluded_namespaces=tuple(exclude_namespace or ()),
        inject_ca_from=inject_ca_from,
        url=url,
    )
    settings.check()  # settings errors before policy errors: they are cheaper to fix
    policy_set = load_policies(*policy_paths(policies))
    if except_exported:
        from webhook.native.coverage import webhook_share

        policy_set = webhook_share(policy_set, keep or ())
    text = documents(render(policy_set, settings), output)
    if ca_bundle_b64 is None and inject_ca_from is None:
        err_console.print(
            "note: no caBundle given; the API server will not trust the webhook until one is "
            "set (--ca-bundle, `certs bootstrap`, or cert-manager with --inject-ca-from)",
            highlight=False,
        )
    deliver(text, out)
