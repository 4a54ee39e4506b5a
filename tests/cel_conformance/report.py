"""Every conformance file judged against the expected failures, and a summary per file.

``expected_failures.txt`` lists, one a line, ``file/section/test | why it fails``: the
cases the runtime the engine uses gets wrong today. The test fails on a failure not listed
and on a listed case that passes (or is skipped, or no longer exists), so the list says
exactly what is wrong.

    .venv/bin/python -m tests.cel_conformance.report              # figures per file
    .venv/bin/python -m tests.cel_conformance.report --failures   # each failure, one a line
"""

from __future__ import annotations

import argparse
import collections
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.cel_conformance.cases import Case, data_dir, load_all, pinned_version
from tests.cel_conformance.runtime import Outcome, passes, run

EXPECTED_FAILURES = Path(__file__).with_name("expected_failures.txt")


@dataclass
class FileResult:
    name: str
    passed: list[str] = field(default_factory=list)
    failed: dict[str, tuple[Case, Outcome]] = field(default_factory=dict)
    skipped: collections.Counter[str] = field(default_factory=collections.Counter)

    def line(self) -> str:
        skips = ", ".join(f"{n} {category}" for category, n in sorted(self.skipped.items()))
        return (f"{self.name:<16} {len(self.passed):>4} passed {len(self.failed):>4} failed "
                f"{sum(self.skipped.values()):>4} skipped" + (f" ({skips})" if skips else ""))


def expected_failures(path: Path = EXPECTED_FAILURES) -> dict[str, str]:
    """Case id -> why it fails, from ``path``."""
    listed: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        case_id, bar, reason = line.partition(" | ")
        assert bar and reason.strip(), f"{path.name}:{number}: 'file/section/test | reason'"
        assert case_id not in listed, f"{path.name}:{number}: {case_id} is listed twice"
        listed[case_id] = reason.strip()
    return listed


def judge(name: str, cases: list[Case]) -> FileResult:
    result = FileResult(name)
    for case in cases:
        if case.skip is not None:
            result.skipped[case.skip] += 1
            continue
        outcome = run(case)
        if passes(case, outcome):
            result.passed.append(case.id)
        else:
            result.failed[case.id] = (case, outcome)
    return result


def describe(case: Case, outcome: Outcome) -> str:
    wanted = "an error" if case.expects_error else f"{case.expected!r}"
    return f"{case.id}: {case.expr!r} wanted {wanted}, got {outcome.show()}"[:400]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failures", action="store_true",
                        help="print each failing case and what it gave")
    options = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the binding logs each failed extension call
    files = load_all(data_dir())
    listed = expected_failures()
    print(f"cel-spec {pinned_version()} simple conformance cases, through the engine's CEL")
    totals = [0, 0, 0]
    for name, cases in files.items():
        result = judge(name, cases)
        print(result.line())
        totals[0] += len(result.passed)
        totals[1] += len(result.failed)
        totals[2] += sum(result.skipped.values())
        if options.failures:
            for case_id, (case, outcome) in result.failed.items():
                mark = "listed" if case_id in listed else "NEW"
                print(f"  {mark}: {describe(case, outcome)}")
    print(f"{'total':<16} {totals[0]:>4} passed {totals[1]:>4} failed {totals[2]:>4} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
