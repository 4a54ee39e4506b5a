"""Kubernetes label selectors (matchLabels + matchExpressions), exactly as the API defines them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return key_in(labels, self.key) and labels[self.key] in self.values
        if self.operator == "NotIn":
            # As in Kubernetes: a missing label satisfies NotIn.
            return not key_in(labels, self.key) or labels[self.key] not in self.values
        if self.operator == "Exists":
            return key_in(labels, self.key)
        return not key_in(labels, self.key)


def key_in(labels: Mapping[str, str], key: str) -> bool:
    return key in labels


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """An empty selector matches everything, as in Kubernetes."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        return all(requirement.matches(labels) for requirement in self.match_expressions)


def validate_requirement(key: object, operator: object, values: object) -> str | None:
    """Why a matchExpressions entry is invalid, or None. Mirrors apimachinery's checks."""
    if not isinstance(key, str) or not key:
        return "key must be a non-empty string"
    if operator not in OPERATORS:
        return f"operator must be one of {', '.join(OPERATORS)}, not {operator!r}"
    if operator in ("In", "NotIn"):
        if not isinstance(values, list) or not values:
            return f"values must be a non-empty list for operator {operator}"
    elif values not in (None, []):
        return f"values must be empty for operator {operator}"
    if isinstance(values, list) and not all(isinstance(v, str) for v in values):
        return "values must be strings"
    return None
