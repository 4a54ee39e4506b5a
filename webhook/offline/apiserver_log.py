"""Reading the API server's audit log: ``audit.k8s.io/v1`` Events, one JSON object a line.

This is the log ``kube-apiserver --audit-log-path`` writes with ``--audit-log-format=json``
(the default), rotated files compressed with gzip included, and the ``EventList`` objects
a webhook audit backend receives. What each event says about our webhook's verdict is read
here too (:func:`recorded_outcome`); what the request was is rebuilt in
:mod:`webhook.offline.replay`.

How the recorded outcome is read (docs/replay.md says the same for users):

* ``responseStatus.code`` 2xx: **admitted** (every admission step let it through; a
  dry-run request too). A create refused with 409 AlreadyExists was admitted as well:
  the store refuses a duplicate name only after admission.
* a message ``admission webhook "NAME" denied the request: ...`` where NAME is one of our
  webhooks: **denied** by us; the policies are the ``[policy]`` prefixes of our message.
* a message ``failed calling webhook "NAME"`` (failurePolicy Fail), or a
  ``failed-open.*`` annotation naming our webhook (failurePolicy Ignore): **webhook
  failed**, no verdict of ours to compare with.
* anything else (401/403 from authentication or RBAC, 422 from the API server's own
  validation, another webhook's or policy's denial, a quota): **unknown**, the request
  ended before or beside our webhook, so its verdict is not recorded.

Beside the verdict: our webhook's ``auditAnnotations`` (``NAME/POLICY`` keys: the Audit
violations) and the API server's ``mutation.webhook.admission.k8s.io`` and
``patch.webhook.admission.k8s.io`` annotations (whether our mutating webhook patched, and
the patch at level Request and above). Webhook warnings are not written to the audit log,
so Warn verdicts cannot be compared with anything recorded.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from webhook.errors import ManifestError

# The names `edgewarden webhook-config` and `serve` give their webhooks.
DEFAULT_WEBHOOKS = ("validate.edgewarden.dev", "mutate.edgewarden.dev")
AUDIT_GROUP = "audit.k8s.io/"
STDIN = "-"

_DENIED = re.compile(r'admission webhook "(?P<webhook>[^"]+)" denied the request: (?P<body>.*)',
                     re.DOTALL)
_FAILED = re.compile(r'failed calling webhook "(?P<webhook>[^"]+)"')
# Our deny message: "[policy] message; [policy] message" (Decision.deny_message).
_POLICY = re.compile(r"(?:^|; )\[(?P<policy>[a-z0-9][a-z0-9.-]*)\] ")
_MUTATION = "mutation.webhook.admission.k8s.io/"
_PATCH = "patch.webhook.admission.k8s.io/"
_FAILED_OPEN = "failed-open."
_ROUND = re.compile(r"round_(\d+)_index_(\d+)$")


class Verdict(StrEnum):
    """What the audit log says our webhook decided."""

    ADMITTED = "admitted"
    DENIED = "denied"
    FAILED = "webhook failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Recorded:
    """The recorded outcome of one request, as far as the event tells it."""

    verdict: Verdict
    code: int | None
    detail: str  # one line: what the event says, e.g. "422 Invalid"
    denied_by: tuple[str, ...] = ()
    # Policies our webhook recorded an Audit violation for; None: no annotation of our
    # validating webhook, so nothing is known either way.
    audited: tuple[str, ...] | None = None
    # Our mutating webhook's JSONPatch; None: not recorded (not called, or level Metadata).
    patch: tuple[dict[str, Any], ...] | None = None

    @property
    def judged(self) -> bool:
        """True when the event records a verdict of ours to compare a replay with."""
        return self.verdict in (Verdict.ADMITTED, Verdict.DENIED)


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One audit event and the line it was read from (1-based)."""

    line: int
    event: Mapping[str, Any]


@dataclass(slots=True)
class AuditLog:
    name: str
    events: list[LoggedEvent] = field(default_factory=list)
    malformed: list[int] = field(default_factory=list)  # lines that are no JSON event


def read_audit_log(path: str | Path, stdin: TextIO | None = None) -> AuditLog:
    """Every audit event of ``path`` (``-``: ``stdin``), in order; gzip files are opened as
    such. Lines that are not JSON events are counted, not fatal (the last line of a live
    log may be half written); a file with none is a ManifestError."""
    name = str(path)
    log = AuditLog(name)
    try:
        for number, line in _lines(name, stdin):
            text = line.strip()
            if not text:
                continue
            try:
                data = json.loads(text)
            except ValueError:
                log.malformed.append(number)
                continue
            events = _events_of(data)
            if events is None:
                log.malformed.append(number)
                continue
            log.events.extend(LoggedEvent(number, event) for event in events)
    except FileNotFoundError:
        raise ManifestError(f"{name}: no such file") from None
    except (OSError, EOFError) as error:
        raise ManifestError(f"{name}: cannot be read: {getattr(error, 'strerror', None) or error}"
                            ) from None
    except UnicodeDecodeError:
        raise ManifestError(f"{name}: not a text file (not UTF-8 JSON lines)") from None
    if not log.events and log.malformed:
        raise ManifestError(
            f"{name}: no audit.k8s.io Event in it ({len(log.malformed)} line(s) of something "
            "else): the log of kube-apiserver --audit-log-path with --audit-log-format=json"
        )
    return log


def _lines(name: str, stdin: TextIO | None) -> Iterator[tuple[int, str]]:
    if name == STDIN:
        import sys

        yield from enumerate(stdin if stdin is not None else sys.stdin, start=1)
        return
    path = Path(name)
    with path.open("rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    if compressed:
        with gzip.open(path, "rt", encoding="utf-8") as unpacked:
            yield from enumerate(unpacked, start=1)
        return
    with path.open("r", encoding="utf-8") as stream:
        yield from enumerate(stream, start=1)


def _events_of(data: Any) -> list[Mapping[str, Any]] | None:
    if not isinstance(data, dict) or not str(data.get("apiVersion", "")).startswith(AUDIT_GROUP):
        return None
    if data.get("kind") == "Event":
        return [data]
    if data.get("kind") == "EventList" and isinstance(data.get("items"), list):
        return [item for item in data["items"] if isinstance(item, dict)]
    return None


def recorded_outcome(event: Mapping[str, Any], webhooks: frozenset[str]) -> Recorded:
    """What ``event`` records of our webhooks' verdict (the module docstring says how)."""
    status = event.get("responseStatus") or {}
    code = status.get("code") if isinstance(status.get("code"), int) else None
    message = str(status.get("message") or "")
    reason = str(status.get("reason") or "")
    annotations = event.get("annotations") or {}
    if not isinstance(annotations, dict):
        annotations = {}
    audited = _audited(annotations, webhooks)
    patch = _patch(annotations, webhooks)
    detail = f"{code} {reason}".strip() if code is not None else "no response status"
    denied = _DENIED.match(message)
    if denied and denied["webhook"] in webhooks:
        policies = tuple(dict.fromkeys(m["policy"] for m in _POLICY.finditer(denied["body"])))
        return Recorded(Verdict.DENIED, code, f"{code} denied by {denied['webhook']}",
                        policies, audited, patch)
    failed = _FAILED.search(message)
    if failed and failed["webhook"] in webhooks:
        return Recorded(Verdict.FAILED, code, f"{code} calling {failed['webhook']} failed",
                        audited=audited)
    for key, value in annotations.items():
        if key.startswith(_FAILED_OPEN) and str(value) in webhooks:
            return Recorded(Verdict.FAILED, code, f"{value} failed open (failurePolicy Ignore)",
                            audited=audited)
    if code is not None and 200 <= code < 300:
        return Recorded(Verdict.ADMITTED, code, str(code), (), audited, patch)
    if code == 409 and reason == "AlreadyExists" and event.get("verb") == "create":
        return Recorded(Verdict.ADMITTED, code, "409 AlreadyExists (after admission)", (),
                        audited, patch)
    if denied:
        detail = f"{code} denied by another webhook ({denied['webhook']})"
    return Recorded(Verdict.UNKNOWN, code, detail, audited=audited)


def _audited(annotations: Mapping[str, Any], webhooks: frozenset[str]) -> tuple[str, ...] | None:
    found: list[str] = []
    ours = False
    for key in annotations:
        webhook, _, policy = key.partition("/")
        if webhook in webhooks and policy:
            ours = True
            if not policy.endswith(".exception"):  # an exemption, not an Audit violation
                found.append(policy)
    return tuple(sorted(found)) if ours else None


def _patch(annotations: Mapping[str, Any], webhooks: frozenset[str]
           ) -> tuple[dict[str, Any], ...] | None:
    """Our mutating webhook's patch: [] when it was called and did not mutate, None when the
    event does not tell (it was not called, or the level drops the patch annotation)."""
    called = False
    mutated = False
    patches: list[tuple[tuple[int, int], list[dict[str, Any]]]] = []
    for key, value in annotations.items():
        if not key.startswith((_MUTATION, _PATCH)):
            continue
        try:
            data = json.loads(str(value))
        except ValueError:
            continue
        if not isinstance(data, dict) or data.get("webhook") not in webhooks:
            continue
        order = _ROUND.search(key)
        position = (int(order[1]), int(order[2])) if order else (0, 0)
        if key.startswith(_MUTATION):
            called = True
            mutated = mutated or bool(data.get("mutated"))
        elif isinstance(data.get("patch"), list):
            patches.append((position, [op for op in data["patch"] if isinstance(op, dict)]))
    if not called:
        return None
    if not mutated:
        return ()
    if not patches:
        return None  # it patched, but the level keeps no patch
    return tuple(op for _, ops in sorted(patches, key=lambda p: p[0]) for op in ops)
