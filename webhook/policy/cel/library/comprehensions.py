"""What the two-variable comprehensions are rewritten into (webhook/policy/cel/
optional_syntax.py): the pairs of a list or map, and building a map back from pairs or
single-entry maps, with cel-go's error for a key made twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webhook.policy.cel.library.errors import LibraryError, no_such_overload


def pairs(value: Any) -> list[list[Any]]:
    """``[index, element]`` for a list, ``[key, value]`` for a map."""
    if isinstance(value, list):
        return [[index, item] for index, item in enumerate(value)]
    if isinstance(value, dict):
        return [[key, item] for key, item in value.items()]
    raise no_such_overload("_pairs")


def pairs_to_map(items: Any) -> dict[Any, Any]:
    if not isinstance(items, list):
        raise no_such_overload("transformMap")
    return {key: value for key, value in items}


def merge_entries(entries: Any) -> dict[Any, Any]:
    """transformMapEntry: the single-entry maps merged; a key made twice is an error."""
    if not isinstance(entries, list):
        raise no_such_overload("transformMapEntry")
    merged: dict[Any, Any] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise no_such_overload("transformMapEntry")
        for key, value in entry.items():
            if key in merged:
                raise LibraryError("insert failed: key already exists")
            merged[key] = value
    return merged


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "_pairs": pairs,
    "_pairs_to_map": pairs_to_map,
    "_merge_entries": merge_entries,
}
