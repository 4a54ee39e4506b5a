"""JUnit XML (``--output junit``): one testsuite per policy, one testcase per object.

Per policy rather than per file because CI dashboards then answer "which rule breaks our
charts" at a glance; the object's file and line are in each testcase's ``system-out``.
An Enforce violation is a ``failure``; Warn and Audit violations and would-be patches pass
(they do not fail ``check`` either) and say what they found in ``system-out``. Valid against
the Jenkins/Surefire ``junit-10.xsd`` (``webhook/offline/schemas``). What a PolicyException
admits is ``skipped``, its message naming the exception, ticket and expiry.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from webhook.offline.results import Finding, Outcome, ScanReport


def render_junit(report: ScanReport) -> str:
    by_policy: dict[str, list[Finding]] = {p.name: [] for p in report.policies.policies}
    for finding in report.findings:
        by_policy.setdefault(finding.policy, []).append(finding)
    root = ET.Element("testsuites", name=f"edgewarden {report.command}")
    total = failures = 0
    for policy_name, findings in by_policy.items():
        policy = report.policies.get(policy_name)
        failed = sum(1 for f in findings if f.outcome is Outcome.DENY)
        skipped = sum(1 for f in findings if f.outcome is Outcome.EXEMPT)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=policy_name,
            tests=str(len(findings)),
            failures=str(failed),
            errors="0",
            skipped=str(skipped),
            time="0",
        )
        if policy is not None:
            suite.set("file", policy.source.file)
        for finding in findings:
            suite.append(_testcase(finding))
        total += len(findings)
        failures += failed
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", "0")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _testcase(finding: Finding) -> ET.Element:
    case = ET.Element("testcase", name=finding.resource.ref, classname=finding.policy, time="0")
    lines = []
    if finding.resource.location is not None:
        lines.append(f"location: {finding.resource.location}")
    if finding.outcome is Outcome.DENY:
        failure = ET.SubElement(case, "failure", type=finding.mode.value, message=finding.message)
        failure.text = f"[{finding.policy}] {finding.message}"
    elif finding.outcome is Outcome.EXEMPT and finding.exception is not None:
        ET.SubElement(case, "skipped", message=f"{finding.exception.describe()} admits what "
                      f"{finding.policy} would {finding.would}: {finding.message}")
    elif finding.outcome is not Outcome.PASS:
        lines.append(f"{finding.outcome.label} ({finding.mode.value}): {finding.message}")
    if lines:
        ET.SubElement(case, "system-out").text = "\n".join(lines)
    return case
