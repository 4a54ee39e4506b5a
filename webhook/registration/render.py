"""Rendering the Validating/MutatingWebhookConfiguration for a policy set.

The rules come from the policies (``PolicySet.webhook_rules``), so the API server only calls
us for the kinds and operations some policy needs. What is not a setting, on purpose:

* the namespaceSelector always excludes ``kube-system`` and edgewarden's own namespace: with
  ``failurePolicy: Fail`` a webhook that is down must never block the pods and Services
  that would bring it back (the classic self-lockout);
* ``sideEffects: None`` (dry-run requests reserve nothing), ``admissionReviewVersions: [v1]``,
  ``matchPolicy: Equivalent`` (an Ingress sent through another served version still counts);
* ``reinvocationPolicy: IfNeeded`` on the mutating webhook: our mutations only add what is
  absent, so running again is harmless, and when a later mutating webhook rewrites the
  Service (e.g. makes it a LoadBalancer, or drops annotations) we get to re-apply ours.

The MutatingWebhookConfiguration also carries ``approve-exception.edgewarden.dev``
(``/mutate-policyexception``): every CREATE and UPDATE of a PolicyException, in every
namespace, gets ``spec.approvedBy`` from the requesting user. It always fails closed
(``failurePolicy: Fail``, whatever the settings say for Services): an exception written while
the webhook is down would carry a client's word for who approved it. Only PolicyException
writes depend on it, so it cannot lock the cluster out.

The API server reaches the webhook through the Service (``clientConfig.service``), or, for a
server that runs outside the cluster, at a URL (``clientConfig.url``: the paths
``/validate`` and ``/mutate`` are appended to it).

Both webhooks carry ``matchConditions`` built from the policies (webhook/registration/
conditions.py), so the API server does not call ``/mutate`` for a Service no mutation could
touch. ``serve --register-webhooks`` renders the same documents, labelled as its own
(``owned=True``), and keeps them in the cluster (webhook/controllers/registration.py).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml
from cryptography import x509

from webhook.cluster.webhook_configurations import WebhookKind
from webhook.errors import CertificateError, EdgewardenError
from webhook.policy.load.schema import API_VERSION
from webhook.policy.model.namespaces import NAMESPACE_NAME_LABEL
from webhook.policy.model.policy import PolicySet, WebhookRule
from webhook.registration.conditions import match_conditions

VALIDATING_NAME = "edgewarden-validating"
MUTATING_NAME = "edgewarden-mutating"
VALIDATING_WEBHOOK = "validate.edgewarden.dev"
MUTATING_WEBHOOK = "mutate.edgewarden.dev"
APPROVAL_WEBHOOK = "approve-exception.edgewarden.dev"
APPROVAL_PATH = "/mutate-policyexception"  # webhook/admission/exception_approval.py
ALWAYS_EXCLUDED = ("kube-system",)
FAILURE_POLICIES = ("Fail", "Ignore")
CA_INJECT_ANNOTATION = "cert-manager.io/inject-ca-from"
NAME_LABEL = {"app.kubernetes.io/name": "edgewarden"}
# What ``serve --register-webhooks`` writes on the configurations it owns; one without it
# (rendered for GitOps, installed by the chart's static mode) is never touched by it.
OWNED_LABEL = {"app.kubernetes.io/managed-by": "edgewarden"}
NAMES: dict[WebhookKind, str] = {"validating": VALIDATING_NAME, "mutating": MUTATING_NAME}


def owned(configuration: dict[str, Any]) -> bool:
    """Whether edgewarden made this object (only those it may update or delete)."""
    labels = (configuration.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in OWNED_LABEL.items())
_EXCEPTION_GROUP, _EXCEPTION_VERSION = API_VERSION.split("/")


class WebhookConfigError(EdgewardenError):
    """A webhook configuration setting is out of range."""


@dataclass(frozen=True)
class WebhookSettings:
    service: str = "edgewarden"
    namespace: str = "edgewarden"
    port: int = 443
    ca_bundle_b64: str | None = None
    timeout_seconds: int = 5
    failure_policy: str = "Fail"
    mutating_failure_policy: str = "Fail"
    excluded_namespaces: tuple[str, ...] = ()
    inject_ca_from: str | None = None  # "namespace/certificate" for cert-manager's cainjector
    url: str | None = None  # "https://host:port[/prefix]": clientConfig.url instead of service

    def check(self) -> None:
        if not 1 <= self.timeout_seconds <= 30:
            raise WebhookConfigError(
                f"timeout must be between 1 and 30 seconds (the API server's limit), "
                f"got {self.timeout_seconds}"
            )
        for name, value in (
            ("failure policy", self.failure_policy),
            ("mutating failure policy", self.mutating_failure_policy),
        ):
            if value not in FAILURE_POLICIES:
                raise WebhookConfigError(f"{name} must be Fail or Ignore, got {value!r}")
        if not 1 <= self.port <= 65535:
            raise WebhookConfigError(f"port must be 1..65535, got {self.port}")
        if self.ca_bundle_b64 is not None:
            check_ca_bundle(self.ca_bundle_b64)
        if self.inject_ca_from is not None and self.inject_ca_from.count("/") != 1:
            raise WebhookConfigError(
                f"--inject-ca-from takes NAMESPACE/CERTIFICATE, got {self.inject_ca_from!r}"
            )
        if self.url is not None:
            check_url(self.url)


def check_url(url: str) -> None:
    """What the API server accepts in ``clientConfig.url`` (it refuses the rest at create)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise WebhookConfigError(
            f"--url must be https://HOST:PORT, optionally with a path, got {url!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise WebhookConfigError(f"--url must not carry a user or password, got {url!r}")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise WebhookConfigError(f"--url must not have a query or fragment, got {url!r}")
    try:
        parts.port  # noqa: B018  (parsing the port is the check)
    except ValueError:
        raise WebhookConfigError(f"--url has an invalid port: {url!r}") from None


def endpoint_url(base: str, path: str) -> str:
    """``base`` with ``path`` (``/validate``, ``/mutate``) appended to whatever path it has."""
    return base.rstrip("/") + path


def check_ca_bundle(ca_bundle_b64: str) -> None:
    """A caBundle must be base64 of PEM certificates, else the API server trusts nothing."""
    try:
        pem = base64.b64decode(ca_bundle_b64, validate=True)
    except (binascii.Error, ValueError):
        raise CertificateError("the caBundle is not valid base64") from None
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError as error:
        raise CertificateError(f"the caBundle is not PEM-encoded X.509: {error}") from None


def render(policies: PolicySet, settings: WebhookSettings, *, owned: bool = False
           ) -> list[dict[str, Any]]:
    """The configurations the policies need, validating first; a validating one with no rules
    is left out (the mutating one always carries the exception approval webhook).
    ``owned``: labelled as ``serve --register-webhooks``'s own."""
    settings.check()
    documents = []
    validating_rules = policies.webhook_rules(mutating=False)
    if validating_rules:
        hook = _webhook(validating_rules, settings, mutating=False,
                        conditions=match_conditions(policies, mutating=False))
        documents.append(_document([hook], settings, mutating=False, owned=owned))
    # The mutating configuration always exists: it carries the exception approval webhook.
    webhooks = [approval_webhook(settings)]
    mutating_rules = policies.webhook_rules(mutating=True)
    if mutating_rules:
        webhooks.insert(0, _webhook(mutating_rules, settings, mutating=True,
                                    conditions=match_conditions(policies, mutating=True)))
    documents.append(_document(webhooks, settings, mutating=True, owned=owned))
    return documents


def render_yaml(policies: PolicySet, settings: WebhookSettings) -> str:
    return yaml.safe_dump_all(render(policies, settings), sort_keys=False, explicit_start=True)


def excluded_namespaces(settings: WebhookSettings) -> list[str]:
    return sorted({*ALWAYS_EXCLUDED, settings.namespace, *settings.excluded_namespaces})


def approval_webhook(settings: WebhookSettings) -> dict[str, Any]:
    """The PolicyException approval webhook: every namespace (an exception may live in
    edgewarden's own), CREATE and UPDATE, failing closed."""
    return {
        "name": APPROVAL_WEBHOOK,
        "clientConfig": _client_config(settings, APPROVAL_PATH),
        "rules": [{
            "apiGroups": [_EXCEPTION_GROUP],
            "apiVersions": [_EXCEPTION_VERSION],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["policyexceptions"],
            "scope": "Namespaced",
        }],
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "matchPolicy": "Equivalent",
        "timeoutSeconds": settings.timeout_seconds,
        "failurePolicy": "Fail",
        # Again after any later mutating webhook: the recorded approver has the last word.
        "reinvocationPolicy": "IfNeeded",
    }


def _client_config(settings: WebhookSettings, path: str) -> dict[str, Any]:
    client_config: dict[str, Any]
    if settings.url is not None:
        client_config = {"url": endpoint_url(settings.url, path)}
    else:
        client_config = {
            "service": {
                "name": settings.service,
                "namespace": settings.namespace,
                "path": path,
                "port": settings.port,
            }
        }
    if settings.ca_bundle_b64:
        client_config["caBundle"] = settings.ca_bundle_b64
    return client_config


def _webhook(
    rules: list[WebhookRule], settings: WebhookSettings, *, mutating: bool,
    conditions: list[dict[str, Any]],
) -> dict[str, Any]:
    webhook: dict[str, Any] = {
        "name": MUTATING_WEBHOOK if mutating else VALIDATING_WEBHOOK,
        "clientConfig": _client_config(settings, "/mutate" if mutating else "/validate"),
        "rules": [_rule(rule) for rule in rules],
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "matchPolicy": "Equivalent",
        "timeoutSeconds": settings.timeout_seconds,
        "failurePolicy": settings.mutating_failure_policy if mutating else settings.failure_policy,
        "namespaceSelector": {
            "matchExpressions": [
                {
                    "key": NAMESPACE_NAME_LABEL,
                    "operator": "NotIn",
                    "values": excluded_namespaces(settings),
                }
            ]
        },
    }
    if conditions:
        webhook["matchConditions"] = conditions
    if mutating:
        webhook["reinvocationPolicy"] = "IfNeeded"
    return webhook


def _document(
    webhooks: list[dict[str, Any]], settings: WebhookSettings, *, mutating: bool, owned: bool
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": MUTATING_NAME if mutating else VALIDATING_NAME,
        "labels": {**NAME_LABEL, **(OWNED_LABEL if owned else {})},
    }
    if settings.inject_ca_from:
        metadata["annotations"] = {CA_INJECT_ANNOTATION: settings.inject_ca_from}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration" if mutating else "ValidatingWebhookConfiguration",
        "metadata": metadata,
        "webhooks": webhooks,
    }


def _rule(rule: WebhookRule) -> dict[str, Any]:
    return {
        "apiGroups": [rule.group],
        "apiVersions": list(rule.api_versions),
        "operations": list(rule.operations),
        "resources": [rule.resource],
        "scope": "Namespaced" if rule.namespaced else "Cluster",
    }
