"""The decision log: what each admission decided, never the object.

Two outputs. ``DecisionLog`` writes one JSON line per recorded violation or withheld patch
to the stream ``serve --audit-log`` names (stdout by default): who did what to which
object and which policy would have acted. ``log_decision`` puts one line per denial and
per evaluation error on the ``edgewarden.decisions`` logger: counters say how often; an
operator paged by a denial storm needs to know which policy refused which object and why.
Lines are JSON objects (orjson escapes newlines and control characters, so a crafted name
cannot forge a second line); a Secret-bearing body must never end up in either.
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson

from webhook.policy.model.decision import Decision, ViolationSource
from webhook.policy.model.request import AdmissionRequest

log = logging.getLogger("edgewarden.decisions")

WOULD_DENY = "would deny"
WOULD_PATCH = "would patch"
RECORDED = "recorded"
EXEMPTED = "exempted"  # a PolicyException admitted what the policy would have done


@dataclass(frozen=True, slots=True)
class DecisionEntry:
    policy: str
    mode: str
    message: str
    action: str


class DecisionLog:
    """The stream ``serve --audit-log`` names: one JSON line per violation recorded, denial
    withheld, patch withheld or PolicyException honoured,
    never the object. Safe to call from the event loop (writes are small).
    """

    def __init__(self, stream: IO[bytes], *, owns_stream: bool = False) -> None:
        self._stream = stream
        self._owns_stream = owns_stream
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path | None) -> DecisionLog:
        """``None`` writes to stdout; a path is appended to (created when missing)."""
        if path is None:
            return cls(sys.stdout.buffer)
        return cls(open(path, "ab", buffering=0), owns_stream=True)

    def write(self, request: AdmissionRequest, entries: list[DecisionEntry]) -> None:
        if not entries:
            return
        time = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        lines = b"".join(
            orjson.dumps({
                "time": time,
                "uid": request.uid,
                "user": request.user.username,
                "operation": request.operation,
                "kind": request.kind,
                "namespace": request.namespace,
                "name": request.name or _generated_name(request),
                "policy": entry.policy,
                "mode": entry.mode,
                "message": entry.message,
                "action": entry.action,
                "dryRun": request.dry_run,
            }) + b"\n"
            for entry in entries
        )
        with self._lock:
            self._stream.write(lines)
            self._stream.flush()

    def close(self) -> None:
        if self._owns_stream:
            self._stream.close()


def _generated_name(request: AdmissionRequest) -> str:
    """CREATE with generateName has no name yet; the prefix is what a person can search for."""
    subject = request.subject or {}
    metadata = subject.get("metadata") or {}
    prefix = metadata.get("generateName")
    return f"{prefix}*" if isinstance(prefix, str) and prefix else ""


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
