"""The local control plane is the real thing the other tests rely on: the pinned
Kubernetes release, the admission plugins that matter here (ValidatingAdmissionPolicy,
the webhooks and ResourceQuota are exercised elsewhere), and an audit log."""

from __future__ import annotations

import json
import uuid

import yaml

from .helpers import Cluster, NamespaceFactory, eventually
from .kubeplane import ControlPlane


def test_client_and_server_are_the_release_built_from_tests_kube(
    control_plane: ControlPlane,
) -> None:
    versions = json.loads(control_plane.kubectl("version", "-o", "json").stdout)
    pinned = dict(line.split() for line in control_plane.binaries.versions.splitlines())
    assert versions["serverVersion"]["gitVersion"] == pinned["kubernetes"]
    assert versions["clientVersion"]["gitVersion"] == pinned["kubernetes"]


def test_validating_admission_policy_is_enforced(
    control_plane: ControlPlane, namespace: NamespaceFactory
) -> None:
    ns = namespace({"team": "e2e-vap"})
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                "resources": ["configmaps"]}]},
            "validations": [{"expression": "!object.metadata.name.startsWith('forbidden')",
                             "message": "no forbidden ConfigMaps"}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {"matchLabels": {"team": "e2e-vap"}}}},
    }
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([policy, binding]))
    try:
        def refused() -> str | None:
            result = control_plane.kubectl("create", "configmap", "forbidden-x", "-n", ns,
                                           "--dry-run=server", check=False)
            return result.stderr if result.returncode != 0 else None

        message = eventually(refused, "the ValidatingAdmissionPolicy to be enforced")
        assert f"ValidatingAdmissionPolicy '{name}'" in message
        assert "no forbidden ConfigMaps" in message
    finally:
        control_plane.kubectl("delete", "validatingadmissionpolicybinding,"
                              "validatingadmissionpolicy", name, "--ignore-not-found")


def test_writes_are_in_the_api_server_audit_log(
    control_plane: ControlPlane, cluster: Cluster, namespace: NamespaceFactory
) -> None:
    ns = namespace({"team": "audit"})

    def namespace_created() -> dict[str, object] | None:
        for event in control_plane.audit_events():
            ref = event.get("objectRef") or {}
            if (event.get("verb") == "create" and ref.get("resource") == "namespaces"
                    and ref.get("name") == ns and event.get("stage") == "ResponseComplete"):
                return event
        return None

    event = eventually(namespace_created, "the audit event of the namespace's creation")
    assert event["user"]["username"] == "admin"  # type: ignore[index]
