"""``edgewarden test -o json``: suite results as one JSON document for scripts and CI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from webhook.suites.runner import SuiteResult


def summary(results: Sequence[SuiteResult]) -> dict[str, Any]:
    cases = [case for suite in results for case in suite.cases]
    return {
        "suites": len(results),
        "cases": len(cases),
        "passed": sum(case.passed for case in cases),
        "failed": sum(not case.passed for case in cases),
        "suiteErrors": sum(suite.error is not None for suite in results),
        "ok": all(suite.passed for suite in results),
    }


def render_json(results: Sequence[SuiteResult]) -> str:
    document = {
        "summary": summary(results),
        "suites": [
            {
                "name": suite.suite,
                "file": str(suite.file),
                "passed": suite.passed,
                "error": suite.error,
                "cases": [
                    {
                        "name": case.case,
                        "line": case.line,
                        "passed": case.passed,
                        "failures": list(case.failures),
                        "seconds": round(case.seconds, 6),
                    }
                    for case in suite.cases
                ],
            }
            for suite in results
        ],
    }
    return json.dumps(document, indent=2) + "\n"
