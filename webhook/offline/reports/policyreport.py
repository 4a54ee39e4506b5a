"""wgpolicyk8s.io/v1alpha2 PolicyReport / ClusterPolicyReport (``audit --output policyreport``).

One PolicyReport per namespace (named ``edgewarden-<namespace>``) for its Services and
Ingresses, and one ClusterPolicyReport (``edgewarden``) for results about Namespaces
themselves (a namespace over a LoadBalancer cap). Written as one ``kind: List`` so
``kubectl apply -f`` takes it, and Policy Reporter or Kyverno's UI shows it.

Result mapping, as Kyverno does it: the report records whether the resource satisfies the
policy, not what admission did. An Enforce or Audit violation is ``fail``, a Warn violation
``warn``, a would-be patch ``warn`` (the existing object lacks what the policy adds), a
policy that applied and held ``pass``, an evaluation error ``error``, and what an active
PolicyException admits ``skip`` (as Kyverno reports its exceptions), its properties naming
the exception, ticket and expiry.

Size: one object in etcd may not exceed about 1.5 MiB, and a namespace with thousands of
Services makes a report of megabytes. A report over ``max_bytes`` (500 KiB by default) is
split into parts of at most that size: ``edgewarden-<namespace>``, then
``edgewarden-<namespace>-2``, ``-3``..., results in a stable order (kind, name, policy) so
a part changes only where its own results change.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import yaml

from webhook.offline.results import Finding, Outcome, ScanReport
from webhook.policy.model.decision import Mode

API_VERSION = "wgpolicyk8s.io/v1alpha2"
SOURCE = "edgewarden"
MANAGED_BY = {"app.kubernetes.io/managed-by": "edgewarden"}
SEVERITY = {Mode.ENFORCE: "high", Mode.WARN: "medium", Mode.AUDIT: "low"}
SUMMARY_KEYS = ("pass", "fail", "warn", "error", "skip")
MAX_REPORT_BYTES = 500 * 1024


def policy_reports(
    report: ScanReport, now: float | None = None, *, max_bytes: int = MAX_REPORT_BYTES
) -> list[dict[str, Any]]:
    """PolicyReports per namespace and the ClusterPolicyReport(s), each at most ``max_bytes``
    of JSON (a report with no results is still written: it says "nothing here")."""
    stamp = now if now is not None else time.time()
    by_namespace: dict[str, list[Finding]] = {}
    cluster_scoped: list[Finding] = []
    for finding in report.findings:
        if finding.resource.kind == "Namespace":
            cluster_scoped.append(finding)
        else:
            by_namespace.setdefault(finding.resource.namespace, []).append(finding)
    documents = [
        part
        for namespace, findings in sorted(by_namespace.items())
        for part in _parts("PolicyReport", f"edgewarden-{namespace}", namespace, findings,
                           stamp, max_bytes)
    ]
    documents += _parts("ClusterPolicyReport", "edgewarden", None, cluster_scoped, stamp,
                        max_bytes)
    return documents


def render_policyreport(report: ScanReport, now: float | None = None) -> str:
    documents = policy_reports(report, now)
    listed = {"apiVersion": "v1", "kind": "List", "items": documents}
    return yaml.safe_dump(listed, sort_keys=False, default_flow_style=False)


def document_size(document: dict[str, Any]) -> int:
    """Bytes of ``document`` as compact JSON (what the API server stores, near enough)."""
    return len(json.dumps(document, separators=(",", ":")).encode())


def _parts(
    kind: str, name: str, namespace: str | None, findings: list[Finding], stamp: float,
    max_bytes: int,
) -> list[dict[str, Any]]:
    results = sorted((_result(f, stamp) for f in findings), key=_order)
    # Leave room for what is added to a part after it is cut: the summary's digits, the
    # writer's digest annotation, the API server's metadata (uid, managedFields...).
    room = max_bytes - document_size(_report(kind, name + "-99999", namespace, [])) - 4096
    chunks: list[list[dict[str, Any]]] = [[]]
    used = 0
    for result in results:
        size = document_size(result) + 1  # and its comma
        if chunks[-1] and used + size > room:
            chunks.append([])
            used = 0
        chunks[-1].append(result)
        used += size
    return [
        _report(kind, name if index == 0 else f"{name}-{index + 1}", namespace, chunk)
        for index, chunk in enumerate(chunks)
    ]


def _order(result: dict[str, Any]) -> tuple[str, ...]:
    resource = result["resources"][0]
    return (resource["kind"], resource.get("namespace", ""), resource["name"], result["policy"],
            result["rule"])


def _report(
    kind: str, name: str, namespace: str | None, results: list[dict[str, Any]]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": dict(MANAGED_BY)}
    if namespace is not None:
        metadata["namespace"] = namespace
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
    exception = finding.exception
    if exception is not None:
        result["properties"].update({
            "exception": exception.ref,
            "expiresAt": exception.expires,
            "would": finding.would,
            **({"ticket": exception.ticket} if exception.ticket else {}),
        })
    return result


def _result_word(finding: Finding) -> str:
    if finding.outcome is Outcome.EXEMPT:
        return "skip"
    if finding.source == "error":
        return "error"
    return {
        Outcome.PASS: "pass",
        Outcome.DENY: "fail",
        Outcome.AUDIT: "fail",
        Outcome.WARN: "warn",
        Outcome.PATCH: "warn",
    }[finding.outcome]
