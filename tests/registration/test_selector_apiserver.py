"""The namespace selector against the real API server: the configurations serve registers
with ``--webhook-namespace-selector`` are accepted, and what the API server stores (with its
defaults filled in) compares equal to what serve wants, so the next pass writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.admission.harness import base_settings
from tests.kube.fixtures import kube_control_plane  # noqa: F401  (the session fixture)
from webhook.certs.files import generate_certificates
from webhook.cluster.webhook_configurations import RestApi, WebhookConfigurationApi
from webhook.controllers.registration import WebhookRegistration
from webhook.registration.render import WebhookSettings
from webhook.registration.selector import parse_namespace_selector
from webhook.registration.settings import RegistrationSettings
from webhook.serve.build import build_runtime

from .test_namespace_selector import RENDERED_TERMS, SELECTOR
from .test_registration import DEFAULTS

NAMESPACE = "selector-test"


def test_the_api_server_keeps_the_selector_and_the_next_pass_writes_nothing(
        kube_control_plane: Any, tmp_path: Path) -> None:  # noqa: F811
    plane = kube_control_plane
    plane.kubectl("create", "namespace", NAMESPACE)
    plane.kubectl("-n", NAMESPACE, "create", "service", "clusterip", "guard",
                  "--tcp=443:8443")
    certificates = generate_certificates(tmp_path / "tls", service="guard", namespace=NAMESPACE)
    webhooks = WebhookSettings(
        service="guard", namespace=NAMESPACE, validating_name="selector-test-validating",
        mutating_name="selector-test-mutating",
        namespace_selector=parse_namespace_selector(json.dumps(SELECTOR), "--x"))
    runtime = build_runtime(base_settings(certificates, tmp_path, policies=(DEFAULTS,),
                                          registration=RegistrationSettings(webhooks)))
    client = plane.api_client()
    try:
        api = WebhookConfigurationApi(RestApi(client))
        controller = WebhookRegistration(runtime.state, runtime.settings.certificates,
                                         RegistrationSettings(webhooks), api,
                                         leading=lambda: True)
        first = controller.sync_once()
        assert first.waiting is None
        assert first.written == ["selector-test-validating", "selector-test-mutating"]
        for kind, name in (("validating", "selector-test-validating"),
                           ("mutating", "selector-test-mutating")):
            stored = api.get(kind, name)
            assert stored is not None, name
            selector = stored["webhooks"][0]["namespaceSelector"]
            assert selector["matchExpressions"][1:] == RENDERED_TERMS, name
            assert selector["matchLabels"] == {"team": "platform"}, name
        assert controller.sync_once().written == [], "the stored form compares equal"
    finally:
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            plane.kubectl("delete", kind, f"selector-test-{kind[:-len('webhookconfiguration')]}",
                          "--ignore-not-found")
        client.close()
