"""``edgewarden diff``: what changes when one policy set replaces another, object by object.

Both sets judge the same input the same way (``check`` for manifests, ``audit`` for a
cluster, ``replay`` for an audit log); the results are paired per object or request and
compared per policy. One :class:`PolicyChange` is one (object or request, policy) whose
verdict, patch or message differs, with both sides. Its kind, first that applies:

* newly denied: the policy denies now and did not before;
* newly allowed: it denied before and does not now;
* newly warned / no longer warned: the same for Warn;
* changed audit: an Audit violation or a PolicyException exemption appears, goes, or
  changes what it records;
* changed patch: the policy's JSONPatch differs;
* changed message: same verdict, other words.

A policy absent from one set (added, removed, renamed) counts as passing there. "Admitted
before" and "admitted after" are about the whole object: a request newly denied by one
policy while another already denied it was never admitted, and is no new denial in the sense
of the exit code (``new_denials``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from webhook.offline.replay import Replayed, ReplayReport
from webhook.offline.results import Finding, ObjectResult, Outcome, Resource, ScanReport
from webhook.policy.load.loader import policy_files


class Change(StrEnum):
    NEWLY_DENIED = "newly denied"
    NEWLY_ALLOWED = "newly allowed"
    NEWLY_WARNED = "newly warned"
    NO_LONGER_WARNED = "no longer warned"
    CHANGED_AUDIT = "changed audit"
    CHANGED_PATCH = "changed patch"
    CHANGED_MESSAGE = "changed message"

    @property
    def key(self) -> str:
        """The machine spelling (JSON): ``newly-denied``."""
        return self.value.replace(" ", "-")


# Outcomes grouped by what they do to the object: the comparison is between groups.
_DENY, _WARN, _RECORD, _CLEAN = "deny", "warn", "record", "clean"
_GROUP = {Outcome.DENY: _DENY, Outcome.WARN: _WARN, Outcome.AUDIT: _RECORD,
          Outcome.EXEMPT: _RECORD, Outcome.PASS: _CLEAN, Outcome.PATCH: _CLEAN}
# Which outcome of a policy's several findings about one object says the most.
_RANK = {Outcome.DENY: 0, Outcome.WARN: 1, Outcome.AUDIT: 2, Outcome.EXEMPT: 3,
         Outcome.PASS: 4, Outcome.PATCH: 5}


@dataclass(frozen=True, slots=True)
class Side:
    """One policy's decision about one object under one set."""

    outcome: Outcome | None  # None: the policy does not apply (or is not in the set)
    message: str = ""
    patch: tuple[Mapping[str, Any], ...] = ()
    would: str = ""  # for EXEMPT: what the policy would have done

    @property
    def group(self) -> str:
        return _CLEAN if self.outcome is None else _GROUP[self.outcome]

    def describe(self) -> str:
        """``deny: message``, ``passed``, ``not applied``, ``patch: add /x``, as a line."""
        if self.outcome is None:
            text = "not applied"
        elif self.outcome is Outcome.EXEMPT:
            text = f"exempted (would {self.would})"
        else:
            text = {Outcome.PASS: "passed", Outcome.PATCH: "passed"}.get(
                self.outcome, self.outcome.value)
        if self.message and self.outcome not in (Outcome.PASS, Outcome.PATCH):
            text += f": {self.message}"
        if self.patch:
            ops = ", ".join(f"{op.get('op')} {op.get('path')}" for op in self.patch)
            text += f"; patch {ops}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value if self.outcome is not None else None,
                "message": self.message, "patch": [dict(op) for op in self.patch],
                **({"would": self.would} if self.would else {})}


@dataclass(frozen=True, slots=True)
class Subject:
    """What was judged: an object of the input or the cluster, or a logged request."""

    resource: Resource
    where: str  # file:line, or the audit log and its line
    request: str = ""  # for a logged request: "create by alice" (dry run said)

    @property
    def ref(self) -> str:
        return self.resource.ref


@dataclass(frozen=True, slots=True)
class PolicyChange:
    subject: Subject
    policy: str
    change: Change
    before: Side
    after: Side
    admitted_before: bool
    admitted_after: bool

    @property
    def new_denial(self) -> bool:
        """The object was admitted by the old set and is refused by the new."""
        return self.admitted_before and not self.admitted_after


@dataclass(frozen=True, slots=True)
class PolicyDelta:
    """Which policies the new set adds, removes or changes (by their YAML documents)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [f"{label} {', '.join(names)}" for label, names in
                 (("added", self.added), ("changed", self.changed), ("removed", self.removed))
                 if names]
        return "; ".join(parts) if parts else "no policy document changed"


@dataclass(slots=True)
class DiffReport:
    base: str  # how the old set is named (a folder, REF:path)
    head: str
    source: str  # "manifests" | "cluster" | "audit log"
    judged: int = 0  # objects or requests judged by both sets
    changes: list[PolicyChange] = field(default_factory=list)
    policies: PolicyDelta = field(default_factory=PolicyDelta)
    notes: list[str] = field(default_factory=list)

    @property
    def new_denials(self) -> list[Subject]:
        """Objects or requests admitted by the old set and denied by the new, once each."""
        found: dict[int, Subject] = {}
        for change in self.changes:
            if change.new_denial:
                found.setdefault(id(change.subject), change.subject)
        return list(found.values())

    @property
    def failed(self) -> bool:
        return bool(self.new_denials)

    def counts(self) -> dict[str, int]:
        """Changes per kind, every kind present."""
        tally = Counter(change.change for change in self.changes)
        return {change.key: tally.get(change, 0) for change in Change}

    def by_policy(self) -> dict[str, dict[str, int]]:
        """Per policy (in order of first appearance): changes per kind, every kind present."""
        table: dict[str, Counter[Change]] = {}
        for change in self.changes:
            table.setdefault(change.policy, Counter())[change.change] += 1
        return {policy: {c.key: tally.get(c, 0) for c in Change} for policy, tally in table.items()}

    def summary(self) -> str:
        counts = self.counts()
        noun = "request" if self.source == "audit log" else "object"
        changed = len({id(c.subject) for c in self.changes})
        parts = [f"{self.judged} {noun}{'s' if self.judged != 1 else ''} judged by both sets",
                 f"{changed} changed"]
        parts += [f"{counts[c.key]} {c.value}" for c in Change if counts[c.key]]
        denials = len(self.new_denials)
        parts.append(f"{denials} admitted before and denied now")
        return "; ".join(parts)


# -- pairing ----------------------------------------------------------------------------------


def diff_scans(before: ScanReport, after: ScanReport, report: DiffReport) -> DiffReport:
    """Compare two ``check`` (or two ``audit``) reports of the same input."""
    old = _by_subject(before)
    new = _by_subject(after)
    for key in dict.fromkeys([*old, *new]):
        subject_result = new.get(key) or old.get(key)
        assert subject_result is not None
        resource = subject_result.resource
        where = str(resource.location) if resource.location is not None else ""
        subject = Subject(resource, where)
        report.judged += 1
        report.changes += compare(subject, old.get(key), new.get(key))
    return report


def diff_replays(before: ReplayReport, after: ReplayReport, report: DiffReport) -> DiffReport:
    """Compare two replays of the same audit log, request by request."""
    for old, new in zip(before.requests, after.requests, strict=True):
        if old.result is None or new.result is None:
            continue  # not rebuilt: the replay report lists them
        report.judged += 1
        report.changes += compare(_request_subject(new), old.result, new.result)
    not_rebuilt = len(after.not_rebuilt)
    if not_rebuilt:
        report.notes.append(f"{not_rebuilt} logged request(s) could not be rebuilt and are "
                            "not compared (edgewarden replay lists them and why)")
    report.notes += after.notes
    return report


def _request_subject(replayed: Replayed) -> Subject:
    logged = replayed.logged
    assert replayed.result is not None
    request = f"{logged.verb} by {logged.user or 'an unknown user'}"
    if logged.dry_run:
        request += " (dry run)"
    return Subject(replayed.result.resource, str(logged.location), request)


def _by_subject(report: ScanReport) -> dict[tuple[str, str, int], ObjectResult]:
    """Results keyed by (object, where it was read, occurrence): the same key in two scans
    of the same input is the same object, whatever kinds either set skips."""
    keyed: dict[tuple[str, str, int], ObjectResult] = {}
    seen: Counter[tuple[str, str]] = Counter()
    results = list(report.objects)
    by_namespace: dict[str, list[Finding]] = {}
    for finding in report.namespace_findings:
        by_namespace.setdefault(finding.resource.ref, []).append(finding)
    for findings in by_namespace.values():
        allowed = not any(f.outcome is Outcome.DENY for f in findings)
        results.append(ObjectResult(findings[0].resource, allowed, findings))
    for result in results:
        resource = result.resource
        base = (resource.ref, str(resource.location) if resource.location is not None else "")
        keyed[(*base, seen[base])] = result
        seen[base] += 1
    return keyed


# -- comparing ----------------------------------------------------------------------------------


def compare(subject: Subject, before: ObjectResult | None,
            after: ObjectResult | None) -> list[PolicyChange]:
    """Every policy whose decision about ``subject`` differs between the two results (None:
    the set does not judge that kind at all, which admits it)."""
    old = sides(before)
    new = sides(after)
    admitted_before = before.allowed if before is not None else True
    admitted_after = after.allowed if after is not None else True
    changes: list[PolicyChange] = []
    for policy in dict.fromkeys([*old, *new]):
        was = old.get(policy, Side(None))
        now = new.get(policy, Side(None))
        change = classify(was, now)
        if change is not None:
            changes.append(PolicyChange(subject, policy, change, was, now, admitted_before,
                                        admitted_after))
    return changes


def sides(result: ObjectResult | None) -> dict[str, Side]:
    """Per policy, its decision about the object: the weightiest of its findings, every
    violation message (in order) and its patch."""
    if result is None:
        return {}
    grouped: dict[str, list[Finding]] = {}
    for finding in result.findings:
        grouped.setdefault(finding.policy, []).append(finding)
    found: dict[str, Side] = {}
    for policy, findings in grouped.items():
        top = min(findings, key=lambda f: _RANK[f.outcome])
        messages = [f.message for f in findings if f.outcome not in (Outcome.PASS, Outcome.PATCH)
                    and f.message]
        patch = tuple(op for f in findings if f.outcome is Outcome.PATCH for op in f.patch)
        found[policy] = Side(top.outcome, "; ".join(dict.fromkeys(messages)), patch,
                             top.would if top.outcome is Outcome.EXEMPT else "")
    return found


def classify(before: Side, after: Side) -> Change | None:
    """The kind of change from ``before`` to ``after`` (None: no change)."""
    if after.group == _DENY and before.group != _DENY:
        return Change.NEWLY_DENIED
    if before.group == _DENY and after.group != _DENY:
        return Change.NEWLY_ALLOWED
    if after.group == _WARN and before.group != _WARN:
        return Change.NEWLY_WARNED
    if before.group == _WARN and after.group != _WARN:
        return Change.NO_LONGER_WARNED
    if before.group != after.group or (before.group == _RECORD and (
            before.outcome, before.would) != (after.outcome, after.would)):
        return Change.CHANGED_AUDIT
    if list(before.patch) != list(after.patch):
        return Change.CHANGED_PATCH
    if before.group != _CLEAN and before.message != after.message:
        return Change.CHANGED_MESSAGE
    return None


# -- the policy documents -----------------------------------------------------------------------


def policy_delta(before: Sequence[Path], after: Sequence[Path]) -> PolicyDelta:
    """Added, removed and changed policies, by name, comparing their YAML documents (a change
    of comments or layout is none)."""
    old = policy_documents(before)
    new = policy_documents(after)
    return PolicyDelta(
        added=tuple(name for name in new if name not in old),
        removed=tuple(name for name in old if name not in new),
        changed=tuple(name for name in new if name in old and old[name] != new[name]),
    )


def policy_documents(paths: Iterable[Path]) -> dict[str, Any]:
    """Every Policy document under ``paths`` by name (the files the loader reads)."""
    found: dict[str, Any] = {}
    for path in paths:
        if not path.exists():
            continue
        for file in policy_files(path):
            try:
                documents = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue  # loading the set already refused what does not parse
            for document in documents:
                if isinstance(document, dict) and document.get("kind") == "Policy":
                    name = (document.get("metadata") or {}).get("name")
                    if isinstance(name, str):
                        found[name] = document
    return found
