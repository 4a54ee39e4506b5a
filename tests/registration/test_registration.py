"""``serve --register-webhooks`` and ``edgewarden uninstall`` against the API double: what is
written, when, and what is never touched; and the matchConditions built from the policies."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.admission.harness import base_settings
from tests.kubeapi import LEASES, MUTATING_WEBHOOKS, SECRETS, SERVICES, VALIDATING_WEBHOOKS, KubeApi
from tests.kubeapi.resources import CLAIMS, RESOURCE_QUOTAS
from tests.support import api_client
from webhook.admission.state import LoadedPolicies
from webhook.certs.files import GeneratedCertificates, generate_certificates
from webhook.cluster.memory import MemoryCluster
from webhook.cluster.webhook_configurations import RestApi, WebhookConfigurationApi
from webhook.controllers.registration import WebhookRegistration
from webhook.controllers.uninstall import uninstall
from webhook.policy.cel.expression import compile_expression
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.loader import load_policies
from webhook.policy.model.policy import PolicySet
from webhook.policy.model.request import make_request
from webhook.registration.conditions import field_test, match_conditions
from webhook.registration.render import WebhookSettings
from webhook.registration.settings import UNINSTALLING_ANNOTATION, RegistrationSettings
from webhook.serve.build import Runtime, build_runtime

DEFAULTS = Path(__file__).parents[2] / "webhook" / "defaults" / "policies"
OWNED = {"app.kubernetes.io/managed-by": "edgewarden"}
INTERNAL_LB_KEY = "service.beta.kubernetes.io/aws-load-balancer-internal"


# --- matchConditions -------------------------------------------------------------------

@pytest.mark.parametrize("expression", [
    "has(object.spec.type) && object.spec.type == 'LoadBalancer'",
    "has(object.spec.type)\n  && object.spec.type == \"LoadBalancer\"",
])
def test_an_exact_guarded_field_test_is_recognised(expression: str) -> None:
    test = field_test(expression)
    assert test is not None
    assert test.path == ("spec", "type") and test.values == ("LoadBalancer",)
    assert test.cel() == ("has(object.spec) && has(object.spec.type) && "
                          "object.spec.type == 'LoadBalancer'")


def test_a_list_of_values_is_recognised() -> None:
    test = field_test("has(object.spec.type) && object.spec.type in ['NodePort', 'LoadBalancer']")
    assert test is not None and test.values == ("NodePort", "LoadBalancer")


@pytest.mark.parametrize("expression", [
    "object.spec.type == 'LoadBalancer'",  # unguarded: fails in the API server when absent
    "has(object.spec.ports) && object.spec.type == 'LoadBalancer'",  # guards another field
    "has(object.spec.type) && object.spec.type != 'LoadBalancer'",
    "has(object.spec.type) && object.spec.type == 'LoadBalancer' || true",
    "has(oldObject.spec.type) && oldObject.spec.type == 'LoadBalancer'",
    "has(object.spec.type) && object.spec.type == 'Load\\'Balancer'",
    "has(object.spec.type) && object.spec.type == variables.kind",
])
def test_anything_else_is_left_out(expression: str) -> None:
    assert field_test(expression) is None


def test_the_shipped_mutation_is_called_for_loadbalancers_only() -> None:
    policies = load_policies(DEFAULTS)
    [condition] = match_conditions(policies, mutating=True)
    assert condition["expression"] == (
        "(request.operation in ['CREATE', 'UPDATE'] && request.kind.kind in ['Service'] && "
        "has(object.spec) && has(object.spec.type) && object.spec.type == 'LoadBalancer')")
    # Some shipped validating policy judges every Service: no condition would narrow it.
    assert match_conditions(policies, mutating=False) == []


def write_policy(folder: Path, name: str, body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: edgewarden.dev/v1alpha1
        kind: Policy
        metadata: {{name: {name}}}
        spec:
        """) + textwrap.indent(textwrap.dedent(body), "  "))


NODEPORT = """\
    mode: Enforce
    match: {kinds: [Service], operations: [CREATE, UPDATE]}
    matchConditions:
      - {name: nodeport, expression: "has(object.spec.type) && object.spec.type == 'NodePort'"}
    validations:
      - expression: "false"
        message: no NodePort
"""


def test_a_term_within_a_broader_one_is_dropped_and_delete_gets_no_field_test(
        tmp_path: Path) -> None:
    write_policy(tmp_path, "nodeport", NODEPORT)
    write_policy(tmp_path, "on-delete", """\
        mode: Enforce
        match: {kinds: [Ingress], operations: [DELETE]}
        matchConditions:
          - name: x
            expression: >-
              has(object.spec.ingressClassName) && object.spec.ingressClassName == 'x'
        validations:
          - expression: "true"
            message: never
        """)
    [condition] = match_conditions(load_policies(tmp_path), mutating=False)
    assert condition["expression"] == (
        "(request.operation in ['CREATE', 'UPDATE'] && request.kind.kind in ['Service'] && "
        "has(object.spec) && has(object.spec.type) && object.spec.type == 'NodePort') || "
        "(request.operation in ['DELETE'] && request.kind.kind in ['Ingress'])")
    write_policy(tmp_path, "every-service", """\
        mode: Enforce
        match: {kinds: [Service], operations: [CREATE, UPDATE]}
        validations:
          - expression: "true"
            message: never
        """)
    assert match_conditions(load_policies(tmp_path), mutating=False) == []


# --- the registration controller -------------------------------------------------------

@pytest.fixture()
def certificates(tmp_path: Path) -> GeneratedCertificates:
    return generate_certificates(tmp_path / "tls", service="edgewarden", namespace="edgewarden")


@pytest.fixture()
def runtime(certificates: GeneratedCertificates, tmp_path: Path) -> Runtime:
    write_policy(tmp_path / "policies", "nodeport", NODEPORT)
    registration = RegistrationSettings(WebhookSettings(namespace="edgewarden"))
    return build_runtime(base_settings(certificates, tmp_path,
                                       policies=(tmp_path / "policies", DEFAULTS),
                                       registration=registration))


@pytest.fixture()
def rest(kube_api: KubeApi, kubeconfig: Path) -> Iterator[RestApi]:
    kube_api.create({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": "edgewarden", "namespace": "edgewarden"},
                     "spec": {"ports": [{"port": 443}]}})
    with api_client(kubeconfig) as client:
        yield RestApi(client)


class Leading:
    def __init__(self, value: bool = True) -> None:
        self.value = value

    def __call__(self) -> bool:
        return self.value


def registration(runtime: Runtime, rest: RestApi, leading: Leading) -> WebhookRegistration:
    settings = runtime.settings
    assert settings.controllers.registration is not None
    return WebhookRegistration(runtime.state, settings.certificates,
                               settings.controllers.registration,
                               WebhookConfigurationApi(rest), leading=leading)


def writes(kube_api: KubeApi) -> list[str]:
    return [f"{r.verb} {r.path}" for r in kube_api.writes() if "webhookconfigurations" in r.path]


def test_only_the_leader_registers(kube_api: KubeApi, runtime: Runtime, rest: RestApi) -> None:
    result = registration(runtime, rest, Leading(False)).sync_once()
    assert result.waiting == "not the leader"
    assert writes(kube_api) == []


def test_the_leader_registers_both_once_with_the_ca_and_the_conditions(
        kube_api: KubeApi, runtime: Runtime, rest: RestApi,
        certificates: GeneratedCertificates) -> None:
    controller = registration(runtime, rest, Leading())
    result = controller.sync_once()
    assert result.waiting is None
    assert result.written == ["edgewarden-validating", "edgewarden-mutating"]
    validating = kube_api.get(VALIDATING_WEBHOOKS.plural, "edgewarden-validating")
    mutating = kube_api.get(MUTATING_WEBHOOKS.plural, "edgewarden-mutating")
    for document in (validating, mutating):
        assert document["metadata"]["labels"].items() >= OWNED.items()
        bundles = {w["clientConfig"]["caBundle"] for w in document["webhooks"]}
        assert bundles == {base64.b64encode(certificates.ca_file.read_bytes()).decode()}
    [mutate, approve] = mutating["webhooks"]
    assert "LoadBalancer" in mutate["matchConditions"][0]["expression"]
    assert "matchConditions" not in approve
    before = writes(kube_api)
    assert controller.sync_once().written == []  # the same input writes nothing
    assert writes(kube_api) == before


def test_a_rotated_ca_is_registered_and_the_resource_version_is_sent(
        kube_api: KubeApi, runtime: Runtime, rest: RestApi,
        certificates: GeneratedCertificates, tmp_path: Path) -> None:
    controller = registration(runtime, rest, Leading())
    controller.sync_once()
    rotated = generate_certificates(tmp_path / "other", service="edgewarden",
                                    namespace="edgewarden")
    bundle = rotated.ca_file.read_bytes() + certificates.ca_file.read_bytes()
    certificates.ca_file.write_bytes(bundle)
    assert controller.sync_once().written == ["edgewarden-validating", "edgewarden-mutating"]
    updates = [r for r in kube_api.writes() if r.verb == "update"]
    assert updates, "the rotation wrote no update"
    for request in updates:
        assert request.body["metadata"]["resourceVersion"]
    mutating = kube_api.get(MUTATING_WEBHOOKS.plural, "edgewarden-mutating")
    assert {w["clientConfig"]["caBundle"] for w in mutating["webhooks"]} == {
        base64.b64encode(certificates.ca_file.read_bytes()).decode()}


def test_configurations_someone_else_installed_are_never_touched(
        kube_api: KubeApi, runtime: Runtime, rest: RestApi) -> None:
    theirs = {"apiVersion": "admissionregistration.k8s.io/v1",
              "kind": "ValidatingWebhookConfiguration",
              "metadata": {"name": "edgewarden-validating",
                           "labels": {"app.kubernetes.io/managed-by": "Helm"}},
              "webhooks": []}
    kube_api.create(theirs)
    result = registration(runtime, rest, Leading()).sync_once()
    assert result.written == ["edgewarden-mutating"]
    assert kube_api.get(VALIDATING_WEBHOOKS.plural, "edgewarden-validating")["webhooks"] == []


def test_nothing_is_registered_while_an_uninstall_is_under_way(
        kube_api: KubeApi, runtime: Runtime, rest: RestApi) -> None:
    service: dict[str, Any] = kube_api.get(SERVICES.plural, "edgewarden", namespace="edgewarden")
    service["metadata"]["annotations"] = {UNINSTALLING_ANNOTATION: "true"}
    kube_api.update(service)
    controller = registration(runtime, rest, Leading())
    assert controller.sync_once().waiting == "edgewarden is being uninstalled"
    assert controller.uninstalling
    assert writes(kube_api) == []


def test_uninstall_removes_what_edgewarden_made_and_nothing_else(
        kube_api: KubeApi, runtime: Runtime, rest: RestApi) -> None:
    registration(runtime, rest, Leading()).sync_once()
    for namespace, labels in (("apps", OWNED), ("team", {"owner": "team"})):
        kube_api.create({"apiVersion": "v1", "kind": "ResourceQuota",
                         "metadata": {"name": "edgewarden-loadbalancers" if labels == OWNED
                                      else "theirs", "namespace": namespace, "labels": labels},
                         "spec": {"hard": {"services.loadbalancers": "2"}}})
    kube_api.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": "edgewarden-leader", "namespace": "edgewarden"},
                     "spec": {}})
    kube_api.create({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                     "metadata": {"name": "edgewarden-tls", "namespace": "edgewarden",
                                  "labels": OWNED}, "data": {}})
    kube_api.add_resource(CLAIMS)
    for name, labels in (("lb-apps-1", OWNED), ("someone-elses", {})):
        kube_api.create({"apiVersion": "edgewarden.dev/v1alpha1", "kind": "Claim",
                         "metadata": {"name": name, "namespace": "edgewarden",
                                      "labels": labels}, "spec": {}})
    removed = uninstall(rest, namespace="edgewarden", service="edgewarden", settle=0.0)
    assert removed.service_marked
    assert sorted(removed.objects) == sorted([
        "ValidatingWebhookConfiguration edgewarden-validating",
        "MutatingWebhookConfiguration edgewarden-mutating",
        "ResourceQuota apps/edgewarden-loadbalancers",
        "Claim edgewarden/lb-apps-1",
        "Lease edgewarden/edgewarden-leader",
        "Secret edgewarden/edgewarden-tls",
    ])
    assert kube_api.objects(VALIDATING_WEBHOOKS.plural) == []
    assert kube_api.objects(MUTATING_WEBHOOKS.plural) == []
    assert [q["metadata"]["name"] for q in kube_api.objects(RESOURCE_QUOTAS.plural)] == ["theirs"]
    assert [c["metadata"]["name"] for c in kube_api.objects(CLAIMS.plural)] == ["someone-elses"]
    assert kube_api.objects(LEASES.plural) == []
    assert not kube_api.exists(SECRETS.plural, "edgewarden-tls", namespace="edgewarden")
    service = kube_api.get(SERVICES.plural, "edgewarden", namespace="edgewarden")
    assert service["metadata"]["annotations"][UNINSTALLING_ANNOTATION] == "true"


# --- never too narrow: the condition lets through everything a policy acts on --------

TYPES = st.sampled_from([None, "ClusterIP", "NodePort", "LoadBalancer", "ExternalName", ""])
ANNOTATIONS = st.dictionaries(
    st.sampled_from([INTERNAL_LB_KEY, "service.beta.kubernetes.io/aws-load-balancer-scheme",
                     "example.com/other"]), st.sampled_from(["true", "internal", ""]),
    max_size=2)


def service_object(kind: str | None, annotations: dict[str, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": [{"port": 80}]}
    if kind is not None:
        spec["type"] = kind
    metadata: dict[str, Any] = {"name": "s", "namespace": "apps"}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def condition_of(policies: PolicySet, *, mutating: bool) -> Any:
    [condition] = match_conditions(policies, mutating=mutating)
    return compile_expression(condition["expression"])


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operation=st.sampled_from(["CREATE", "UPDATE"]), new_type=TYPES, old_type=TYPES,
       annotations=ANNOTATIONS)
def test_the_conditions_let_through_whatever_a_policy_acts_on(
        tmp_path_factory: pytest.TempPathFactory, operation: str, new_type: str | None,
        old_type: str | None, annotations: dict[str, str]) -> None:
    """Differential: the shipped mutation, and validating policies with field tests, judged
    by the engine; whenever one patches, matches or fails, the webhook's condition (in CEL,
    as the API server would evaluate it) is true."""
    folder = tmp_path_factory.mktemp("policies")
    write_policy(folder, "nodeport", NODEPORT)
    write_policy(folder, "loadbalancer-source-ranges", LOADBALANCER)
    mutating = load_policies(DEFAULTS / "internal-loadbalancer.yaml")
    validating = load_policies(folder)
    obj = service_object(new_type, annotations)
    old = service_object(old_type, {}) if operation == "UPDATE" else None
    request = make_request(operation, obj, old)
    activation = {"request": request.raw, "object": obj, "oldObject": old}
    for policies, is_mutating in ((mutating, True), (validating, False)):
        decision = Engine(policies).evaluate(request, MemoryCluster())
        acted = bool(decision.patch or decision.matched_policies or decision.errors
                     or decision.violations)
        allowed = condition_of(policies, mutating=is_mutating).evaluate_bool(activation)
        if acted:
            assert allowed, (is_mutating, new_type, old_type, annotations)
    # The point of it: a ClusterIP Service never reaches /mutate.
    if new_type in (None, "ClusterIP"):
        assert not condition_of(mutating, mutating=True).evaluate_bool(activation)


LOADBALANCER = """\
    mode: Enforce
    match: {kinds: [Service], operations: [CREATE]}
    matchConditions:
      - {name: lb, expression: "has(object.spec.type) && object.spec.type in ['LoadBalancer']"}
    validations:
      - expression: "has(object.spec.loadBalancerSourceRanges)"
        message: name the source ranges
"""


def test_a_reload_changes_the_rules_and_removes_a_configuration_no_policy_needs(
        kube_api: KubeApi, runtime: Runtime, rest: RestApi) -> None:
    controller = registration(runtime, rest, Leading())
    assert controller.sync_once().written == ["edgewarden-validating", "edgewarden-mutating"]
    only_mutation = load_policies(DEFAULTS / "internal-loadbalancer.yaml")
    runtime.state.install(LoadedPolicies.build(only_mutation, dry_run=False))
    # The mutating configuration says what it said (the same mutation): not written again.
    assert controller.sync_once().written == ["edgewarden-validating"]
    assert kube_api.objects(VALIDATING_WEBHOOKS.plural) == []
    [mutate, _approve] = kube_api.get(MUTATING_WEBHOOKS.plural, "edgewarden-mutating")["webhooks"]
    assert [r["resources"] for r in mutate["rules"]] == [["services"]]
