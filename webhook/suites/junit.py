"""JUnit XML for suite results, in the shape CI systems (Jenkins, GitLab, GitHub) read."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from webhook.suites.runner import SuiteResult


def render_junit(results: Sequence[SuiteResult]) -> str:
    root = ET.Element("testsuites", name="edgewarden test")
    total = failed = errors = 0
    for suite in results:
        element = ET.SubElement(
            root,
            "testsuite",
            name=suite.suite,
            tests=str(len(suite.cases) or 1),
            failures=str(sum(not c.passed for c in suite.cases)),
            errors="1" if suite.error else "0",
            time=f"{sum(c.seconds for c in suite.cases):.6f}",
            file=str(suite.file),
        )
        if suite.error:
            errors += 1
            total += 1
            case = ET.SubElement(element, "testcase", name="load suite", classname=suite.suite)
            ET.SubElement(case, "error", message="suite could not run").text = suite.error
        for result in suite.cases:
            total += 1
            case = ET.SubElement(
                element,
                "testcase",
                name=result.case,
                classname=f"{suite.file}",
                time=f"{result.seconds:.6f}",
            )
            if not result.passed:
                failed += 1
                failure = ET.SubElement(case, "failure", message=result.failures[0][:200])
                failure.text = "\n".join(result.failures)
    root.set("tests", str(total))
    root.set("failures", str(failed))
    root.set("errors", str(errors))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
