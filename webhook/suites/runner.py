"""Running suites: each case is one admission judged by the engine, compared to ``expect``."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from webhook.cluster.memory import MemoryCluster
from webhook.errors import EdgewardenError, PolicyLoadError
from webhook.policy.engine.evaluation import Engine
from webhook.policy.load.documents import exception_from_document, load_exceptions
from webhook.policy.load.loader import load_policies
from webhook.policy.load.yamlsource import LocatedDocument
from webhook.policy.model.decision import Decision
from webhook.policy.model.exception_rules import OFFLINE_RULES, ExceptionRules
from webhook.policy.model.exceptions import NO_EXCEPTIONS, ExceptionSet
from webhook.policy.model.policy import Policy
from webhook.policy.model.request import AdmissionRequest, UserInfo, make_request
from webhook.suites.model import Expectation, TestCase, TestSuite, discover_suites, load_suite

_MISSING = object()


@dataclass
class CaseResult:
    suite: str
    file: Path
    case: str
    line: int
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class SuiteResult:
    suite: str
    file: Path
    cases: list[CaseResult] = field(default_factory=list)
    error: str | None = None  # the suite could not run at all (bad policies, bad fixtures)
    # PolicyExceptions the rules left out at some case's instant, and why (printed as notes).
    ignored_exceptions: list[str] = field(default_factory=list)
    policies: tuple[Policy, ...] = ()  # what the suite judged with (where each runs: a note)

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.passed for c in self.cases)


CaseFilter = Callable[[str], bool]


def case_filter(patterns: Iterable[str]) -> CaseFilter | None:
    """A filter keeping the cases whose name matches any glob of ``patterns`` (as
    ``kyverno test --test-case-selector`` does); None when there is no pattern."""
    globs = list(patterns)
    if not globs:
        return None
    return lambda name: any(fnmatch.fnmatchcase(name, glob) for glob in globs)


def run_path(
    path: Path, *, now: float | None = None, exceptions: ExceptionSet = NO_EXCEPTIONS,
    select: CaseFilter | None = None, rules: ExceptionRules = OFFLINE_RULES,
) -> list[SuiteResult]:
    """Run every suite under ``path``; cases are judged at ``now`` (default: the clock)
    unless they say ``at``, honouring ``exceptions`` beside each suite's own as ``rules``
    allow at each case's instant."""
    return run_paths([path], now=now, exceptions=exceptions, select=select, rules=rules)


def run_paths(
    paths: Iterable[Path], *, now: float | None = None,
    exceptions: ExceptionSet = NO_EXCEPTIONS, select: CaseFilter | None = None,
    rules: ExceptionRules = OFFLINE_RULES,
) -> list[SuiteResult]:
    """Run every suite under each of ``paths`` once (a file named twice runs once), only
    the cases ``select`` keeps; a suite left with no case is left out of the results. A
    missing path is a TestSuiteError before anything runs."""
    now = time.time() if now is None else now
    files: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        for file in discover_suites(path):
            if file.resolve() not in seen:  # shown as the user named it
                seen.add(file.resolve())
                files.append(file)
    results = []
    for file in files:
        try:
            suites = load_suite(file)
        except EdgewardenError as error:
            # A broken suite file fails the run whatever the filter: its cases are unknown.
            results.append(SuiteResult(suite=file.name, file=file, error=str(error)))
            continue
        for suite in suites:
            if select is not None:
                suite = replace(suite, cases=tuple(c for c in suite.cases if select(c.name)))
                if not suite.cases:
                    continue
            results.append(run_suite(suite, now=now, exceptions=exceptions, rules=rules))
    return results


def suite_exceptions(suite: TestSuite) -> ExceptionSet:
    """The suite's ``exceptions:``: files beside it and inline documents."""
    found = ExceptionSet(load_exceptions(*suite.exception_paths)) if suite.exception_paths \
        else NO_EXCEPTIONS
    problems: list[Any] = []
    inline = []
    for index, raw in enumerate(suite.inline_exceptions):
        document = LocatedDocument(data=raw, line=1, lines={})
        where = f"{suite.file} (spec.exceptions[{index}])"
        exception = exception_from_document(document, where, problems)
        if exception is not None:
            inline.append(exception)
    if problems:
        raise PolicyLoadError(problems)
    return found.merged(inline)


def run_suite(
    suite: TestSuite, *, now: float | None = None, exceptions: ExceptionSet = NO_EXCEPTIONS,
    rules: ExceptionRules = OFFLINE_RULES,
) -> SuiteResult:
    result = SuiteResult(suite=suite.name, file=suite.file)
    try:
        # A suite asserts the flavour its policies are written with, whatever the setting.
        loaded = load_policies(*suite.policy_paths)
        result.policies = loaded.policies
        engine = Engine(loaded)
        cluster = MemoryCluster.from_yaml(*suite.cluster_paths)
        honoured = exceptions.merged(suite_exceptions(suite))
    except EdgewardenError as error:
        result.error = str(error)
        return result
    default_at = suite.at if suite.at is not None else now
    for case in suite.cases:
        started = time.perf_counter()
        outcome = CaseResult(suite.name, suite.file, case.name, case.line)
        try:
            at = case.at if case.at is not None else default_at
            request = case_request(case, at)
            # The rules judge lifetimes from the case's instant, as serve from its clock.
            kept, ignored = rules.honoured(honoured, at)
            result.ignored_exceptions += [i.describe() for i in ignored
                                          if i.describe() not in result.ignored_exceptions]
            decision = engine.evaluate(request, cluster, ExceptionSet(kept))
            outcome.failures = _namespace_problems(suite, case, request.namespace, cluster)
            outcome.failures += compare(case.expect, decision, case)
        except (ValueError, EdgewardenError) as error:
            outcome.failures = [f"case could not run: {error}"]
        outcome.seconds = time.perf_counter() - started
        result.cases.append(outcome)
    return result


def case_request(case: TestCase, at: float | None = None) -> AdmissionRequest:
    """The admission a case describes, as the API server would send it (judged at ``at``)."""
    return make_request(
        case.operation,
        case.object,
        case.old_object,
        namespace=case.namespace,
        user=UserInfo(username=case.username, groups=case.groups),
        dry_run=case.dry_run,
        uid=f"test-{case.line}",
        judged_at=at,
    )


def _namespace_problems(
    suite: TestSuite, case: TestCase, namespace: str, cluster: MemoryCluster
) -> list[str]:
    """A namespace the cluster fixtures lack is a typo unless the case says it is the point."""
    if not suite.cluster_paths or not namespace:
        return []
    known = cluster.get_namespace(namespace) is not None
    if not known and not case.unknown_namespace:
        return [
            f"namespace {namespace!r} is not in the suite's cluster fixtures "
            f"({', '.join(str(p.name) for p in suite.cluster_paths)}): add it there, or set "
            "`unknownNamespace: true` on a case about a namespace the cluster does not know"
        ]
    if known and case.unknown_namespace:
        return [f"unknownNamespace: true, but namespace {namespace!r} is in the cluster fixtures"]
    return []


def compare(expect: Expectation, decision: Decision, case: TestCase) -> list[str]:
    """Human-readable differences between what was expected and what the engine decided."""
    failures = []
    if expect.matched is not None:
        matched = sorted(set(expect.matched))
        if matched != sorted(decision.matched_policies):
            failures.append(
                f"matched: expected {matched}, got {sorted(decision.matched_policies)}"
            )
    elif not decision.matched_policies:
        failures.append(
            "the case matched no policy, so it tests nothing (a typo in a kind, a namespace or "
            "a label?); when no policy should apply, say so with `expect: {matched: []}`"
        )
    if expect.exempted is not None:
        exempted = sorted(set(expect.exempted))
        held = sorted({e.policy for e in decision.exemptions})
        if exempted != held:
            failures.append(f"exempted: expected {exempted}, got {held}")
    if expect.allowed is not None and expect.allowed != decision.allowed:
        reason = f" ({decision.deny_message()})" if decision.denials else ""
        failures.append(f"allowed: expected {expect.allowed}, got {decision.allowed}{reason}")
    got = sorted({v.policy for v in decision.violations})
    if expect.violations is not None and sorted(set(expect.violations)) != got:
        detail = "; ".join(f"{v.policy} ({v.mode.value}): {v.message}" for v in decision.violations)
        failures.append(
            f"violations: expected {sorted(set(expect.violations))}, got {got}"
            + (f" — {detail}" if detail else "")
        )
    if isinstance(expect.warnings, int) and expect.warnings != len(decision.warnings):
        failures.append(
            f"warnings: expected {expect.warnings}, "
            f"got {len(decision.warnings)} {decision.warnings}"
        )
    elif isinstance(expect.warnings, tuple):
        for wanted in expect.warnings:
            if not any(wanted in w for w in decision.warnings):
                failures.append(f"warnings: none contains {wanted!r} (got {decision.warnings})")
    if expect.patched is not None and expect.patched != bool(decision.patch):
        failures.append(f"patched: expected {expect.patched}, got {decision.patch or 'no patch'}")
    if expect.message_contains is not None:
        messages = " ".join(v.message for v in decision.violations)
        if expect.message_contains not in messages:
            failures.append(
                f"message: expected to contain {expect.message_contains!r}, got {messages!r}"
            )
    if expect.audit_annotations is not None:
        failures += subset_differences(
            expect.audit_annotations, decision.audit_annotations, "auditAnnotations"
        )
    if expect.object is not None:
        final = decision.mutated_object if decision.mutated_object is not None else case.object
        failures += subset_differences(expect.object, final or {}, "object")
    return failures


def subset_differences(expected: Any, actual: Any, path: str) -> list[str]:
    """Where ``expected`` is not contained in ``actual`` (maps by key, other values equal)."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{path}: expected a mapping, got {actual!r}"]
        differences = []
        for key, value in expected.items():
            found = actual.get(key, _MISSING)
            if found is _MISSING:
                if value is None:
                    continue  # `key: null` in an expectation asserts the key is absent
                differences.append(f"{path}.{key}: expected {value!r}, got <missing>")
            elif value is None:
                differences.append(f"{path}.{key}: expected absent, got {found!r}")
            else:
                differences += subset_differences(value, found, f"{path}.{key}")
        return differences
    if expected != actual:
        return [f"{path}: expected {expected!r}, got {actual!r}"]
    return []
