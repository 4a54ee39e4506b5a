"""The machine report (``-o json`` or ``-o yaml``); its schema is ``schemas/report.schema.json``.

Stable contract: fields are only ever added. ``findings`` lists every policy that applied
to an object, passing ones included, so a consumer can tell "checked and fine" from "not
checked".
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from webhook import __version__
from webhook.offline.results import ExceptionStatus, Finding, LimitStatus, ObjectResult, ScanReport
from webhook.policy.model.exceptions import PolicyException, rfc3339

API_VERSION = "edgewarden.dev/v1alpha1"


def report_dict(report: ScanReport) -> dict[str, Any]:
    allowed = sum(1 for r in report.objects if r.allowed)
    return {
        "apiVersion": API_VERSION,
        "kind": "CheckReport" if report.command == "check" else "AuditReport",
        "tool": {"name": "edgewarden", "version": __version__},
        "summary": {
            "objects": len(report.objects),
            "allowed": allowed,
            "denied": len(report.objects) - allowed,
            "skipped": dict(sorted(report.skipped.items())),
            "findings": report.counts(),
            "failed": report.failed,
        },
        "results": [_object(r) for r in report.objects],
        "limits": [_limit(s) for s in report.limits],
        "namespaceFindings": [_finding(f) for f in report.namespace_findings],
        "judgedAt": rfc3339(report.judged_at) if report.judged_at is not None else None,
        "exceptions": [_exception_status(e) for e in report.exceptions],
    }


def render_json(report: ScanReport) -> str:
    return json.dumps(report_dict(report), indent=2, sort_keys=False) + "\n"


def render_yaml(report: ScanReport) -> str:
    """The same document as JSON, for those who read or post-process YAML (``yq``)."""
    return yaml.safe_dump(report_dict(report), sort_keys=False, default_flow_style=False)


def _object(result: ObjectResult) -> dict[str, Any]:
    resource = result.resource
    location = resource.location
    return {
        "resource": {
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "namespace": resource.namespace,
            "name": resource.name,
        },
        "location": None
        if location is None
        else {"file": location.file, "document": location.document, "line": location.line},
        "allowed": result.allowed,
        "findings": [_finding(f) for f in result.findings],
    }


def _finding(finding: Finding) -> dict[str, Any]:
    data: dict[str, Any] = {
        "policy": finding.policy,
        "mode": finding.mode.value,
        "result": finding.outcome.value,
        "source": finding.source,
        "message": finding.message,
    }
    if finding.patch:
        data["patch"] = [dict(op) for op in finding.patch]
    if finding.resource.kind == "Namespace":
        data["namespace"] = finding.resource.name
    if finding.exception is not None:
        data["would"] = finding.would
        data["exception"] = _exception_ref(finding.exception)
    return data


def _exception_ref(exception: PolicyException) -> dict[str, Any]:
    return {
        "namespace": exception.namespace,
        "name": exception.name,
        "ticket": exception.ticket or None,
        "expiresAt": None if exception.expires_at is None else exception.expires,
    }


def _exception_status(status: ExceptionStatus) -> dict[str, Any]:
    exception = status.exception
    return {
        **_exception_ref(exception),
        "policies": sorted(exception.policies),
        "state": status.state.value,
        "reason": exception.reason or None,
        "approvedBy": exception.approved_by or None,
        "source": str(exception.source),
        "unknownPolicies": list(status.unknown_policies),
        "admits": [
            {"resource": f.resource.ref, "policy": f.policy, "would": f.would,
             "message": f.message}
            for f in status.admits
        ],
    }


def _limit(status: LimitStatus) -> dict[str, Any]:
    return {
        "policy": status.policy,
        "mode": status.mode.value,
        "namespace": status.namespace,
        "kind": status.kind,
        "count": status.count,
        "max": status.max,
        "over": status.over,
        "names": list(status.names),
        "exempted": list(status.exempted),
    }
