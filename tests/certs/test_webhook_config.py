"""`edgewarden webhook-config`: both configurations, valid for the API server, safe defaults."""

from __future__ import annotations

import base64
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

import webhook.cli  # noqa: F401  (registers every command on the app)
from webhook.certs.files import generate_certificates
from webhook.cli.app import app
from webhook.errors import CertificateError, EdgewardenError
from webhook.policy.model.policy import PolicySet
from webhook.registration.render import WebhookSettings, render

FIXTURES = Path(__file__).parent / "fixtures"
POLICIES = str(FIXTURES / "policies.yaml")
BOTH = {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def by_kind(documents: list[dict]) -> dict[str, dict]:
    return {d["kind"]: d for d in documents}


def both_configurations(text: str) -> dict[str, dict]:
    """The two documents of ``webhook-config`` output, by kind; both must be there, so a
    test looping over them never passes by looping over nothing."""
    docs = by_kind([d for d in yaml.safe_load_all(text) if d])
    assert set(docs) == BOTH, f"expected both configurations, got {sorted(docs)}:\n{text}"
    return docs


def render_cli(*args: str) -> dict[str, dict]:
    """``edgewarden webhook-config --policies POLICIES ARGS``: exit 0, both documents."""
    result = run("webhook-config", "--policies", POLICIES, *args)
    assert result.exit_code == 0, result.output
    return both_configurations(result.stdout)


@pytest.fixture()
def ca(tmp_path: Path):
    return generate_certificates(tmp_path / "tls", service="edgewarden", namespace="edgewarden")


def test_renders_both_configurations_for_the_loaded_policies(ca) -> None:
    docs = render_cli("--ca-bundle", str(ca.ca_file))
    validating = docs["ValidatingWebhookConfiguration"]
    mutating = docs["MutatingWebhookConfiguration"]
    assert validating["metadata"]["name"] == "edgewarden-validating"
    assert mutating["metadata"]["name"] == "edgewarden-mutating"
    hook = validating["webhooks"][0]
    assert hook["clientConfig"]["service"] == {
        "name": "edgewarden",
        "namespace": "edgewarden",
        "path": "/validate",
        "port": 443,
    }
    assert hook["clientConfig"]["caBundle"] == ca.ca_bundle_b64
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["sideEffects"] == "None"
    assert hook["matchPolicy"] == "Equivalent"
    assert hook["timeoutSeconds"] == 5
    assert hook["failurePolicy"] == "Fail"
    rules = {r["resources"][0]: r for r in hook["rules"]}
    assert rules["services"]["apiGroups"] == [""]
    assert rules["services"]["operations"] == ["CREATE", "UPDATE"]
    assert rules["ingresses"]["apiGroups"] == ["networking.k8s.io"]
    assert rules["ingresses"]["operations"] == ["CREATE"]
    mutate_hook = mutating["webhooks"][0]
    assert mutate_hook["clientConfig"]["service"]["path"] == "/mutate"
    assert [r["resources"] for r in mutate_hook["rules"]] == [["services"]]
    assert mutate_hook["reinvocationPolicy"] == "IfNeeded"


def test_output_is_valid_for_the_kubernetes_api(ca) -> None:
    for document in render_cli("--ca-bundle", str(ca.ca_file)).values():
        kubernetes_validate.validate(document, "1.30.0", strict=True)


@pytest.mark.parametrize("namespace", ["edgewarden", "platform-admission"])
def test_kube_system_and_own_namespace_are_always_excluded(namespace: str) -> None:
    for document in render_cli("--namespace", namespace).values():
        [expression] = document["webhooks"][0]["namespaceSelector"]["matchExpressions"]
        assert expression["key"] == "kubernetes.io/metadata.name"
        assert expression["operator"] == "NotIn"
        assert {"kube-system", namespace} <= set(expression["values"])


def test_settings_reach_the_output(tmp_path: Path) -> None:
    out = tmp_path / "webhooks.yaml"
    result = run(
        "webhook-config",
        "--policies",
        POLICIES,
        "--timeout",
        "10",
        "--failure-policy",
        "Ignore",
        "--mutating-failure-policy",
        "Ignore",
        "--inject-ca-from",
        "edgewarden/edgewarden",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    for document in both_configurations(out.read_text()).values():
        hook = document["webhooks"][0]
        assert hook["timeoutSeconds"] == 10
        assert hook["failurePolicy"] == "Ignore"
        assert "caBundle" not in hook["clientConfig"]
        assert document["metadata"]["annotations"] == {
            "cert-manager.io/inject-ca-from": "edgewarden/edgewarden"
        }


@pytest.mark.parametrize(
    ("url", "validate", "mutate"),
    [
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443/validate",
         "https://127.0.0.1:8443/mutate"),
        ("https://webhook.example.com/edgewarden/", "https://webhook.example.com/edgewarden/validate",
         "https://webhook.example.com/edgewarden/mutate"),
    ],
)
def test_url_mode_points_both_webhooks_at_a_server_outside_the_cluster(
    ca, url: str, validate: str, mutate: str
) -> None:
    result = run(
        "webhook-config", "--policies", str(FIXTURES / "policies.yaml"),
        "--ca-bundle", str(ca.ca_file), "--url", url,
    )
    assert result.exit_code == 0, result.output
    docs = by_kind(list(yaml.safe_load_all(result.stdout)))
    validating = docs["ValidatingWebhookConfiguration"]["webhooks"][0]["clientConfig"]
    mutating = docs["MutatingWebhookConfiguration"]["webhooks"][0]["clientConfig"]
    assert validating == {"url": validate, "caBundle": ca.ca_bundle_b64}
    assert mutating == {"url": mutate, "caBundle": ca.ca_bundle_b64}
    for document in docs.values():
        kubernetes_validate.validate(document, "1.30.0", strict=True)
        # The own namespace is still never sent, wherever the server runs.
        [expression] = document["webhooks"][0]["namespaceSelector"]["matchExpressions"]
        assert {"kube-system", "edgewarden"} <= set(expression["values"])


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://127.0.0.1:8443", "https://"),
        ("https://", "https://"),
        ("https://admin:secret@127.0.0.1:8443", "user or password"),
        ("https://127.0.0.1:8443/?x=1", "query or fragment"),
        ("https://127.0.0.1:8443/#top", "query or fragment"),
        ("https://127.0.0.1:99999", "invalid port"),
    ],
)
def test_a_url_the_api_server_would_refuse_is_refused(url: str, complaint: str) -> None:
    result = run("webhook-config", "--policies", str(FIXTURES / "policies.yaml"), "--url", url)
    assert result.exit_code == 2
    assert complaint in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("timeout", ["0", "31"])
def test_timeout_outside_1_to_30_is_refused(timeout: str) -> None:
    result = run("webhook-config", "--policies", POLICIES, "--timeout", timeout)
    assert result.exit_code == 2
    assert "between 1 and 30" in result.output
    assert "Traceback" not in result.output


def test_a_ca_bundle_that_is_not_certificates_is_refused() -> None:
    not_pem = base64.b64encode(b"hello").decode()
    result = run("webhook-config", "--policies", POLICIES, "--ca-bundle-b64", not_pem)
    assert result.exit_code == 2
    assert "caBundle" in result.output


def test_a_configuration_without_rules_is_left_out(policies: PolicySet) -> None:
    """...but for the exception approval webhook, which the mutating one always carries."""
    validating_only = PolicySet(tuple(p for p in policies.policies if not p.mutates))
    documents = render(validating_only, WebhookSettings())
    assert [d["kind"] for d in documents] == ["ValidatingWebhookConfiguration",
                                              "MutatingWebhookConfiguration"]
    assert [w["name"] for w in documents[1]["webhooks"]] == ["approve-exception.edgewarden.dev"]
    [alone] = render(PolicySet(()), WebhookSettings())
    assert [w["name"] for w in alone["webhooks"]] == ["approve-exception.edgewarden.dev"]


def test_hand_built_policy_set_renders_the_same_rules(policies: PolicySet) -> None:
    docs = by_kind(render(policies, WebhookSettings()))
    rules = docs["ValidatingWebhookConfiguration"]["webhooks"][0]["rules"]
    assert {r["resources"][0] for r in rules} == {"services", "ingresses"}


def test_bad_settings_are_user_errors() -> None:
    with pytest.raises(EdgewardenError, match="Fail or Ignore"):
        WebhookSettings(failure_policy="Maybe").check()
    with pytest.raises(CertificateError, match="base64"):
        WebhookSettings(ca_bundle_b64="***").check()


def test_o_is_the_format_and_a_file_name_there_says_to_use_out(tmp_path: Path) -> None:
    """-o was once the output file; a file name given by habit is told where it goes now."""
    result = run("webhook-config", "--policies", POLICIES, "-o", str(tmp_path / "w.yaml"))
    assert result.exit_code == 2
    assert "--out" in result.output
    assert not (tmp_path / "w.yaml").exists()


def test_json_output_is_one_list_of_both_configurations() -> None:
    import json

    result = run("webhook-config", "--policies", POLICIES, "-o", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed["kind"] == "List"
    assert {item["kind"] for item in listed["items"]} == BOTH
    assert listed["items"] == list(yaml.safe_load_all(run(
        "webhook-config", "--policies", POLICIES, "-o", "yaml").stdout))
