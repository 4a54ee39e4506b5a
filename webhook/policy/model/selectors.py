"""Kubernetes label selectors (matchLabels + matchExpressions), exactly as the API defines them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, Any]) -> bool:
        # A value that is not a string (only a malformed object has one) matches no In.
        if self.operator == "In":
            value = labels.get(self.key)
            return isinstance(value, str) and value in self.values
        if self.operator == "NotIn":
            # As in Kubernetes: a missing label satisfies NotIn.
            value = labels.get(self.key)
            return self.key not in labels or not (isinstance(value, str) and value in self.values)
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """An empty selector matches everything, as in Kubernetes."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, Any] | None) -> bool:
        if not isinstance(labels, Mapping):
            labels = {}
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        return all(requirement.matches(labels) for requirement in self.match_expressions)
