"""What a new policy set must pass before it replaces the serving one.

A reload is refused, and the last good set keeps serving, when the new set
- is empty, unless ``--allow-empty-policies``;
- lacks a policy the serving set has (an emptied file, a torn write, a half-synced
  ConfigMap), unless the removal is acknowledged: ``--allow-policy-removal``, or the policy
  was a Policy object that was deleted (the caller passes those names);
- makes policies fail to evaluate on objects that already exist, or denies more than
  ``--max-canary-denial-share`` of the existing objects the serving set admits (the canary:
  the set judges a bounded sample of the cluster cache as an UPDATE of each object to
  itself and as its CREATE, beside the serving set);
- fails its own test suites, when ``*.test.yaml`` files sit beside the policies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webhook.admission.loaded import LoadedPolicies
from webhook.admission.settings import ReloadSettings
from webhook.errors import EdgewardenError
from webhook.policy.model.decision import ViolationSource
from webhook.policy.model.exceptions import NO_EXCEPTIONS
from webhook.policy.model.ports import ClusterView, ExceptionView
from webhook.policy.model.request import AdmissionRequest, make_request
from webhook.suites.model import discover_suites
from webhook.suites.runner import run_path

# Objects or errors a refusal names at most; the rest are counted.
_SHOWN = 5
# The requests the canary stands in for an existing object: what a no-op `kubectl apply`
# (or any controller's update) sends, and what re-creating it sends.
_OPERATIONS = ("UPDATE", "CREATE")


class ReloadRefused(EdgewardenError):
    """A new set that loaded but must not serve; ``reason`` labels the metric."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_empty(new: frozenset[str], settings: ReloadSettings) -> None:
    """Refuse a set with no policies: serving none admits everything."""
    if not new and not settings.allow_empty:
        raise ReloadRefused(
            "empty",
            "the new policy set is empty (a deleted or emptied file?); serving no policies "
            "admits everything: pass --allow-empty-policies if that is intended",
        )


def check_removals(
    serving: frozenset[str] | None,
    new: frozenset[str],
    settings: ReloadSettings,
    *,
    acknowledged: frozenset[str] = frozenset(),
    origin: Callable[[str], str] = lambda name: "",
) -> None:
    """Refuse a set that lacks a serving policy nobody asked to remove.

    An emptied file and a file caught half-written look alike from here, and both would
    silently stop enforcing the policy: only ``--allow-policy-removal`` (or, for Policy
    objects, their deletion: ``acknowledged``) says the loss is meant. A set with no
    policy at all is ``check_empty``'s to judge (``--allow-empty-policies``)."""
    if serving is None or not new or settings.allow_removal:
        return
    lost = sorted(serving - new - acknowledged)
    if not lost:
        return
    named = ", ".join(f"{name}{origin(name)}" for name in lost[:_SHOWN])
    more = f" (and {len(lost) - _SHOWN} more)" if len(lost) > _SHOWN else ""
    raise ReloadRefused(
        "removal",
        f"the new policy set lacks {len(lost)} of the {len(serving)} serving policies: "
        f"{named}{more}; an emptied or half-written file? Pass --allow-policy-removal to "
        "remove policies from files on purpose (a deleted Policy object needs nothing)",
    )


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What one set answers one request: the policies that deny it, and the errors."""

    denied_by: frozenset[str]
    errors: frozenset[tuple[str, str]]


_ADMITTED = _Verdict(frozenset(), frozenset())


@dataclass(slots=True)
class _Denied:
    """An existing object the serving set admits and the new set denies."""

    label: str
    operations: list[str] = field(default_factory=list)
    policies: set[str] = field(default_factory=set)

    def __str__(self) -> str:
        return f"{self.label} ({', '.join(self.operations)}: {', '.join(sorted(self.policies))})"


def canary(
    new: LoadedPolicies,
    serving: LoadedPolicies | None,
    objects: Iterable[Mapping[str, Any]],
    view: ClusterView,
    settings: ReloadSettings,
    *,
    exceptions: ExceptionView = NO_EXCEPTIONS,
    judged_at: float | None = None,
) -> None:
    """Judge existing objects with the new set beside the serving one.

    Refused: any evaluation error the serving set did not already have ("canary"), and
    new denials (the serving set admits, the new set denies) of more than
    ``max_canary_denial_share`` of the objects judged ("denies"): a policy whose expression
    is always false, say, denies every UPDATE of every object it matches. Judged as
    admission judges them, PolicyExceptions included, so a rollout that excepts its
    existing violators first passes. The serving set is asked only where the new one errors
    or denies: most objects are admitted cleanly, and judging them once halves the cost.
    With nothing serving yet there is nothing to compare denials with: only errors count."""
    introduced: list[str] = []
    denied: list[_Denied] = []
    judged = 0
    for obj in objects:
        judged += 1
        label = _label(obj)
        errors: set[tuple[str, str]] = set()
        denial: _Denied | None = None
        for operation in _OPERATIONS:
            request = make_request(operation, obj, obj if operation == "UPDATE" else None,
                                   uid="reload-canary", judged_at=judged_at)
            after = _verdict(new, request, view, exceptions)
            if not after.errors and not after.denied_by:
                continue  # admitted cleanly: what the serving set says changes nothing
            before = (_verdict(serving, request, view, exceptions) if serving is not None
                      else _ADMITTED)
            errors |= after.errors - before.errors
            if serving is not None and after.denied_by and not before.denied_by:
                denial = denial or _Denied(label)
                denial.operations.append(operation)
                denial.policies |= after.denied_by
        introduced += [f"{policy} on {label}: {message}" for policy, message in sorted(errors)]
        if denial is not None:
            denied.append(denial)
    if introduced:
        raise ReloadRefused(
            "canary",
            f"the new policy set fails to evaluate on {len(introduced)} existing object(s) "
            f"out of {judged} judged: {_first(introduced)}",
        )
    share = settings.max_canary_denial_share
    if denied and len(denied) > share * judged:
        raise ReloadRefused(
            "denies",
            f"the new policy set denies {len(denied)} existing object(s) the serving set "
            f"admits, of {judged} judged ({len(denied) / judged:.0%}, more than "
            f"--max-canary-denial-share {share:.0%}): {_first([str(d) for d in denied])}; "
            "roll it out with mode: Warn or Audit first, fix or except those objects, or "
            "raise --max-canary-denial-share",
        )


def _verdict(loaded: LoadedPolicies, request: AdmissionRequest, view: ClusterView,
             exceptions: ExceptionView) -> _Verdict:
    denied_by: set[str] = set()
    errors: set[tuple[str, str]] = set()
    # /mutate denies too: a mutation that fails with failurePolicy: Fail.
    for engine in (loaded.mutate_engine, loaded.engine):
        decision = engine.evaluate(request, view, exceptions)
        errors.update((failure.policy, failure.message) for failure in decision.errors)
        denied_by.update(
            violation.policy for violation in decision.denials
            # A CREATE standing in for an existing object sees the namespace already
            # holding it and its siblings: a cap lowered below what a namespace holds
            # denies the next object, which is what lowering it is for, while updates of
            # the objects already counted stay admitted (SPEC).
            if not (request.operation == "CREATE" and violation.source is ViolationSource.LIMIT)
        )
    return _Verdict(frozenset(denied_by), frozenset(errors))


def _label(obj: Mapping[str, Any]) -> str:
    """``Kind namespace/name``: names only, never the object's content."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        metadata = {}
    name, namespace = metadata.get("name") or "", metadata.get("namespace")
    return f"{obj.get('kind', '')} {f'{namespace}/{name}' if namespace else name}"


def _first(items: Sequence[str]) -> str:
    more = f" (and {len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
    return "; ".join(items[:_SHOWN]) + more


def suites(paths: Sequence[Path]) -> None:
    """Run the suites beside the policy files; refuse the set if any case fails."""
    folders = [p for p in paths if p.is_dir() and discover_suites(p)]
    failed: list[str] = []
    for folder in folders:
        for result in run_path(folder):
            if result.error is not None:
                failed.append(f"{result.file.name}: {result.error}")
            failed += [f"{c.file.name}:{c.line} {c.case}" for c in result.cases if not c.passed]
    if failed:
        raise ReloadRefused(
            "suites",
            f"{len(failed)} test case(s) beside the policies fail: " + "; ".join(failed[:_SHOWN]),
        )
