"""``edgewarden export``: the native objects of a policy set and its coverage matrix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from webhook.native.coverage import Coverage, assess
from webhook.native.objects import mutating_objects, validating_objects
from webhook.policy.model.policy import PolicySet


@dataclass(frozen=True)
class Export:
    objects: list[dict[str, Any]]
    coverage: list[Coverage]

    @property
    def exported(self) -> list[str]:
        return [c.policy for c in self.coverage if c.validating or c.mutating]


def export(policies: PolicySet, keep: Iterable[str] = ()) -> Export:
    kept = set(keep)
    objects: list[dict[str, Any]] = []
    coverage: list[Coverage] = []
    for policy in policies.policies:
        assessed = assess(policy, kept)
        coverage.append(assessed)
        if assessed.validating:
            objects += validating_objects(policy)
        if assessed.mutating:
            objects += mutating_objects(policy)
    return Export(objects, coverage)
