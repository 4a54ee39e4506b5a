"""What the engine decides about one admission. Plain data: the edges render it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from webhook.policy.model.exceptions import PolicyException


class Mode(StrEnum):
    ENFORCE = "Enforce"
    WARN = "Warn"
    AUDIT = "Audit"


class FailurePolicy(StrEnum):
    FAIL = "Fail"
    IGNORE = "Ignore"


class ViolationSource(StrEnum):
    VALIDATION = "validation"
    LIMIT = "limit"
    UNIQUE = "unique"  # a key another namespace already holds
    ERROR = "error"  # the policy could not be evaluated
    MUTATION = "mutation"  # only on an Exemption: the patch a policy would have made


# Violations and claims are named tuples, not frozen dataclasses: as immutable, and made in
# under half the time (most admissions make one or more).


class Violation(NamedTuple):
    """A policy that does not hold for the admission (or could not be evaluated)."""

    policy: str
    mode: Mode
    message: str
    source: ViolationSource = ViolationSource.VALIDATION

    @property
    def denies(self) -> bool:
        return self.mode is Mode.ENFORCE


@dataclass(frozen=True, slots=True)
class EvaluationFailure:
    """A policy that could not be evaluated: the error, and whether failurePolicy ignored it."""

    policy: str
    message: str
    ignored: bool = False


class LimitClaim(NamedTuple):
    """An allowed admission that takes one place under a limit; the edge reserves it."""

    policy: str
    counter_key: str
    kind: str
    namespace: str
    name: str
    maximum: int = 0  # the cap it was judged under (the edge claims against it)


class KeyClaim(NamedTuple):
    """An allowed admission that takes a unique key (a host); the edge reserves it."""

    policy: str
    index_key: str
    key: str
    kind: str
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class AppliedMutation:
    """The JSONPatch one policy contributes, for reporting where nothing is patched."""

    policy: str
    patch: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Exemption:
    """What a policy would have done to the object, and the PolicyException that admits it
    instead: the policy's would-be violation (or patch) is not applied, and says why."""

    policy: str
    mode: Mode
    message: str
    source: ViolationSource
    exception: PolicyException

    @property
    def would(self) -> str:
        """What the policy would have done: deny, warn, audit or patch."""
        if self.source is ViolationSource.MUTATION:
            return "patch"
        return {Mode.ENFORCE: "deny", Mode.WARN: "warn", Mode.AUDIT: "audit"}[self.mode]

    def warning(self) -> str:
        """What kubectl prints: the exception, its ticket and expiry, and what it admits."""
        return (f"{self.exception.describe()} admits what {self.policy} would {self.would}: "
                f"{self.message}")

    def annotation(self) -> str:
        """The audit annotation's value (the API server's audit log)."""
        ticket = f" ticket={self.exception.ticket}" if self.exception.ticket else ""
        return (f"{self.exception.ref}{ticket} expiresAt={self.exception.expires} "
                f"would {self.would}: {self.message}")


@dataclass(slots=True, init=False)
class Decision:
    """The engine's verdict. ``allowed`` already folds in the modes of all violations.

    The engine makes one per request, so ``__init__`` is written out rather than generated:
    the dataclasses module's would weigh its thirteen keyword arguments in interpreted code,
    and mypyc compiles a written one (the image compiles this module: setup.py). The
    decorator still writes ``__eq__`` and ``__repr__`` from the fields."""

    allowed: bool
    violations: list[Violation]
    warnings: list[str]
    audit_annotations: dict[str, str]
    patch: list[dict[str, Any]]
    mutations: list[AppliedMutation]
    mutated_object: dict[str, Any] | None
    limit_claims: list[LimitClaim]
    key_claims: list[KeyClaim]
    matched_policies: list[str]
    errors: list[EvaluationFailure]  # ignored ones too
    # Policies a PolicyException kept from acting. A tuple, replaced on the rare exemption,
    # so a decision without any costs no allocation.
    exemptions: tuple[Exemption, ...]
    # Microseconds of the evaluation budget this decision used (webhook/policy/engine/budget.py):
    # what a shadow set judged after it may still spend (webhook/admission/shadow.py).
    spent: float

    def __init__(
        self, allowed: bool = True, violations: list[Violation] | None = None,
        warnings: list[str] | None = None, audit_annotations: dict[str, str] | None = None,
        patch: list[dict[str, Any]] | None = None,
        mutations: list[AppliedMutation] | None = None,
        mutated_object: dict[str, Any] | None = None,
        limit_claims: list[LimitClaim] | None = None,
        key_claims: list[KeyClaim] | None = None,
        matched_policies: list[str] | None = None,
        errors: list[EvaluationFailure] | None = None,
        exemptions: tuple[Exemption, ...] = (), spent: float = 0.0,
    ) -> None:
        self.allowed = allowed
        self.violations = [] if violations is None else violations
        self.warnings = [] if warnings is None else warnings
        self.audit_annotations = {} if audit_annotations is None else audit_annotations
        self.patch = [] if patch is None else patch
        self.mutations = [] if mutations is None else mutations
        self.mutated_object = mutated_object
        self.limit_claims = [] if limit_claims is None else limit_claims
        self.key_claims = [] if key_claims is None else key_claims
        self.matched_policies = [] if matched_policies is None else matched_policies
        self.errors = [] if errors is None else errors
        self.exemptions = exemptions
        self.spent = spent

    @property
    def denials(self) -> list[Violation]:
        return [v for v in self.violations if v.denies]

    def deny_message(self) -> str:
        """One message naming every failing Enforce policy and what to do instead."""
        return "; ".join(f"[{v.policy}] {v.message}" for v in self.denials)
