"""``serve --register-webhooks --except-exported`` (hybrid mode, issue 22): the registered
configurations leave out what `edgewarden export` runs natively, exactly as
``webhook-config --except-exported`` renders them, so nothing is judged twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.admission.harness import base_settings
from tests.kubeapi import MUTATING_WEBHOOKS, VALIDATING_WEBHOOKS, KubeApi
from tests.support import api_client
from webhook.certs.files import GeneratedCertificates, generate_certificates
from webhook.cluster.webhook_configurations import RestApi, WebhookConfigurationApi
from webhook.controllers.registration import WebhookRegistration
from webhook.native.coverage import webhook_share
from webhook.policy.load.loader import load_policies
from webhook.policy.model.policy import PolicySet
from webhook.registration.render import WebhookSettings, render
from webhook.registration.settings import RegistrationSettings
from webhook.serve.build import Runtime, build_runtime

DEFAULTS = Path(__file__).parents[2] / "webhook" / "defaults" / "policies"


@pytest.fixture()
def certificates(tmp_path: Path) -> GeneratedCertificates:
    return generate_certificates(tmp_path / "tls", service="edgewarden", namespace="edgewarden")


def runtime(certificates: GeneratedCertificates, tmp_path: Path, *,
            except_exported: bool) -> Runtime:
    registration = RegistrationSettings(WebhookSettings(namespace="edgewarden"))
    return build_runtime(base_settings(certificates, tmp_path, policies=(DEFAULTS,),
                                       registration=registration,
                                       except_exported=except_exported))


@pytest.fixture()
def rest(kube_api: KubeApi, kubeconfig: Path) -> Iterator[RestApi]:
    kube_api.create({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": "edgewarden", "namespace": "edgewarden"},
                     "spec": {"ports": [{"port": 443}]}})
    with api_client(kubeconfig) as client:
        yield RestApi(client)


def register(served: Runtime, rest: RestApi) -> list[str]:
    settings = served.settings
    assert settings.controllers.registration is not None
    controller = WebhookRegistration(served.state, settings.certificates,
                                     settings.controllers.registration,
                                     WebhookConfigurationApi(rest), leading=lambda: True)
    result = controller.sync_once()
    assert result.waiting is None
    return result.written


def registered(kube_api: KubeApi) -> dict[str, list[dict[str, Any]]]:
    return {kind: kube_api.get(plural, f"edgewarden-{kind}")["webhooks"]
            for kind, plural in (("validating", VALIDATING_WEBHOOKS.plural),
                                 ("mutating", MUTATING_WEBHOOKS.plural))}


def rendered(policies: PolicySet) -> dict[str, list[dict[str, Any]]]:
    """What `webhook-config` renders (with --except-exported: of the webhook's share)."""
    return {document["kind"].removesuffix("WebhookConfiguration").lower(): document["webhooks"]
            for document in render(policies, WebhookSettings(namespace="edgewarden"),
                                   owned=True)}


def summary(webhooks: dict[str, list[dict[str, Any]]]) -> dict[str, list[Any]]:
    """Per configuration, each webhook's name, rules and matchConditions."""
    return {kind: [(w["name"], w["rules"], w.get("matchConditions")) for w in listed]
            for kind, listed in webhooks.items()}


def test_the_registered_configurations_leave_out_what_was_exported(
        kube_api: KubeApi, rest: RestApi, certificates: GeneratedCertificates,
        tmp_path: Path) -> None:
    register(runtime(certificates, tmp_path, except_exported=True), rest)
    found = summary(registered(kube_api))
    assert found == summary(rendered(webhook_share(load_policies(DEFAULTS))))
    # The shipped mutation (internal-loadbalancer) runs natively: /mutate is not called, only
    # the PolicyException approval stays on the mutating configuration.
    assert [name for name, _, _ in found["mutating"]] == ["approve-exception.edgewarden.dev"]
    assert found != summary(rendered(load_policies(DEFAULTS))), "the export narrows them"


def test_without_the_flag_everything_is_registered(
        kube_api: KubeApi, rest: RestApi, certificates: GeneratedCertificates,
        tmp_path: Path) -> None:
    register(runtime(certificates, tmp_path, except_exported=False), rest)
    found = summary(registered(kube_api))
    assert found == summary(rendered(load_policies(DEFAULTS)))
    assert "approve-exception.edgewarden.dev" in [name for name, _, _ in found["mutating"]]
    assert len(found["mutating"]) == 2, "the mutation and the approval"
