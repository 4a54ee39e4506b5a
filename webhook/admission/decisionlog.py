"""One structured log line per denial and per evaluation error, never the object.

Counters say how often; an operator paged by a denial storm needs to know which policy
refused which object and why. Each line is a JSON object (orjson escapes newlines and
control characters, so a crafted name cannot forge a second line) on the
``edgewarden.decisions`` logger.
"""

from __future__ import annotations

import logging

import orjson

from webhook.policy.model.decision import Decision, ViolationSource
from webhook.policy.model.request import AdmissionRequest

log = logging.getLogger("edgewarden.decisions")


def log_decision(endpoint: str, request: AdmissionRequest, decision: Decision) -> None:
    """A line for every violation that denies or is an evaluation error, and every ignored error."""
    for violation in decision.violations:
        error = violation.source is ViolationSource.ERROR
        if not (violation.denies or error):
            continue
        _line(
            logging.WARNING if error else logging.INFO,
            "evaluation_error" if error else "denied",
            endpoint, request, violation.policy, violation.mode.value, violation.message,
            denied=violation.denies,
        )
    for failure in decision.errors:
        if failure.ignored:
            _line(logging.WARNING, "evaluation_error", endpoint, request, failure.policy,
                  None, failure.message, denied=False, ignored=True)


def _line(level: int, event: str, endpoint: str, request: AdmissionRequest, policy: str,
          mode: str | None, message: str, **flags: bool) -> None:
    if not log.isEnabledFor(level):
        return
    record = {
        "event": event,
        "endpoint": endpoint,
        "policy": policy,
        "kind": request.kind,
        "namespace": request.namespace,
        "name": request.name,
        "uid": request.uid,
        "operation": request.operation,
        "mode": mode,
        "message": message,
        **flags,
    }
    log.log(level, "%s", orjson.dumps(record).decode())
