"""Any kind, by group/version/kind: the loader, check, audit and webhook-config follow the
kinds the policies name, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.support.cli import run
from webhook.cluster.memory import MemoryCluster
from webhook.errors import PolicyLoadError
from webhook.policy.load.loader import load_policies
from webhook.policy.model.kinds import GATEWAY_GROUP, SHORT_NAMES

HERE = Path(__file__).parent
POLICIES = str(HERE / "fixtures-policies.yaml")
MIXED = str(HERE / "fixtures-mixed.yaml")

POLICY = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata:
  name: p
spec:
  match:
{match}
  validations:
    - expression: "true"
"""



def load_match(tmp_path: Path, match: str):
    path = tmp_path / "p.yaml"
    path.write_text(POLICY.format(match=match))
    return load_policies(path)


def problems(tmp_path: Path, match: str) -> list[str]:
    with pytest.raises(PolicyLoadError) as error:
        load_match(tmp_path, match)
    return [str(p) for p in error.value.problems]


def test_short_names_resolve_to_group_version_and_resource(tmp_path: Path) -> None:
    (policy,) = load_match(tmp_path, "    kinds: [HTTPRoute, Service]").policies
    refs = {r.kind: (r.group, r.versions, r.resource) for r in policy.match.resources}
    assert refs == {
        "HTTPRoute": (GATEWAY_GROUP, ("v1",), "httproutes"),
        "Service": ("", ("v1",), "services"),
    }


def test_resource_rules_name_kinds_as_validating_admission_policy_does(tmp_path: Path) -> None:
    match = (
        "    resourceRules:\n"
        "      - {apiGroups: [gateway.networking.k8s.io], apiVersions: [v1, v1beta1],"
        " resources: [httproutes, gateways]}\n"
        "      - {apiGroups: [example.com], apiVersions: [v1], resources: [widgets],"
        " kind: Widget}\n"
    )
    (policy,) = load_match(tmp_path, match).policies
    assert policy.match.kinds == {"HTTPRoute", "Gateway", "Widget.example.com"}
    widget = next(r for r in policy.match.resources if r.kind == "Widget")
    assert (widget.group, widget.resource, widget.api_version) == (
        "example.com", "widgets", "example.com/v1")


def test_an_unknown_short_name_names_file_line_field_and_a_suggestion(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, "    kinds: [Service, HTTPRoutes]")
    assert problem.startswith(f"{tmp_path / 'p.yaml'}:7: spec.match.kinds[1]: ")
    assert "unknown kind 'HTTPRoutes': did you mean 'HTTPRoute'?" in problem
    assert "resourceRules" in problem


def test_a_resource_edgewarden_does_not_know_needs_its_kind(tmp_path: Path) -> None:
    match = ("    resourceRules:\n      - {apiGroups: [example.com], apiVersions: [v1],"
             " resources: [widgets]}\n")
    (problem,) = problems(tmp_path, match)
    assert "spec.match.resourceRules[0].resources[0]" in problem
    assert "add kind: <Kind> to this rule" in problem


def test_wildcards_are_refused(tmp_path: Path) -> None:
    match = ("    resourceRules:\n      - {apiGroups: [gateway.networking.k8s.io],"
             " apiVersions: [v1], resources: ['*']}\n")
    (problem,) = problems(tmp_path, match)
    assert "no wildcards" in problem


def test_a_match_without_kinds_or_resource_rules_is_refused(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, "    operations: [CREATE]")
    assert "spec.match: match needs kinds" in problem


def test_webhook_config_rules_cover_exactly_the_kinds_the_policies_name() -> None:
    result = run("webhook-config", "--policies", POLICIES, "--inject-ca-from", "edgewarden/serving")
    assert result.exit_code == 0, result.output
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    # The mutating configuration holds only the PolicyException approver (no policy mutates).
    assert [d["kind"] for d in documents] == ["ValidatingWebhookConfiguration",
                                              "MutatingWebhookConfiguration"]
    [approver] = documents[1]["webhooks"]
    assert [r["resources"] for r in approver["rules"]] == [["policyexceptions"]]
    (hook,) = documents[0]["webhooks"]
    assert hook["rules"] == [
        {"apiGroups": [GATEWAY_GROUP], "apiVersions": ["v1"], "operations": ["CREATE"],
         "resources": ["grpcroutes"], "scope": "Namespaced"},
        {"apiGroups": [GATEWAY_GROUP], "apiVersions": ["v1"],
         "operations": ["CREATE", "UPDATE"], "resources": ["gateways"], "scope": "Namespaced"},
        {"apiGroups": [GATEWAY_GROUP], "apiVersions": ["v1", "v1beta1"],
         "operations": ["CREATE"], "resources": ["httproutes"], "scope": "Namespaced"},
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE", "DELETE"],
         "resources": ["services"], "scope": "Namespaced"},
    ]


def check_report(*args: str) -> tuple[int, dict]:
    result = run("check", "--policies", POLICIES, "-o", "json", *args)
    return result.exit_code, json.loads(result.stdout)


def verdicts(report: dict) -> dict[str, list[tuple[str, str]]]:
    return {
        f"{r['resource']['apiVersion']}/{r['resource']['kind']}/{r['resource']['name']}": [
            (f["policy"], f["result"]) for f in r["findings"]
        ]
        for r in report["results"]
    }


def test_check_judges_gateways_and_routes_beside_services() -> None:
    code, report = check_report("-f", MIXED)
    assert code == 1
    assert verdicts(report) == {
        "gateway.networking.k8s.io/v1/Gateway/public": [("gateway-listeners-https", "deny")],
        "gateway.networking.k8s.io/v1/Gateway/secure": [("gateway-listeners-https", "pass")],
        "gateway.networking.k8s.io/v1/HTTPRoute/no-hosts": [("routes-need-hostnames", "warn")],
        "gateway.networking.k8s.io/v1/HTTPRoute/with-hosts": [("routes-need-hostnames", "pass")],
        "v1/Service/web": [("deny-nodeport", "deny")],
    }
    # No policy names Ingress, nor Istio's Gateway (same kind name, another group).
    assert report["summary"]["skipped"] == {"Ingress": 1, "Gateway": 1}


def test_audit_of_a_cluster_state_judges_the_kinds_the_policies_name() -> None:
    result = run("audit", "--policies", POLICIES, "--cluster-state", MIXED, "-o", "json")
    report = json.loads(result.stdout)
    assert ("gateway-listeners-https", "deny") in verdicts(report)[
        "gateway.networking.k8s.io/v1/Gateway/public"]
    assert report["summary"]["skipped"] == {"Ingress": 1, "Gateway": 1}


def test_the_memory_cluster_shows_the_kinds_it_is_told_to_follow() -> None:
    cluster = MemoryCluster.from_yaml(MIXED)
    cluster.watch_kinds([SHORT_NAMES["HTTPRoute"]])
    assert sorted(cluster.state()) == ["HTTPRoute", "Namespace"]
    assert cluster.state()["HTTPRoute"]["objects"] == 2
    assert {o["kind"] for o in cluster.snapshot()} == {"Namespace", "HTTPRoute"}
    # Istio's Gateway is filed under its own key, apart from Gateway API's.
    assert cluster.get("Gateway.networking.istio.io", "shop", "istio-gw") is not None


ROUTE_LIMIT = """\
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: few-routes}
spec:
  match: {kinds: [HTTPRoute, Service]}
  limit:
    where: "true"
    max: 3
"""


def test_quota_backs_only_loadbalancer_caps_never_a_cap_on_other_kinds(tmp_path: Path) -> None:
    policy = tmp_path / "few-routes.yaml"
    policy.write_text(ROUTE_LIMIT)
    result = run("quota", "--policies", str(policy), "--cluster-state", MIXED)
    assert result.exit_code == 0, result.output
    # Counting every Service is not counting LoadBalancers, and HTTPRoutes have no quota.
    assert "no limit policy caps LoadBalancer Services" in result.stdout
