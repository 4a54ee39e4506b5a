"""wgpolicyk8s.io/v1alpha2 PolicyReport / ClusterPolicyReport (``audit --output policyreport``).

One PolicyReport per namespace (named ``edgewarden-<namespace>``) for its Services and
Ingresses, and one ClusterPolicyReport (``edgewarden``) for results about Namespaces
themselves (a namespace over a LoadBalancer cap). Written as one ``kind: List`` so
``kubectl apply -f`` takes it, and Policy Reporter or Kyverno's UI shows it.

Result mapping, as Kyverno does it: the report records whether the resource satisfies the
policy, not what admission did. An Enforce or Audit violation is ``fail``, a Warn violation
``warn``, a would-be patch ``warn`` (the existing object lacks what the policy adds), a
policy that applied and held ``pass``, an evaluation error ``error``.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import yaml

from webhook.audit.results import Finding, Outcome, ScanReport
from webhook.policy.decision import Mode

API_VERSION = "wgpolicyk8s.io/v1alpha2"
SOURCE = "edgewarden"
MANAGED_BY = {"app.kubernetes.io/managed-by": "edgewarden"}
SEVERITY = {Mode.ENFORCE: "high", Mode.WARN: "medium", Mode.AUDIT: "low"}
SUMMARY_KEYS = ("pass", "fail", "warn", "error", "skip")


def policy_reports(report: ScanReport, now: float | None = None) -> list[dict[str, Any]]:
    stamp = now if now is not None else time.time()
    by_namespace: dict[str, list[Finding]] = {}
    cluster_scoped: list[Finding] = []
    for finding in report.findings:
        if finding.resource.kind == "Namespace":
            cluster_scoped.append(finding)
        else:
            by_namespace.setdefault(finding.resource.namespace, []).append(finding)
    documents = [
        _report("PolicyReport", f"edgewarden-{namespace}", namespace, findings, stamp)
        for namespace, findings in sorted(by_namespace.items())
    ]
    documents.append(_report("ClusterPolicyReport", "edgewarden", None, cluster_scoped, stamp))
    return documents


def render_policyreport(report: ScanReport, now: float | None = None) -> str:
    documents = policy_reports(report, now)
    listed = {"apiVersion": "v1", "kind": "List", "items": documents}
    return yaml.safe_dump(listed, sort_keys=False, default_flow_style=False)


def _report(
    kind: str, name: str, namespace: str | None, findings: list[Finding], stamp: float
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": dict(MANAGED_BY)}
    if namespace is not None:
        metadata["namespace"] = namespace
    results = [_result(f, stamp) for f in findings]
    tally = Counter(r["result"] for r in results)
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": metadata,
        "summary": {key: tally.get(key, 0) for key in SUMMARY_KEYS},
        "results": results,
    }


def _result(finding: Finding, stamp: float) -> dict[str, Any]:
    resource = finding.resource
    reference: dict[str, Any] = {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "name": resource.name,
    }
    if resource.kind != "Namespace":
        reference["namespace"] = resource.namespace
    if resource.uid:
        reference["uid"] = resource.uid
    result: dict[str, Any] = {
        "source": SOURCE,
        "policy": finding.policy,
        "rule": finding.source,
        "result": _result_word(finding),
        "scored": True,
        "severity": SEVERITY[finding.mode],
        "category": "Exposure",
        "message": finding.message or "policy satisfied",
        "timestamp": {"seconds": int(stamp), "nanos": 0},
        "resources": [reference],
        "properties": {"mode": finding.mode.value},
    }
    return result


def _result_word(finding: Finding) -> str:
    if finding.source == "error":
        return "error"
    return {
        Outcome.PASS: "pass",
        Outcome.DENY: "fail",
        Outcome.AUDIT: "fail",
        Outcome.WARN: "warn",
        Outcome.PATCH: "warn",
    }[finding.outcome]
