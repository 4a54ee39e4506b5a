"""CEL functions edgewarden provides itself, beside cel-go's extensions (runtime/extensions.py).

The Rust binding edgewarden evaluated with before ran ``map`` and ``filter`` in time
quadratic in their result; these functions do the per-element work with hashing (the
closures are linear, and these stay for the lookups):

- ``sets.contains``, ``sets.equivalent``, ``sets.intersects``: Kubernetes' sets library,
  with hashed lookups (a scan would compare every element with the second list);
- ``sets.of(list)``: the elements as a map to true, so ``x in`` it is a lookup.

``sets.of`` is edgewarden's own: Kubernetes' CEL has no way to build a map from a list, so a
policy using it does not run in a ValidatingAdmissionPolicy as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any


def _members(items: list[Any]) -> tuple[set[Any], list[Any]]:
    """Hashable elements as a set; the others (maps, lists) kept for a scan."""
    hashed: set[Any] = set()
    others: list[Any] = []
    for item in items:
        if isinstance(item, Hashable):
            hashed.add(item)
        else:
            others.append(item)
    return hashed, others


def _within(item: Any, hashed: set[Any], others: list[Any]) -> bool:
    return item in hashed if isinstance(item, Hashable) else item in others


def _list(value: Any, function: str) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"{function}() takes lists, not {type(value).__name__}")
    return value


def sets_contains(container: list[Any], sublist: list[Any]) -> bool:
    """Whether every element of ``sublist`` is in ``container``."""
    hashed, others = _members(_list(container, "sets.contains"))
    return all(_within(item, hashed, others) for item in _list(sublist, "sets.contains"))


def sets_equivalent(first: list[Any], second: list[Any]) -> bool:
    """Whether both lists hold the same elements (duplicates and order aside)."""
    return sets_contains(first, second) and sets_contains(second, first)


def sets_intersects(first: list[Any], second: list[Any]) -> bool:
    """Whether the lists share an element."""
    hashed, others = _members(_list(first, "sets.intersects"))
    return any(_within(item, hashed, others) for item in _list(second, "sets.intersects"))


def set_of(items: list[Any]) -> dict[Any, bool]:
    """``sets.of(list)``: the list's elements as a map to true."""
    return dict.fromkeys(_list(items, "sets.of"), True)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sets.contains": sets_contains,
    "sets.equivalent": sets_equivalent,
    "sets.intersects": sets_intersects,
    "sets.of": set_of,
}
