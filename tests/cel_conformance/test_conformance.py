"""cel-spec's conformance cases, through the CEL the engine evaluates with.

Each file of cel-spec's simple conformance suite (at the version tests/kube/cel-spec pins)
is one test: its applicable cases run through ``compile_expression`` and the engine's
evaluation (tests/cel_conformance/runtime.py), and the failures must be exactly those
expected_failures.txt lists. What is skipped, and why, is in cases.SKIP_REASONS and
docs/cel-conformance.md. Figures per file: ``python -m tests.cel_conformance.report``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.cel_conformance.cases import FILE_CATEGORIES, SKIP_REASONS, data_dir, load_all, load_file
from tests.cel_conformance.report import describe, expected_failures, judge

# The files of the pinned version. A new version's new file fails test_every_file_is_known
# until it is added here (and, if none of it applies, to FILE_CATEGORIES).
FILES = (
    "basic", "bindings_ext", "block_ext", "comparisons", "conversions", "dynamic",
    "encoders_ext", "enums", "fields", "fp_math", "integer_math", "lists", "lists_ext",
    "logic", "macros", "macros2", "math_ext", "namespace", "network_ext", "optionals",
    "parse", "plumbing", "proto2", "proto2_ext", "proto3", "sets_ext", "string",
    "string_ext", "timestamps", "type_deduction", "unknowns", "wrappers",
)
# The files admission CEL applies to: most of their cases must run.
CORE = ("basic", "comparisons", "conversions", "fields", "fp_math", "integer_math", "lists",
        "logic", "macros", "macros2", "parse", "plumbing", "string", "string_ext",
        "optionals")


@pytest.fixture(autouse=True)
def _quiet_binding() -> Iterator[None]:
    """The binding logs every failed extension call (logger ``cel``); the cases make many."""
    logger = logging.getLogger("cel")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def test_every_file_is_known() -> None:
    found = sorted(path.stem for path in data_dir().glob("*.json"))
    assert found, f"no conformance files in {data_dir()}"
    assert found == sorted(FILES)
    assert set(FILE_CATEGORIES) <= set(FILES)
    assert set(FILE_CATEGORIES.values()) <= set(SKIP_REASONS)


@pytest.mark.parametrize("name", FILES)
def test_conformance_file(name: str) -> None:
    cases = load_file(data_dir() / f"{name}.json")
    listed = {case_id: reason for case_id, reason in expected_failures().items()
              if case_id.startswith(f"{name}/")}
    result = judge(name, cases)
    print(result.line())  # the figures, in the test's output (-rA or -s)
    assert all(case.skip in SKIP_REASONS for case in cases if case.skip is not None)
    if name in CORE:
        assert len(result.passed) > len(cases) // 2, f"{name}: most cases should run and pass"
    unexpected = [describe(case, outcome) for case_id, (case, outcome) in result.failed.items()
                  if case_id not in listed]
    # "unstable:" cases change outcome between runs (see expected_failures.txt): either is fine.
    stable = {case_id for case_id, reason in listed.items() if not reason.startswith("unstable:")}
    now_passing = sorted(stable & set(result.passed))
    not_run = sorted(set(listed) - set(result.passed) - set(result.failed))
    assert not unexpected, f"{len(unexpected)} case(s) fail that expected_failures.txt " \
        "does not list:\n" + "\n".join(unexpected)
    assert not now_passing, "listed in expected_failures.txt but now pass (remove them):\n" \
        + "\n".join(now_passing)
    assert not not_run, "listed in expected_failures.txt but skipped or gone:\n" \
        + "\n".join(not_run)


def test_expected_failures_name_cases_of_known_files() -> None:
    listed = expected_failures()
    assert listed, "expected_failures.txt lists the known failures"
    assert {case_id.split("/", 1)[0] for case_id in listed} <= set(FILES)


def test_the_core_files_are_not_skipped_away() -> None:
    """The subset is not defined away: nine in ten cases of the core files run."""
    files = load_all(data_dir())
    core = [case for name in CORE for case in files[name]]
    assert core, "the core files hold cases"
    run = [case for case in core if case.skip is None]
    assert len(run) > 0.9 * len(core)
