"""The PolicyExceptions of a scan as the reports list them: each one's state at the time
the scan judged (active, expiring within 14 days, expired and ignored, or without an expiry,
which is flagged), the findings it turned into exemptions, and policies it names that the
set does not have (a typo exempts nothing)."""

from __future__ import annotations

from collections.abc import Iterable

from webhook.offline.results import ExceptionStatus, Outcome, ScanReport
from webhook.policy.model.exceptions import ExceptionState, PolicyException


def exception_statuses(
    exceptions: Iterable[PolicyException], report: ScanReport, now: float | None
) -> list[ExceptionStatus]:
    known = {policy.name for policy in report.policies.policies}
    exempted = [f for f in report.findings if f.outcome is Outcome.EXEMPT]
    statuses = []
    for exception in exceptions:
        statuses.append(ExceptionStatus(
            exception,
            _state(exception, now),
            tuple(f for f in exempted if f.exception == exception),
            tuple(sorted(exception.policies - known)),
        ))
    return statuses


def _state(exception: PolicyException, now: float | None) -> ExceptionState:
    if now is not None:
        return exception.state_at(now)
    # Judged without a clock, the engine honoured only exceptions that never expire.
    return ExceptionState.NO_EXPIRY if exception.expires_at is None else ExceptionState.EXPIRED
