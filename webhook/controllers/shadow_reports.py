"""The shadow set's PolicyReports: where the candidates would judge existing objects
otherwise than the enforced set does (docs/shadow.md).

The continuous audit (audit.py) judges what the cache holds with the enforced set; with a
shadow set loaded, it judges the same objects with the candidates too, and these reports
list every (object, candidate) whose result differs from the enforced policy of the same
name (or from ``pass``, for a new policy). They are written by the leader beside the
ordinary ones, labelled ``edgewarden.dev/shadow: "true"`` and named
``edgewarden-shadow-<namespace>`` (the ClusterPolicyReport ``edgewarden-shadow``, written
whenever a shadow set is loaded, even empty: it says the candidates are being judged).

Why objects and not the requests each replica saw: a PolicyReport describes resources
(wgpolicyk8s.io), every replica sees only a share of the requests, and a report kept from
the leader's memory would lose the others' and every restart. Judging what exists is
complete on one replica and stays current: an entry goes when its object is fixed or
deleted. The requests themselves are in ``edgewarden_shadow_decisions_total`` and the
decision log, summed over replicas.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.offline.reports.policyreport import policy_reports
from webhook.offline.results import Finding, ObjectResult, Outcome, ScanReport

SHADOW_LABEL = {"edgewarden.dev/shadow": "true"}
PREFIX, SHADOW_PREFIX = "edgewarden", "edgewarden-shadow"

Key = tuple[str, str, str, str]  # kind, namespace, name, policy


def _key(finding: Finding) -> Key:
    resource = finding.resource
    return (resource.kind, resource.namespace, resource.name, finding.policy)


def _word(finding: Finding | None) -> str:
    """An outcome as the difference is told: the policy's result, or what it would do."""
    if finding is None:
        return Outcome.PASS.value
    if finding.source == "error":
        return "error"
    return finding.outcome.value


def shadow_differences(enforced: ScanReport, shadow: ScanReport) -> ScanReport:
    """The candidates' findings whose outcome differs from the enforced policy's of the same
    name on the same object (a policy that did not apply counts as ``pass``)."""
    current = {_key(f): f for f in enforced.findings}
    differing = ScanReport("audit", shadow.policies, judged_at=shadow.judged_at)
    for result in shadow.objects:
        kept = [f for f in result.findings if _word(f) != _word(current.get(_key(f)))]
        if kept:
            differing.objects.append(ObjectResult(result.resource, result.allowed, kept))
    differing.namespace_findings = [
        f for f in shadow.namespace_findings if _word(f) != _word(current.get(_key(f)))
    ]
    return differing


def shadow_reports(enforced: ScanReport, shadow: ScanReport, now: float, *,
                   max_bytes: int) -> list[dict[str, Any]]:
    """The shadow PolicyReports and ClusterPolicyReport of ``shadow`` against ``enforced``;
    each result's properties say what the enforced set does (``enforced``)."""
    differing = shadow_differences(enforced, shadow)
    current: Mapping[Key, Finding] = {_key(f): f for f in enforced.findings}
    documents = policy_reports(differing, now, max_bytes=max_bytes)
    for document in documents:
        metadata = document["metadata"]
        metadata["name"] = SHADOW_PREFIX + metadata["name"][len(PREFIX):]
        metadata["labels"].update(SHADOW_LABEL)
        for result in document["results"]:
            resource = result["resources"][0]
            key = (resource["kind"], resource.get("namespace", ""), resource["name"],
                   result["policy"])
            result["properties"].update(shadow="true", enforced=_word(current.get(key)))
    return documents
