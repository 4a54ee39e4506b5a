"""The shadow PolicyReports (webhook/controllers/shadow_reports.py): what exists, judged by
the candidates, where they differ from the enforced set; labelled and named apart from the
ordinary reports so neither replaces the other."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tests.support import namespace, policies_from_yaml, service
from webhook.controllers.shadow_reports import shadow_reports
from webhook.offline.manifests import Manifest
from webhook.offline.scan import audit_objects
from webhook.policy.load.loader import load_policies
from webhook.policy.model.policy import PolicySet

POLICIES = Path(__file__).parents[2] / "policies"
NOW = 1_800_000_000.0
WIDER = """
apiVersion: edgewarden.dev/v1alpha1
kind: Policy
metadata: {name: deny-nodeport-in-production}
spec:
  match: {kinds: [Service]}
  validations:
    - expression: "!has(object.spec.type) || object.spec.type != 'NodePort'"
      message: "NodePort is refused everywhere"
"""


def test_only_differences_are_reported_with_what_the_enforced_set_does() -> None:
    enforced = load_policies(POLICIES / "deny-nodeport-in-production.yaml")
    (revision,) = policies_from_yaml(WIDER).policies
    shadow = PolicySet((dataclasses.replace(revision, shadow=True),))
    objects = [Manifest(o, None) for o in (
        namespace(name="payments", labels={"environment": "production"}),
        namespace(name="dev", labels={"environment": "development"}),
        service(name="admin", namespace="payments", type="NodePort"),
        service(name="web", namespace="dev", type="NodePort"),
        service(name="api", namespace="dev"),
    )]
    judged = audit_objects(objects, enforced, now=NOW)
    candidates = audit_objects(objects, shadow, now=NOW)

    documents = shadow_reports(judged, candidates, NOW, max_bytes=500 * 1024)

    names = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
             for d in documents}
    # payments: both refuse admin, no difference, no report; the cluster report is written
    # whenever candidates are judged.
    assert names == {("PolicyReport", "dev", "edgewarden-shadow-dev"),
                     ("ClusterPolicyReport", None, "edgewarden-shadow")}
    for document in documents:
        assert document["metadata"]["labels"] == {
            "app.kubernetes.io/managed-by": "edgewarden", "edgewarden.dev/shadow": "true"}
    (dev,) = [d for d in documents if d["kind"] == "PolicyReport"]
    (result,) = dev["results"]
    assert result["resources"][0]["name"] == "web"
    assert (result["policy"], result["result"], result["message"]) == (
        "deny-nodeport-in-production", "fail", "NodePort is refused everywhere")
    assert result["properties"] == {"mode": "Enforce", "shadow": "true", "enforced": "pass"}
    assert dev["summary"] == {"pass": 0, "fail": 1, "warn": 0, "error": 0, "skip": 0}

