"""The neutral result of a scan (``check`` or ``audit``) that every report format renders.

One :class:`Finding` is one (resource, policy) pair: the policy passed, was violated in its
mode, would patch the object, or was kept from acting by a PolicyException (``exempt``).
Namespace-wide limit results (``audit``) are findings about
the Namespace, with the counts kept in :class:`LimitStatus` for the HTML page and ``quota``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from webhook.offline.manifests import Location
from webhook.policy.model.decision import Mode
from webhook.policy.model.exceptions import ExceptionState, PolicyException
from webhook.policy.model.policy import PolicySet


class Outcome(StrEnum):
    """What a policy says about a resource, in the words of the reports."""

    PASS = "pass"
    DENY = "deny"  # an Enforce violation: the API server would refuse it
    WARN = "warn"  # a Warn violation: allowed, kubectl prints a warning
    AUDIT = "audit"  # an Audit violation: allowed and recorded
    PATCH = "patch"  # a mutation the mutating webhook would apply
    EXEMPT = "exempt"  # the policy would act, and a PolicyException admits the object

    @classmethod
    def for_mode(cls, mode: Mode) -> Outcome:
        return {Mode.ENFORCE: cls.DENY, Mode.WARN: cls.WARN, Mode.AUDIT: cls.AUDIT}[mode]

    @property
    def label(self) -> str:
        """How the text table and the HTML page say it."""
        return {
            Outcome.PASS: "passed",
            Outcome.DENY: "denied",
            Outcome.WARN: "warning",
            Outcome.AUDIT: "audited",
            Outcome.PATCH: "would patch",
            Outcome.EXEMPT: "exempted",
        }[self]

    @property
    def is_violation(self) -> bool:
        return self in (Outcome.DENY, Outcome.WARN, Outcome.AUDIT)


@dataclass(frozen=True, slots=True)
class Resource:
    kind: str
    name: str
    namespace: str
    api_version: str = "v1"
    uid: str = ""
    location: Location | None = None

    @property
    def ref(self) -> str:
        """``Kind/namespace/name`` (``Kind/name`` for a Namespace), as people write them."""
        if self.kind == "Namespace":
            return f"Namespace/{self.name}"
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Finding:
    resource: Resource
    policy: str
    mode: Mode
    outcome: Outcome
    message: str
    source: str = "validation"  # validation | limit | error | mutation | match
    patch: tuple[Mapping[str, Any], ...] = ()
    exception: PolicyException | None = None  # for EXEMPT: which one admits it
    would: str = ""  # for EXEMPT: what the policy would have done (deny, warn, audit, patch)


@dataclass(slots=True)
class ObjectResult:
    """Everything the policies say about one judged object."""

    resource: Resource
    allowed: bool
    findings: list[Finding] = field(default_factory=list)
    object: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LimitStatus:
    """One limit policy in one namespace: how many objects count and the cap there."""

    policy: str
    mode: Mode
    namespace: str
    kind: str
    count: int
    max: int
    names: tuple[str, ...] = ()
    # Counted objects an active PolicyException exempts from this limit: they exist, they
    # count for the next CREATE, but they do not put the namespace over its cap.
    exempted: tuple[str, ...] = ()

    @property
    def over(self) -> bool:
        return self.count - len(self.exempted) > self.max

    @property
    def over_but_exempted(self) -> bool:
        return self.count > self.max and not self.over


@dataclass(frozen=True, slots=True)
class ExceptionStatus:
    """One PolicyException as the reports show it: its state when judged, and what it admits."""

    exception: PolicyException
    state: ExceptionState
    admits: tuple[Finding, ...] = ()
    unknown_policies: tuple[str, ...] = ()  # named policies the set does not have


@dataclass(slots=True)
class ScanReport:
    """The result of ``check`` or ``audit``; renderers read this and nothing else."""

    command: str  # "check" | "audit"
    policies: PolicySet
    objects: list[ObjectResult] = field(default_factory=list)
    namespace_findings: list[Finding] = field(default_factory=list)
    limits: list[LimitStatus] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    namespaces: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    exceptions: list[ExceptionStatus] = field(default_factory=list)
    judged_at: float | None = None  # the clock the objects were judged at (exception expiry)
    # What the user should know about how the input was read (old versions converted, kinds
    # the policies govern in another group skipped); the CLI prints them on stderr.
    notes: list[str] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        found = [f for result in self.objects for f in result.findings]
        return found + self.namespace_findings

    @property
    def denied(self) -> list[Finding]:
        return [f for f in self.findings if f.outcome is Outcome.DENY]

    @property
    def failed(self) -> bool:
        """True when anything Enforce would be denied (the exit-1 condition)."""
        return bool(self.denied)

    def counts(self) -> dict[str, int]:
        """Findings per outcome, every outcome present (stable for JSON and summaries)."""
        tally = Counter(f.outcome.value for f in self.findings)
        return {outcome.value: tally.get(outcome.value, 0) for outcome in Outcome}

    def summary(self) -> str:
        counts = self.counts()
        judged = len(self.objects)
        skipped = sum(self.skipped.values())
        denied_objects = sum(1 for r in self.objects if not r.allowed)
        parts = [
            f"{judged} object{'s' if judged != 1 else ''} judged",
            f"{denied_objects} denied",
            f"{counts['warn']} warning{'s' if counts['warn'] != 1 else ''}",
            f"{counts['audit']} audited",
            f"{counts['patch']} would patch",
        ]
        if counts["exempt"]:
            parts.append(f"{counts['exempt']} exempted by PolicyExceptions")
        if self.namespace_findings:
            parts.append(f"{len(self.namespace_findings)} namespace limit(s) exceeded")
        if skipped:
            kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.skipped.items()))
            parts.append(f"{skipped} skipped ({kinds})")
        return "; ".join(parts)
