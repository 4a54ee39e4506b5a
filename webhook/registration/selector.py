"""``--webhook-namespace-selector`` / ``webhook-config --namespace-selector``: a LabelSelector
given as JSON, checked at start, whose terms join the registered configurations'
namespaceSelector beside the namespaces excluded by name.

Checked here as the API server would check it (label keys and values, operators, values
present exactly for In/NotIn), so a typo is a one-line error when the server starts, not a
configuration the API server refuses at every registration pass while the old one stays.
"""

from __future__ import annotations

import json
import re
from typing import Any

from webhook.errors import EdgewardenError
from webhook.policy.model.selectors import OPERATORS, LabelSelector, Requirement

_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class NamespaceSelectorError(EdgewardenError):
    """The namespace selector option is not a valid LabelSelector."""


def parse_namespace_selector(text: str, option: str) -> LabelSelector:
    """The selector in ``text`` (JSON: ``{"matchLabels": {...}, "matchExpressions": [...]}``);
    ``option`` names the flag in the one-line error."""
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise NamespaceSelectorError(f"{option}: not JSON ({error})") from None
    if not isinstance(raw, dict):
        raise NamespaceSelectorError(
            f"{option}: must be a JSON object with matchLabels and/or matchExpressions")
    unknown = sorted(set(raw) - {"matchLabels", "matchExpressions"})
    if unknown:
        raise NamespaceSelectorError(
            f"{option}: unknown field {unknown[0]!r} (a LabelSelector has matchLabels and "
            "matchExpressions)")
    return LabelSelector(
        _match_labels(raw.get("matchLabels"), option),
        _match_expressions(raw.get("matchExpressions"), option),
    )


def selector_terms(selector: LabelSelector) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(matchExpressions, matchLabels) as the API writes them: values sorted, so a rendered
    configuration compares equal to the one read back."""
    expressions: list[dict[str, Any]] = []
    for requirement in selector.match_expressions:
        expression: dict[str, Any] = {"key": requirement.key, "operator": requirement.operator}
        if requirement.operator in ("In", "NotIn"):
            expression["values"] = sorted(requirement.values)
        expressions.append(expression)
    return expressions, dict(selector.match_labels)


def _match_labels(raw: Any, option: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise NamespaceSelectorError(f"{option}: matchLabels must be an object")
    for key, value in raw.items():
        _check_key(key, f"{option}: matchLabels")
        if not isinstance(value, str):
            raise NamespaceSelectorError(
                f"{option}: matchLabels[{key!r}] must be a string")
        _check_value(value, f"{option}: matchLabels[{key!r}]")
    return tuple(sorted(raw.items()))


def _match_expressions(raw: Any, option: str) -> tuple[Requirement, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise NamespaceSelectorError(f"{option}: matchExpressions must be a list")
    requirements = []
    for i, item in enumerate(raw):
        where = f"{option}: matchExpressions[{i}]"
        if not isinstance(item, dict):
            raise NamespaceSelectorError(f"{where} must be an object")
        unknown = sorted(set(item) - {"key", "operator", "values"})
        if unknown:
            raise NamespaceSelectorError(f"{where}: unknown field {unknown[0]!r}")
        key, operator, values = item.get("key"), item.get("operator"), item.get("values")
        if not isinstance(key, str):
            raise NamespaceSelectorError(f"{where}.key is missing or not a string")
        _check_key(key, f"{where}.key")
        if operator not in OPERATORS:
            raise NamespaceSelectorError(
                f"{where}.operator must be one of {', '.join(OPERATORS)}")
        if values is None:
            values = []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise NamespaceSelectorError(f"{where}.values must be a list of strings")
        if operator in ("In", "NotIn") and not values:
            raise NamespaceSelectorError(f"{where}.values must be non-empty for {operator}")
        if operator in ("Exists", "DoesNotExist") and values:
            raise NamespaceSelectorError(f"{where}.values must be empty for {operator}")
        for value in values:
            _check_value(value, f"{where}.values")
        requirements.append(Requirement(key, operator, frozenset(values)))
    return tuple(requirements)


def _check_key(key: str, where: str) -> None:
    """A qualified name: an optional DNS subdomain prefix and ``/``, then a name of at most
    63 characters (what the API server validates on a LabelSelector)."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _SUBDOMAIN.match(prefix)):
        raise NamespaceSelectorError(f"{where}: {key!r} is not a valid label key (prefix)")
    if not name or len(name) > 63 or not _NAME.match(name):
        raise NamespaceSelectorError(f"{where}: {key!r} is not a valid label key")


def _check_value(value: str, where: str) -> None:
    if value and (len(value) > 63 or not _NAME.match(value)):
        raise NamespaceSelectorError(f"{where}: {value!r} is not a valid label value")
