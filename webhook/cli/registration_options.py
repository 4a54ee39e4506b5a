"""``serve --register-webhooks`` and its companions: the options, and the settings they make."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from webhook.policy.model.decision import FailurePolicy

if TYPE_CHECKING:  # imported in the function: --help must not load the policy stack
    from webhook.registration.settings import RegistrationSettings

RegisterOption = Annotated[bool, typer.Option(
    "--register-webhooks",
    help="Create and update the webhook configurations once ready (the leader only); "
    "removed by `edgewarden uninstall`, not on stop.")]
WebhookServiceOption = Annotated[str, typer.Option(
    "--webhook-service", metavar="NAME",
    help="The Service the registered configurations point at (in the pod's namespace).")]
WebhookUrlOption = Annotated[str | None, typer.Option(
    "--webhook-url", metavar="URL",
    help="https://HOST:PORT of this server outside the cluster: registered as "
    "clientConfig.url instead of the Service.")]
WebhookFailureOption = Annotated[FailurePolicy, typer.Option(
    "--webhook-failure-policy", metavar="POLICY",
    help="Fail or Ignore, for the registered Service webhooks (--dry-run: Ignore).")]
WebhookExcludeOption = Annotated[list[str] | None, typer.Option(
    "--webhook-exclude-namespace", metavar="NAMESPACE",
    help="Never send this namespace (repeatable; kube-system and the pod's own always).")]
CaBundleOption = Annotated[Path | None, typer.Option(
    "--ca-bundle", metavar="FILE",
    help="PEM of the CA(s) to register as caBundle (default: ca.crt beside the serving "
    "certificate), read again on every change.")]


def registration_settings(
    register: bool, *, service: str, url: str | None, failure_policy: FailurePolicy,
    excluded: list[str] | None, ca_bundle: Path | None, timeout_seconds: float,
    dry_run: bool, namespace: str | None = None,
) -> RegistrationSettings | None:
    """None unless ``--register-webhooks``; the settings are checked now (a bad URL or
    timeout is a one-line error at start, not a failing loop later)."""
    if not register:
        return None
    from webhook.registration.render import WebhookSettings
    from webhook.registration.settings import RegistrationSettings

    if namespace is None:
        from webhook.certs.secretstate import current_namespace

        namespace = current_namespace()
    policy = "Ignore" if dry_run else failure_policy.value
    webhooks = WebhookSettings(
        service=service, namespace=namespace, url=url, failure_policy=policy,
        mutating_failure_policy=policy, excluded_namespaces=tuple(excluded or ()),
        timeout_seconds=max(1, min(30, round(timeout_seconds))),
    )
    webhooks.check()
    return RegistrationSettings(webhooks=webhooks, ca_bundle_file=ca_bundle)
