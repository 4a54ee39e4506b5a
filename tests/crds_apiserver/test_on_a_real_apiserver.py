"""Issue 11 against a real kube-apiserver (see conftest: these skip without tests/kube)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import yaml

from tests.support import eventually
from webhook.policy.model.exception_rules import ExceptionRules

from .conftest import REPO, Edgewarden

START = time.time()  # the API server judges CRD formats only; the webhook's clock is ours
EXPIRES_IN = 3600.0


def policy(name: str, expression: str, message: str = "refused") -> str:
    return yaml.safe_dump({
        "apiVersion": "edgewarden.dev/v1alpha1", "kind": "Policy",
        "metadata": {"name": name},
        "spec": {"match": {"kinds": ["Service"]},
                 "validations": [{"expression": expression, "message": message}]},
    })


def ready_condition(running: Edgewarden, name: str) -> dict[str, Any] | None:
    status = running.get("policy.edgewarden.dev", name).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)


def test_the_crds_install_and_the_api_server_refuses_a_malformed_policy(plane: Any) -> None:
    crds = plane.kubectl("get", "crd", "-o", "name").stdout
    assert "policies.edgewarden.dev" in crds and "policyexceptions.edgewarden.dev" in crds
    shipped = [str(p) for p in (REPO / "policies").glob("*.yaml")
               if not p.name.endswith(".test.yaml")]
    dry_run = plane.kubectl("apply", "--dry-run=server", *(f"-f{p}" for p in shipped))
    assert dry_run.returncode == 0, "every shipped policy is a valid Policy object"

    malformed = {
        "unknown field": "spec: {match: {kind: [Service]}, validations: [{expression: 'true'}]}",
        "a mode": "spec: {mode: Deny, match: {kinds: [Service]}, validations: [{expression: x}]}",
        "nothing to do": "spec: {match: {kinds: [Service]}}",
        "a bad name": None,
    }
    for what, spec in malformed.items():
        name = "Not_A_Name" if spec is None else "malformed"
        spec = spec or "spec: {match: {kinds: [Service]}, validations: [{expression: 'true'}]}"
        text = ("apiVersion: edgewarden.dev/v1alpha1\nkind: Policy\n"
                f"metadata: {{name: {name}}}\n{spec}\n")
        refused = plane.kubectl("apply", "-f", "-", input=text, check=False)
        assert refused.returncode != 0, f"{what} was accepted"
    exception = yaml.safe_dump({
        "apiVersion": "edgewarden.dev/v1alpha1", "kind": "PolicyException",
        "metadata": {"name": "bad", "namespace": "default"},
        "spec": {"policies": ["x"], "match": {"names": ["a"]}, "expiresAt": "tomorrow"}})
    refused = plane.kubectl("apply", "-f", "-", input=exception, check=False)
    assert refused.returncode != 0 and "date-time" in refused.stderr


def test_a_policy_object_is_picked_up_and_a_broken_one_gets_an_error_while_the_old_serves(
    edgewarden: Callable[..., Edgewarden], test_namespace: Callable[..., str]
) -> None:
    running = edgewarden(now=START)
    namespace = test_namespace()
    running.register(namespace)
    running.kubectl("apply", "-f", "-", input=policy(
        "e2e-no-nodeport", "object.spec.type != 'NodePort'", "no NodePort in e2e"))
    condition = eventually(lambda: ready_condition(running, "e2e-no-nodeport"), timeout=30,
                           what="the Ready condition")
    assert (condition["status"], condition["reason"]) == ("True", "Loaded")
    status = running.get("policy.edgewarden.dev", "e2e-no-nodeport")["status"]
    assert status["observedGeneration"] == 1 and status["loadedAt"]

    denied = running.kubectl("-n", namespace, "create", "service", "nodeport", "web",
                             "--tcp=80:8080", check=False)
    assert denied.returncode != 0 and "no NodePort in e2e" in denied.stderr

    broken = policy("e2e-no-nodeport", "obj.spec.type != 'NodePort'")
    running.kubectl("apply", "-f", "-", input=broken)

    def invalid() -> dict[str, Any] | None:
        found = ready_condition(running, "e2e-no-nodeport")
        return found if found and found["status"] == "False" else None

    condition = eventually(invalid, timeout=30, what="the error status")
    assert condition["reason"] == "Invalid" and condition["observedGeneration"] == 2
    assert "spec.validations[0].expression" in condition["message"]
    assert "obj.spec.type != 'NodePort'" in condition["message"]
    again = running.kubectl("-n", namespace, "create", "service", "nodeport", "web",
                            "--tcp=80:8080", check=False)
    assert again.returncode != 0 and "no NodePort in e2e" in again.stderr, "the old set serves"
    running.kubectl("delete", "policy.edgewarden.dev", "e2e-no-nodeport")


def test_an_exception_admits_with_a_warning_then_stops_once_expired(
    edgewarden: Callable[..., Edgewarden], test_namespace: Callable[..., str]
) -> None:
    namespace = test_namespace(environment="production")
    # Exceptions are off unless enabled, and then only in the namespaces named.
    running = edgewarden(now=START, exception_rules=ExceptionRules(
        enabled=True, namespaces=frozenset({namespace})))
    running.register(namespace)
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START + EXPIRES_IN))
    running.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "edgewarden.dev/v1alpha1", "kind": "PolicyException",
        "metadata": {"name": "legacy-gateway", "namespace": namespace},
        "spec": {"policies": ["deny-nodeport-in-production"], "match": {"names": ["gateway"]},
                 "expiresAt": expires, "ticket": "PLAT-7"}}))

    def admitted() -> Any:
        result = running.kubectl("-n", namespace, "create", "service", "nodeport", "gateway",
                                 "--tcp=80:8080", check=False)
        return result if result.returncode == 0 else None

    result = eventually(admitted, timeout=30, interval=0.2, what="the exception to admit")
    assert f"PolicyException {namespace}/legacy-gateway (ticket PLAT-7, expires {expires})" \
        in result.stderr, "kubectl prints the warning"
    running.kubectl("-n", namespace, "delete", "service", "gateway")

    running.clock.now = START + EXPIRES_IN  # the expiry instant
    denied = running.kubectl("-n", namespace, "create", "service", "nodeport", "gateway",
                             "--tcp=80:8080", check=False)
    assert denied.returncode != 0 and "deny-nodeport-in-production" in denied.stderr


def test_policyreports_appear_split_for_3000_services_and_follow_a_fix(
    edgewarden: Callable[..., Edgewarden], test_namespace: Callable[..., str]
) -> None:
    namespace = test_namespace(environment="production")
    services = [{"apiVersion": "v1", "kind": "Service",
                 "metadata": {"name": f"svc-{i:04d}", "namespace": namespace,
                              "labels": {"app": f"svc-{i:04d}"}},
                 "spec": {"type": "NodePort" if i % 100 == 0 else "ClusterIP",
                          "ports": [{"port": 80, "targetPort": 8080}]}}
                for i in range(3000)]
    running = edgewarden(now=START, audit_interval_seconds=3600.0)
    running.kubectl("create", "-f", "-", timeout=900,
                    input=yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": services}))
    audit = running.controllers.reports
    assert audit is not None
    first = audit.runs
    eventually(lambda: running.server.runtime.cluster.state()["Service"]["objects"] >= 3000,
               timeout=120, what="the cache to hold the Services")
    audit.trigger()
    eventually(lambda: audit.runs > first, timeout=300, what="an audit of 3,000 Services")

    listed = json.loads(running.kubectl("-n", namespace, "get", "policyreports", "-o",
                                        "json").stdout)["items"]
    sizes = {r["metadata"]["name"]: len(json.dumps(r, separators=(",", ":"))) for r in listed}
    assert len(listed) > 1 and max(sizes.values()) <= 500 * 1024, sizes
    assert sum(r["summary"]["fail"] for r in listed) == 30
    print(f"\n3,000 Services on a real API server: {len(listed)} PolicyReports, "
          f"{sum(sizes.values()) / 1024:.0f} KiB in all (as stored, managedFields included), "
          f"largest {max(sizes.values()) / 1024:.0f} KiB")

    running.kubectl("-n", namespace, "patch", "service", "svc-0000", "--type", "merge",
                    "-p", '{"spec": {"type": "ClusterIP"}}')
    before = audit.runs

    def fixed() -> bool:
        if audit.runs == before:
            audit.trigger()
            return False
        reports = json.loads(running.kubectl("-n", namespace, "get", "policyreports", "-o",
                                             "json").stdout)["items"]
        return sum(r["summary"]["fail"] for r in reports) == 29

    eventually(fixed, timeout=300, interval=0.5, what="the report to follow the fix")
