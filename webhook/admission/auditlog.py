"""The audit log: one JSON line per recorded violation or withheld patch.

A line says who did what to which object and which policy would have acted; it never
carries the object itself (a Secret-bearing body must not end up in a log).
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson

from webhook.policy.model.request import AdmissionRequest

WOULD_DENY = "would deny"
WOULD_PATCH = "would patch"
RECORDED = "recorded"
EXEMPTED = "exempted"  # a PolicyException admitted what the policy would have done


@dataclass(frozen=True, slots=True)
class AuditEntry:
    policy: str
    mode: str
    message: str
    action: str


class AuditLog:
    """Appends JSON lines to a stream; safe to call from the event loop (writes are small)."""

    def __init__(self, stream: IO[bytes], *, owns_stream: bool = False) -> None:
        self._stream = stream
        self._owns_stream = owns_stream
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path | None) -> AuditLog:
        """``None`` writes to stdout; a path is appended to (created when missing)."""
        if path is None:
            return cls(sys.stdout.buffer)
        return cls(open(path, "ab", buffering=0), owns_stream=True)

    def write(self, request: AdmissionRequest, entries: list[AuditEntry]) -> None:
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
