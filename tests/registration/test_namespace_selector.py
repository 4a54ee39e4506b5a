"""Namespaces excluded by label (issue 23): ``serve --webhook-namespace-selector`` and
``webhook-config --namespace-selector`` add a LabelSelector's terms to the namespaceSelector
beside the names always excluded; a bad selector is a one-line error at start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.admission.harness import base_settings
from tests.deploy.checks import parse_with_the_real_cli
from tests.kubeapi import MUTATING_WEBHOOKS, VALIDATING_WEBHOOKS, KubeApi
from tests.support import api_client
from webhook.certs.files import generate_certificates
from webhook.cli.app import app
from webhook.cli.registration_options import registration_settings
from webhook.cluster.webhook_configurations import RestApi
from webhook.policy.load.loader import load_policies
from webhook.policy.model.decision import FailurePolicy
from webhook.policy.model.selectors import LabelSelector, Requirement
from webhook.registration.render import (
    APPROVAL_WEBHOOK,
    WebhookSettings,
    namespace_selector,
    render,
)
from webhook.registration.selector import NamespaceSelectorError, parse_namespace_selector
from webhook.registration.settings import RegistrationSettings
from webhook.serve.build import Runtime, build_runtime

from .test_registration import DEFAULTS, Leading, registration, writes

SELECTOR = {
    "matchLabels": {"team": "platform"},
    "matchExpressions": [
        {"key": "edgewarden.dev/skip", "operator": "DoesNotExist"},
        {"key": "environment", "operator": "In", "values": ["staging", "production"]},
    ],
}
# What the API server reads back: values in the order given (rendered sorted).
RENDERED_TERMS = [
    {"key": "edgewarden.dev/skip", "operator": "DoesNotExist"},
    {"key": "environment", "operator": "In", "values": ["production", "staging"]},
]


def policy_hooks(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    hooks = [hook for document in documents for hook in document["webhooks"]
             if hook["name"] != APPROVAL_WEBHOOK]
    assert len(hooks) == 2, "the shipped policies need a validating and a mutating webhook"
    return hooks


# --- parsing ---------------------------------------------------------------------------

def test_a_selector_is_parsed_into_its_terms() -> None:
    selector = parse_namespace_selector(json.dumps(SELECTOR), "--x")
    assert selector.match_labels == (("team", "platform"),)
    assert selector.match_expressions == (
        Requirement("edgewarden.dev/skip", "DoesNotExist"),
        Requirement("environment", "In", frozenset({"staging", "production"})),
    )
    assert parse_namespace_selector("{}", "--x").is_empty


@pytest.mark.parametrize(("text", "message"), [
    ("{team: a}", "--x: not JSON"),
    ('["a"]', "--x: must be a JSON object"),
    ('{"matchLabel": {}}', "unknown field 'matchLabel'"),
    ('{"matchLabels": {"team": 1}}', "matchLabels['team'] must be a string"),
    ('{"matchLabels": {"-team": "a"}}', "'-team' is not a valid label key"),
    ('{"matchLabels": {"Ex.com/team": "a"}}', "is not a valid label key (prefix)"),
    ('{"matchLabels": {"team": "a b"}}', "'a b' is not a valid label value"),
    ('{"matchLabels": {"team": "' + "a" * 64 + '"}}', "is not a valid label value"),
    ('{"matchExpressions": {"key": "a"}}', "matchExpressions must be a list"),
    ('{"matchExpressions": [{"operator": "Exists"}]}', "[0].key is missing"),
    ('{"matchExpressions": [{"key": "a", "operator": "IsNot"}]}',
     "[0].operator must be one of In, NotIn, Exists, DoesNotExist"),
    ('{"matchExpressions": [{"key": "a", "operator": "In"}]}',
     "[0].values must be non-empty for In"),
    ('{"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]}',
     "[0].values must be empty for Exists"),
    ('{"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]}',
     "[0].values must be a list of strings"),
    ('{"matchExpressions": [{"key": "a", "operator": "Exists", "value": []}]}',
     "unknown field 'value'"),
])
def test_a_bad_selector_is_one_line_naming_the_option(text: str, message: str) -> None:
    with pytest.raises(NamespaceSelectorError) as caught:
        parse_namespace_selector(text, "--x")
    assert message in str(caught.value)
    assert str(caught.value).startswith("--x: ")
    assert "\n" not in str(caught.value)


# --- rendering -------------------------------------------------------------------------

def test_the_terms_follow_the_names_and_the_approval_webhook_keeps_every_namespace() -> None:
    selector = parse_namespace_selector(json.dumps(SELECTOR), "--x")
    settings = WebhookSettings(namespace="guard", excluded_namespaces=("batch",),
                               namespace_selector=selector)
    documents = render(load_policies(DEFAULTS), settings)
    for hook in policy_hooks(documents):
        assert hook["namespaceSelector"] == {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                 "values": ["batch", "guard", "kube-system"]},
                *RENDERED_TERMS,
            ],
            "matchLabels": {"team": "platform"},
        }
    [approval] = [hook for document in documents for hook in document["webhooks"]
                  if hook["name"] == APPROVAL_WEBHOOK]
    assert "namespaceSelector" not in approval


def test_without_a_selector_only_the_names_are_excluded() -> None:
    for hook in policy_hooks(render(load_policies(DEFAULTS), WebhookSettings())):
        assert hook["namespaceSelector"] == {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
             "values": ["edgewarden", "kube-system"]}]}


# --- the options -----------------------------------------------------------------------

def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_serve_parses_the_option_into_the_registration_settings() -> None:
    params = parse_with_the_real_cli([
        "serve", "--register-webhooks", "--webhook-namespace-selector", json.dumps(SELECTOR)])
    settings = registration_settings(
        True, service="edgewarden", url=None, failure_policy=FailurePolicy.FAIL,
        excluded=None, ca_bundle=None, timeout_seconds=5, dry_run=False, namespace="guard",
        namespace_selector=params["webhook_namespace_selector"])
    assert settings is not None
    assert namespace_selector(settings.webhooks)["matchLabels"] == {"team": "platform"}
    assert namespace_selector(settings.webhooks)["matchExpressions"][1:] == RENDERED_TERMS


def test_serve_refuses_a_bad_selector_before_anything_starts() -> None:
    result = invoke("serve", "--register-webhooks", "--policies", str(DEFAULTS),
                    "--webhook-namespace-selector", '{"matchLabels": []}')
    assert result.exit_code == 2
    assert "--webhook-namespace-selector: matchLabels must be an object" in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_a_selector_without_registration() -> None:
    result = invoke("serve", "--policies", str(DEFAULTS),
                    "--webhook-namespace-selector", json.dumps(SELECTOR))
    assert result.exit_code == 2
    assert "needs --register-webhooks" in result.output


def test_webhook_config_renders_the_selector_for_static_installs() -> None:
    result = invoke("webhook-config", "--policies", str(DEFAULTS), "-o", "json",
                    "--namespace-selector", json.dumps(SELECTOR))
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    for hook in policy_hooks(listed["items"]):
        assert hook["namespaceSelector"]["matchExpressions"][1:] == RENDERED_TERMS
        assert hook["namespaceSelector"]["matchLabels"] == {"team": "platform"}
    bad = invoke("webhook-config", "--policies", str(DEFAULTS),
                 "--namespace-selector", '{"matchExpressions": [{"key": "a"}]}')
    assert bad.exit_code == 2
    assert "--namespace-selector: matchExpressions[0].operator must be one of" in bad.output


# --- the controller, against the API double ---------------------------------------------

@pytest.fixture()
def selector_runtime(tmp_path: Path) -> Runtime:
    certificates = generate_certificates(tmp_path / "tls", service="edgewarden",
                                         namespace="edgewarden")
    selector = parse_namespace_selector(json.dumps(SELECTOR), "--x")
    webhooks = WebhookSettings(namespace="edgewarden", namespace_selector=selector)
    return build_runtime(base_settings(certificates, tmp_path, policies=(DEFAULTS,),
                                       registration=RegistrationSettings(webhooks)))


def test_the_controller_registers_the_selector_and_then_writes_nothing(
        kube_api: KubeApi, kubeconfig: Path, selector_runtime: Runtime) -> None:
    kube_api.create({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": "edgewarden", "namespace": "edgewarden"},
                     "spec": {"ports": [{"port": 443}]}})
    with api_client(kubeconfig) as client:
        controller = registration(selector_runtime, RestApi(client), Leading())
        assert controller.sync_once().written == [
            "edgewarden-validating", "edgewarden-mutating"]
        before = writes(kube_api)
        assert controller.sync_once().written == [], "what was read back compares equal"
        assert writes(kube_api) == before
    for plural, name in ((VALIDATING_WEBHOOKS.plural, "edgewarden-validating"),
                         (MUTATING_WEBHOOKS.plural, "edgewarden-mutating")):
        stored = kube_api.get(plural, name)
        hook = stored["webhooks"][0]
        assert hook["namespaceSelector"]["matchExpressions"][1:] == RENDERED_TERMS, name
        assert hook["namespaceSelector"]["matchLabels"] == {"team": "platform"}, name


def test_an_empty_selector_adds_nothing() -> None:
    settings = WebhookSettings(namespace_selector=LabelSelector())
    assert namespace_selector(settings) == namespace_selector(WebhookSettings())

