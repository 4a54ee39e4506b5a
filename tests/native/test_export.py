"""`edgewarden export`: which shipped policies run natively and why the rest need the webhook,
the shape of the native objects (match, exclusions, modes, failurePolicy, the internal-LB
patch), and the hybrid mode where the webhook leaves the exported policies alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

import webhook.cli  # noqa: F401  (registers every command on the app)
from tests.support.cli import run
from webhook.cli.app import app
from webhook.native.coverage import Where, assess, webhook_share
from webhook.native.export import export
from webhook.policy.load.loader import load_policies

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"

WEBHOOK_ONLY = {
    "limit-loadbalancers-per-namespace": "limit",
    "unique-ingress-hosts": "unique",
    "require-ingress-tls-in-production": "sets.of()",
    "hostnames-owned-by-namespace": "sets.of()",
    "restrict-wildcard-route-hostnames": "sets.of()",
}



def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["labels"]["edgewarden.dev/policy"]: o
            for o in objects if o["kind"] == kind}


def test_the_coverage_of_the_shipped_policies_names_why() -> None:
    policies = load_policies(POLICIES)
    coverage = {c.policy: c for c in (assess(p) for p in policies.policies)}
    assert coverage, "the shipped policies"
    for name, why in WEBHOOK_ONLY.items():
        assert coverage[name].where is Where.WEBHOOK, coverage[name]
        assert any(why in reason for reason in coverage[name].reasons), coverage[name]
    native = {name for name, c in coverage.items() if c.where is Where.NATIVE}
    assert native == set(coverage) - set(WEBHOOK_ONLY)
    assert coverage["internal-loadbalancer"].mutating
    assert not coverage["internal-loadbalancer"].validating


def test_a_policy_kept_for_its_exceptions_stays_on_the_webhook() -> None:
    policy = load_policies(POLICIES / "deny-external-ips.yaml").policies[0]
    kept = assess(policy, keep=["deny-external-ips"])
    assert kept.where is Where.WEBHOOK and "kept on the webhook" in kept.reasons[0]


def test_the_validating_objects_carry_match_exclusions_modes_and_messages() -> None:
    objects = export(load_policies(POLICIES)).objects
    policies = by_kind(objects, "ValidatingAdmissionPolicy")
    bindings = by_kind(objects, "ValidatingAdmissionPolicyBinding")
    assert policies and set(policies) == set(bindings)

    nodeport = policies["deny-nodeport-in-production"]["spec"]
    assert nodeport["failurePolicy"] == "Fail"
    rules = nodeport["matchConstraints"]["resourceRules"]
    assert rules == [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["services"],
                      "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}]
    expressions = nodeport["matchConstraints"]["namespaceSelector"]["matchExpressions"]
    assert {"key": "environment", "operator": "In", "values": ["prod", "production"]} \
        in expressions
    assert {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
            "values": ["kube-system"]} in expressions
    assert all("messageExpression" in v or "message" in v for v in nodeport["validations"])
    assert bindings["deny-nodeport-in-production"]["spec"] == {
        "policyName": "edgewarden-deny-nodeport-in-production", "validationActions": ["Deny"]}
    assert bindings["require-ingress-class"]["spec"]["validationActions"] == ["Warn"]


def test_excluded_users_and_groups_become_match_conditions(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({
        "apiVersion": "edgewarden.dev/v1alpha1", "kind": "Policy",
        "metadata": {"name": "no-nodeport"},
        "spec": {"mode": "Audit", "failurePolicy": "Ignore",
                 "match": {"kinds": ["Service"], "operations": ["CREATE"],
                           "exclude": {"usernames": ["system:admin"],
                                       "groups": ["platform\"ops"]}},
                 "validations": [{"expression": "object.spec.type != 'NodePort'"}]}}))
    [policy, binding] = export(load_policies(tmp_path)).objects
    conditions = policy["spec"]["matchConditions"]
    assert conditions[0] == {"name": "edgewarden-exclude-usernames",
                             "expression": '!(request.userInfo.username in ["system:admin"])'}
    assert conditions[1]["expression"].endswith('g in ["platform\\"ops"])')
    assert policy["spec"]["failurePolicy"] == "Ignore"
    assert binding["spec"]["validationActions"] == ["Audit"]


def test_the_internal_loadbalancer_patch_adds_only_what_is_absent() -> None:
    objects = export(load_policies(POLICIES, internal_lb_flavour="gcp")).objects
    [mutating] = by_kind(objects, "MutatingAdmissionPolicy").values()
    [mutation] = mutating["spec"]["mutations"]
    expression = mutation["jsonPatch"]["expression"]
    assert mutation["patchType"] == "JSONPatch"
    assert '"networking.gke.io/load-balancer-type": "Internal"' in expression
    assert '"/metadata/annotations/networking.gke.io~1load-balancer-type"' in expression
    assert "in object.metadata.annotations ? []" in expression
    assert [c["name"] for c in mutating["spec"]["matchConditions"]] == [
        "is-loadbalancer", "becomes-loadbalancer", "scheme-not-chosen"]


def test_the_webhook_share_leaves_out_what_runs_natively() -> None:
    policies = load_policies(POLICIES)
    share = webhook_share(policies)
    assert {p.name for p in share.policies} == set(WEBHOOK_ONLY)


def test_export_and_hybrid_webhook_config_through_the_command() -> None:
    result = run("export", "-p", str(POLICIES), "-o", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    kinds = {item["kind"] for item in listed["items"]}
    assert kinds == {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
                     "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"}
    assert "policies exported" in result.stderr

    matrix = json.loads(run("export", "-p", str(POLICIES), "--coverage", "-o", "json").stdout)
    assert {row["policy"]: row["runs"] for row in matrix}["unique-ingress-hosts"] == "webhook"
    text = run("export", "-p", str(POLICIES), "--coverage").stdout
    assert all(len(line) <= 80 for line in text.splitlines()), text

    def mutated_resources(text: str) -> set[str]:
        configs = [d for d in yaml.safe_load_all(text)
                   if d and d["kind"] == "MutatingWebhookConfiguration"]
        return {resource for config in configs for webhook in config["webhooks"]
                for rule in webhook["rules"] for resource in rule["resources"]}

    full = run("webhook-config", "--policies", str(POLICIES))
    hybrid = run("webhook-config", "--policies", str(POLICIES), "--except-exported")
    assert "services" in mutated_resources(full.stdout)
    # The internal-LB patch runs natively; the PolicyException approver stays ours.
    assert mutated_resources(hybrid.stdout) == {"policyexceptions"}
    assert "ValidatingWebhookConfiguration" in hybrid.stdout  # limits and unique keys stay


def test_an_unknown_kept_policy_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["export", "-p", str(POLICIES), "--keep", "nope"])
    assert result.exit_code == 2
    assert "no policy named nope" in result.output


def test_check_test_and_audit_say_where_each_policy_runs(tmp_path: Path) -> None:
    """One note line on stderr: what runs natively once exported, and why the rest needs
    the webhook (the same assessment as `export --coverage`)."""
    manifest = tmp_path / "service.yaml"
    manifest.write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
         "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}]))
    outputs = {
        "check": run("check", "-p", str(POLICIES), "-f", str(manifest)).output,
        "test": run("test", str(POLICIES)).output,
        "audit": run("audit", "-p", str(POLICIES),
                     "--cluster-state", str(REPO / "examples" / "cluster-state.yaml")).output,
    }
    for command, output in outputs.items():
        notes = [line for line in output.splitlines()
                 if line.startswith("note: where each policy runs")]
        assert len(notes) == 1, (command, output[-2000:])
        note = notes[0]
        assert "natively in the API server: deny-external-ips," in note, command
        assert "internal-loadbalancer" in note.split("needs the webhook")[0], command
        for name, why in WEBHOOK_ONLY.items():
            assert f"{name} (webhook: " in note and why in note, (command, name)
