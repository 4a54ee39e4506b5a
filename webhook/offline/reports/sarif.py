"""SARIF 2.1.0 (``--output sarif``), e.g. for GitHub code scanning.

Rules are the policies (description from ``edgewarden.dev/description``); results are the
violations with level error (Enforce), warning (Warn) or note (Audit), located at the
object's file and first line. Would-be patches are ``informational`` results (level none).
Objects read from stdin or a live cluster have no file: they carry a logical location
(``Kind/namespace/name``) only. What a PolicyException admits is reported at the level the
policy would have had, with an accepted external suppression naming the exception, its
ticket and expiry (code scanning lists it as suppressed). Valid against the OASIS schema in
``webhook/offline/schemas``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from webhook import __version__
from webhook.offline.manifests import is_synthetic
from webhook.offline.results import Finding, Outcome, ScanReport
from webhook.policy.model.decision import Mode

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {Mode.ENFORCE: "error", Mode.WARN: "warning", Mode.AUDIT: "note"}


def sarif_dict(report: ScanReport) -> dict[str, Any]:
    rules = []
    index: dict[str, int] = {}
    for position, policy in enumerate(report.policies.policies):
        index[policy.name] = position
        description = policy.description or policy.name
        rules.append(
            {
                "id": policy.name,
                "name": _pascal(policy.name),
                "shortDescription": {"text": description},
                "fullDescription": {"text": description},
                "defaultConfiguration": {"level": LEVELS[policy.mode]},
                "properties": {"mode": policy.mode.value, "source": str(policy.source)},
            }
        )
    results = [
        _result(finding, index)
        for finding in report.findings
        if finding.outcome is not Outcome.PASS
    ]
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "edgewarden",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "results": results,
                "properties": {"command": report.command},
            }
        ],
    }


def render_sarif(report: ScanReport) -> str:
    return json.dumps(sarif_dict(report), indent=2) + "\n"


def _result(finding: Finding, index: dict[str, int]) -> dict[str, Any]:
    location: dict[str, Any] = {
        "logicalLocations": [{"fullyQualifiedName": finding.resource.ref, "kind": "resource"}]
    }
    where = finding.resource.location
    if where is not None and not is_synthetic(where.file):
        physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(where.file)}}
        if where.line is not None:
            physical["region"] = {"startLine": where.line}
        location["physicalLocation"] = physical
    result: dict[str, Any] = {
        "ruleId": finding.policy,
        "message": {"text": f"{finding.resource.ref}: {finding.message}"},
        "locations": [location],
        "properties": {"mode": finding.mode.value, "result": finding.outcome.value},
    }
    if finding.policy in index:
        result["ruleIndex"] = index[finding.policy]
    if finding.outcome is Outcome.PATCH or (
        finding.outcome is Outcome.EXEMPT and finding.would == "patch"
    ):
        result["kind"] = "informational"
        result["level"] = "none"
    else:
        result["kind"] = "fail"
        result["level"] = LEVELS[finding.mode]
    if finding.exception is not None:
        exception = finding.exception
        result["suppressions"] = [{
            "kind": "external",
            "status": "accepted",
            "justification": f"{exception.describe()}"
            + (f": {exception.reason}" if exception.reason else ""),
        }]
    return result


def _uri(file: str) -> str:
    """A relative path stays relative (code scanning resolves it against the checkout)."""
    path = Path(file)
    return path.as_uri() if path.is_absolute() else path.as_posix()


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))
