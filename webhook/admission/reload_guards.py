"""What a new policy set must pass before it replaces the serving one.

A reload is refused, and the last good set keeps serving, when the new set
- is empty, or drops more than ``max_drop_share`` of the serving policies (an emptied file,
  a half-synced ConfigMap), unless explicitly allowed;
- makes policies fail to evaluate on objects that already exist (the canary: the set judges
  a bounded sample of the cluster cache as CREATEs, and any evaluation error the serving
  set did not already have refuses it);
- fails its own test suites, when ``*.test.yaml`` files sit beside the policies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from webhook.admission.settings import ReloadSettings
from webhook.admission.state import LoadedPolicies
from webhook.errors import EdgewardenError
from webhook.policy.ports import ClusterView
from webhook.policy.request import make_request
from webhook.suites.model import discover_suites
from webhook.suites.runner import run_path

# Errors the canary lists in a refusal at most; the rest are counted.
_SHOWN = 5


class ReloadRefused(EdgewardenError):
    """A new set that loaded but must not serve; ``reason`` labels the metric."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_size(
    serving: frozenset[str] | None, new: frozenset[str], settings: ReloadSettings
) -> None:
    """Refuse an empty set, or one that drops too many of the serving policies."""
    if not new and not settings.allow_empty:
        raise ReloadRefused(
            "empty",
            "the new policy set is empty (a deleted or emptied file?); serving no policies "
            "admits everything: pass --allow-empty-policies if that is intended",
        )
    if serving:
        dropped = serving - new
        share = len(dropped) / len(serving)
        if share > settings.max_drop_share:
            raise ReloadRefused(
                "shrink",
                f"the new policy set drops {len(dropped)} of the {len(serving)} serving "
                f"policies ({', '.join(sorted(dropped))}), more than --max-policy-drop "
                f"{settings.max_drop_share:.0%} allows",
            )


def canary(
    new: LoadedPolicies,
    serving: LoadedPolicies | None,
    objects: Iterable[Mapping[str, Any]],
    view: ClusterView,
) -> None:
    """Judge existing objects with the new set; refuse errors the serving set did not have."""
    introduced: list[str] = []
    judged = 0
    for obj in objects:
        judged += 1
        request = make_request("CREATE", obj, uid="reload-canary")
        old = _errors(serving, request, view) if serving is not None else set()
        for policy, message in sorted(_errors(new, request, view) - old):
            introduced.append(f"{policy} on {request.kind} {request.namespace}/{request.name}: "
                              f"{message}")
    if introduced:
        shown = "; ".join(introduced[:_SHOWN])
        more = f" (and {len(introduced) - _SHOWN} more)" if len(introduced) > _SHOWN else ""
        raise ReloadRefused(
            "canary",
            f"the new policy set fails to evaluate on {len(introduced)} existing object(s) "
            f"out of {judged} judged: {shown}{more}",
        )


def _errors(loaded: LoadedPolicies, request: Any, view: ClusterView) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for engine in (loaded.mutate_engine, loaded.engine):
        for failure in engine.evaluate(request, view).errors:
            found.add((failure.policy, failure.message))
    return found


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
