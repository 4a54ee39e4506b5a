"""The optional-field syntax (``a.?b``, ``a[?k]``), which the Rust evaluator does not parse:
the syntax rewrite (webhook/policy/cel/optional_syntax.py) turns each into a call of these.

``a.?b`` is ``optional.of(a.b)`` when ``a`` has ``b``, else ``optional.none()``; on an
optional ``a`` it is none when ``a`` is, and the same selection on its value otherwise.
``a[?k]`` is the same for a map key or a list index in range."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webhook.policy.cel.library.errors import no_such_overload
from webhook.policy.cel.runtime.values import NONE, Optional


def _unwrap(value: Any) -> tuple[bool, Any]:
    if isinstance(value, Optional):
        return (True, value.value) if value.present else (False, None)
    return True, value


def select(operand: Any, name: Any) -> Optional:
    present, value = _unwrap(operand)
    if not present:
        return NONE
    if not isinstance(value, dict):
        raise no_such_overload("_?._")
    if name in value:
        return Optional.of(value[name])
    return NONE


def index(operand: Any, key: Any) -> Optional:
    present, value = _unwrap(operand)
    if not present:
        return NONE
    if isinstance(value, list):
        if isinstance(key, bool) or not isinstance(key, int | float) or key != int(key):
            raise no_such_overload("_[?_]")
        position = int(key)
        if 0 <= position < len(value):
            return Optional.of(value[position])
        return NONE
    if isinstance(value, dict):
        if key not in value:
            return NONE
        if isinstance(key, bool | int):  # Python's True == 1; CEL's bool is no int key
            stored = next(k for k in value if k == key)
            if isinstance(stored, bool) != isinstance(key, bool):
                return NONE
        return Optional.of(value[key])
    raise no_such_overload("_[?_]")


def _same_key(first: Any, second: Any) -> bool:
    return first == second and isinstance(first, bool) == isinstance(second, bool)


def _kept(value: Any, function: str) -> tuple[bool, Any]:
    if not isinstance(value, Optional):
        raise no_such_overload(function)
    return (True, value.value) if value.present else (False, None)


def elements(items: Any, positions: Any) -> list[Any]:
    """``[a, ?b]``: the list without the optional elements that are none."""
    if not isinstance(items, list) or not isinstance(positions, list):
        raise no_such_overload("_optional_elements")
    flagged = set(positions)
    built = []
    for position, item in enumerate(items):
        if position in flagged:
            present, item = _kept(item, "_optional_elements")
            if not present:
                continue
        built.append(item)
    return built


def entries(mapping: Any, keys: Any) -> dict[Any, Any]:
    """``{?k: v}``: the map without the optional entries whose value is none."""
    if not isinstance(mapping, dict) or not isinstance(keys, list):
        raise no_such_overload("_optional_entries")
    built = {}
    for key, value in mapping.items():
        if any(_same_key(key, flagged) for flagged in keys):
            present, value = _kept(value, "_optional_entries")
            if not present:
                continue
        built[key] = value
    return built


FUNCTIONS: dict[str, Callable[..., Any]] = {"_optional_select": select,
                                            "_optional_index": index,
                                            "_optional_elements": elements,
                                            "_optional_entries": entries}
