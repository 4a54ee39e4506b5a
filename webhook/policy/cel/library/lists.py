"""Kubernetes' lists library (isSorted, sum, min, max, indexOf, lastIndexOf;
its version 1 ``includes`` is not offered: the API server compiles new expressions for
the previous minor version's environment, which lacks it) and
the list forms of names cel-go's strings extension also uses (indexOf, lastIndexOf)."""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable
from typing import Any

from webhook.policy.cel.library.errors import LibraryError, no_such_overload
from webhook.policy.cel.runtime import extensions

_COMPARABLE = (bool, int, float, str, bytes, datetime.timedelta, datetime.datetime)


def _list(value: Any, function: str) -> list[Any]:
    if not isinstance(value, list):
        raise no_such_overload(function)
    return value


def _comparable(items: list[Any], function: str) -> None:
    kinds = {type(item) for item in items}
    if not all(issubclass(kind, _COMPARABLE) for kind in kinds):
        raise no_such_overload(function)
    numeric = {bool} if bool in kinds else {int, float}
    if len(kinds) > 1 and not kinds <= numeric:
        raise no_such_overload(function)


def is_sorted(items: list[Any]) -> bool:
    values = _list(items, "isSorted")
    _comparable(values, "isSorted")
    return all(a <= b for a, b in itertools.pairwise(values))


def total(items: list[Any]) -> Any:
    values = _list(items, "sum")
    if not values:
        return 0  # Kubernetes' sum of an empty list is the int zero
    if any(isinstance(v, bool) or not isinstance(v, int | float | datetime.timedelta)
           for v in values):
        raise no_such_overload("sum")
    result = values[0]
    for value in values[1:]:
        if type(value) is not type(result):  # CEL adds only values of one type
            raise no_such_overload("sum")
        result = result + value
    if isinstance(result, int) and not -(2**63) <= result < 2**63:
        raise LibraryError("integer overflow")
    return result


def _extreme(name: str, pick: Callable[[Any, Any], bool]) -> Callable[..., Any]:
    def extreme(items: Any, *more: Any) -> Any:
        if more or not isinstance(items, list):  # math.least-style calls are not Kubernetes'
            raise no_such_overload(name)
        if not items:
            raise LibraryError(f"{name} called on empty list")
        _comparable(items, name)
        best = items[0]
        for item in items[1:]:
            if pick(item, best):
                best = item
        return best

    extreme.__name__ = name
    return extreme


_STRING_INDEX_OF = extensions.index_of
_STRING_LAST_INDEX_OF = extensions.last_index_of


def _same(a: Any, b: Any) -> bool:
    # CEL equality: numbers across int/double compare by value, bool is no number.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def index_of(target: Any, *args: Any) -> Any:
    """``list.indexOf(x)`` (Kubernetes' lists) or ``string.indexOf(s[, from])`` (strings)."""
    if isinstance(target, list):
        if len(args) != 1:
            raise no_such_overload("indexOf")
        return next((i for i, item in enumerate(target) if _same(item, args[0])), -1)
    return _STRING_INDEX_OF(target, *args)


def last_index_of(target: Any, *args: Any) -> Any:
    if isinstance(target, list):
        if len(args) != 1:
            raise no_such_overload("lastIndexOf")
        found = [i for i, item in enumerate(target) if _same(item, args[0])]
        return found[-1] if found else -1
    return _STRING_LAST_INDEX_OF(target, *args)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "isSorted": is_sorted,
    "sum": total,
    "min": _extreme("min", lambda a, b: a < b),
    "max": _extreme("max", lambda a, b: a > b),
    "indexOf": index_of,
    "lastIndexOf": last_index_of,
}
