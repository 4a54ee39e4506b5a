"""cel-go's extension libraries the policies may call (strings, math, lists, encoders, and
``bool``/``min``/``max``/``sum``), as Python functions: the same functions, with the same
meaning, edgewarden bound from ``cel.stdlib`` while the Rust binding evaluated CEL.

A method ``x.f(a)`` calls ``f(x, a)``. A function raises a plain Python error on an
argument it does not take; expression.py turns that into a message naming the function and
the argument types only. Kubernetes' libraries (webhook/policy/cel/library) replace some of
these names with Kubernetes' meaning (min, max, sum, indexOf, lastIndexOf on lists).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from webhook.policy.cel.runtime.values import INT_MIN, NONE, Optional, UInt, no_overload

# String spellings cel-go accepts for bool().
_TRUE = frozenset({"1", "t", "true", "TRUE", "True"})
_FALSE = frozenset({"0", "f", "false", "FALSE", "False"})


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
    raise ValueError("not a bool")


def _arguments(args: tuple[Any, ...]) -> list[Any]:
    """One list argument, or several scalars."""
    if len(args) == 1 and isinstance(args[0], list | tuple):
        return list(args[0])
    return list(args)


def _numbers(args: tuple[Any, ...]) -> list[Any]:
    items = _arguments(args)
    if not items:
        raise ValueError("at least one argument is required")
    return items


def greatest(*args: Any) -> Any:
    return max(_numbers(args))


def least(*args: Any) -> Any:
    return min(_numbers(args))


def total(*args: Any) -> Any:
    items = _arguments(args)
    if not items:
        return 0
    if any(isinstance(item, bool) for item in items):
        raise TypeError("sum() takes no bools")
    if all(isinstance(item, timedelta) for item in items):
        return sum(items, timedelta())
    if not all(isinstance(item, int | float) for item in items):
        raise TypeError("sum() takes numbers or durations")
    return sum(items)


# -- strings ------------------------------------------------------------------------------------


def _integer(value: Any) -> int:
    """An int argument: a Python bool is an int, CEL's is not."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("an int argument is required")
    return value


def _double(value: Any) -> float:
    if not isinstance(value, float):
        raise TypeError("a double argument is required")
    return value


def char_at(text: str, index: int) -> str:
    index = _integer(index)
    if index == len(text):
        return ""
    if index < 0 or index > len(text):
        raise IndexError("charAt: index out of range")
    return text[index]


def index_of(text: str, sub: str, offset: int = 0) -> int:
    if offset < 0 or offset > len(text):
        raise IndexError("indexOf: offset out of range")
    return text.find(sub, offset)


def last_index_of(text: str, sub: str, offset: int | None = None) -> int:
    if offset is None:
        return text.rfind(sub)
    if offset < 0 or offset > len(text):
        raise IndexError("lastIndexOf: offset out of range")
    return text.rfind(sub, 0, offset + len(sub))


def substring(text: str, start: int, end: int | None = None) -> str:
    start = _integer(start)
    end = len(text) if end is None else _integer(end)
    if start < 0 or end > len(text) or start > end:
        raise IndexError("substring: out of range")
    return text[start:end]


def replace(text: str, old: str, new: str, limit: int = -1) -> str:
    return text.replace(old, new) if limit < 0 else text.replace(old, new, limit)


def split(text: str, separator: str, limit: int | None = None) -> list[str]:
    if separator == "":  # cel-go splits into characters; Python's split refuses ""
        chars = list(text)
        if limit is None or limit < 0 or limit >= len(chars):
            return chars
        if limit == 0:
            return []
        return [*chars[: limit - 1], "".join(chars[limit - 1 :])]
    if limit is None or limit < 0:
        return text.split(separator)
    if limit == 0:
        return []
    return text.split(separator, limit - 1)


def join(items: list[Any], separator: str = "") -> str:
    return separator.join(items)


def lower_ascii(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def upper_ascii(text: str) -> str:
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in text)


def trim(text: str) -> str:
    return text.strip()


_QUOTED = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\x07": "\\a",
           "\x08": "\\b", "\x0c": "\\f", "\x0b": "\\v"}


def quote(text: str) -> str:
    return '"' + "".join(_QUOTED.get(c, c) for c in text) + '"'


def reverse(value: Any) -> Any:
    if isinstance(value, str):
        return value[::-1]
    if isinstance(value, list | tuple):
        return list(value)[::-1]
    raise TypeError("reverse() takes a string or a list")


# -- math ---------------------------------------------------------------------------------------


def absolute(x: Any) -> Any:
    if type(x) is int and x == INT_MIN:
        raise OverflowError("integer overflow")
    return abs(x)


def sign(x: Any) -> Any:
    if isinstance(x, bool):
        raise TypeError("sign() takes a number")
    if isinstance(x, float):
        return 1.0 if x > 0 else -1.0 if x < 0 else 0.0
    return (x > 0) - (x < 0)


def _finite(function: Callable[[float], Any]) -> Callable[[float], float]:
    def rounded(x: float) -> float:
        x = _double(x)  # CEL's math.ceil/floor/round/trunc take a double only
        return x if not math.isfinite(x) else float(function(x))

    return rounded


def _float_test(function: Callable[[float], bool]) -> Callable[[Any], bool]:
    def test(x: Any) -> bool:
        if isinstance(x, bool):
            raise TypeError("a number argument is required")
        return function(x)

    return test


def _half_away_from_zero(x: float) -> float:
    floor = math.floor(x)
    fraction = x - floor
    if fraction < 0.5:
        return float(floor)
    if fraction > 0.5:
        return float(floor + 1)
    return float(floor + 1) if x > 0 else float(floor)


def square_root(x: Any) -> float:
    return math.nan if x < 0 else math.sqrt(x)


_U64 = (1 << 64) - 1


def _wrap(n: int, like: Any = 0) -> int:
    """Two's complement in 64 bits: bit operations wrap as CEL's int64 does (a uint stays
    a uint, within 64 bits)."""
    n &= _U64
    if isinstance(like, UInt):
        return UInt(n)
    return n - (1 << 64) if n >= (1 << 63) else n


def shift_left(a: int, n: int) -> int:
    if n < 0:
        raise ValueError("negative shift")
    return 0 if n >= 64 else _wrap(a << n)


def shift_right(a: int, n: int) -> int:
    if n < 0:
        raise ValueError("negative shift")
    return 0 if n >= 64 else _wrap((a & _U64) >> n)


# -- encoders and lists -------------------------------------------------------------------------


def base64_encode(data: bytes) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def base64_decode(data: str) -> bytes:
    # cel-go accepts the unpadded form too (it tries RawStdEncoding after StdEncoding).
    if isinstance(data, str) and len(data) % 4:
        data += "=" * (-len(data) % 4)
    return base64.b64decode(data, validate=True)


def distinct(items: list[Any]) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if item not in kept:
            kept.append(item)
    return kept


def flatten(items: list[Any], depth: int = 1) -> list[Any]:
    if depth < 0:
        raise ValueError("flatten: negative depth")
    flat: list[Any] = []
    if depth == 1:  # the common case (`.flatten()`): each list opened once, no stack
        for item in items:
            if isinstance(item, list | tuple):
                flat.extend(item)
            else:
                flat.append(item)
        return flat
    pending: list[tuple[Any, int]] = [(item, depth) for item in reversed(items)]
    while pending:  # iterative: a list may nest as deep as the input allows
        item, left = pending.pop()
        if isinstance(item, list | tuple) and left > 0:
            pending.extend((inner, left - 1) for inner in reversed(item))
        else:
            flat.append(item)
    return flat


def slice_list(items: list[Any], start: int, end: int) -> list[Any]:
    if start < 0 or end > len(items) or start > end:
        raise IndexError("slice: out of range")
    return items[start:end]


_ORDERED = (int, float, str, bytes, timedelta, datetime)


def sort(items: list[Any]) -> list[Any]:
    # CEL orders numbers, strings, bytes, bools, durations and timestamps, one kind a list.
    if not all(isinstance(item, _ORDERED) for item in items):
        raise TypeError("sort() takes a list of comparable values")
    return sorted(items)


def lists_range(count: Any) -> list[int]:
    count = _integer(count)
    if not 0 <= count <= _MAX_RANGE:
        raise ValueError("lists.range() count out of range")
    return list(range(count))


_MAX_RANGE = 1_000_000  # cel-go's lists.range refuses more


def first(items: Any) -> Optional:
    if not isinstance(items, list | tuple):
        raise no_overload("first")
    return Optional.of(items[0]) if items else NONE


def last(items: Any) -> Optional:
    if not isinstance(items, list | tuple):
        raise no_overload("last")
    return Optional.of(items[-1]) if items else NONE


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "bool": to_bool,
    "min": least,
    "max": greatest,
    "sum": total,
    "charAt": char_at,
    "indexOf": index_of,
    "lastIndexOf": last_index_of,
    "substring": substring,
    "replace": replace,
    "split": split,
    "join": join,
    "lowerAscii": lower_ascii,
    "upperAscii": upper_ascii,
    "trim": trim,
    "reverse": reverse,
    "strings.quote": quote,
    "math.greatest": greatest,
    "math.least": least,
    "math.abs": absolute,
    "math.sign": sign,
    "math.ceil": _finite(math.ceil),
    "math.floor": _finite(math.floor),
    "math.round": _finite(_half_away_from_zero),
    "math.trunc": _finite(math.trunc),
    "math.isNaN": _float_test(math.isnan),
    "math.isInf": _float_test(math.isinf),
    "math.isFinite": _float_test(math.isfinite),
    "math.sqrt": square_root,
    "math.bitOr": lambda a, b: _wrap(a | b, a),
    "math.bitAnd": lambda a, b: _wrap(a & b, a),
    "math.bitXor": lambda a, b: _wrap(a ^ b, a),
    "math.bitNot": lambda a: _wrap(~a, a),
    "math.bitShiftLeft": shift_left,
    "math.bitShiftRight": shift_right,
    "base64.encode": base64_encode,
    "base64.decode": base64_decode,
    "distinct": distinct,
    "flatten": flatten,
    "slice": slice_list,
    "sort": sort,
    "first": first,
    "last": last,
    "lists.range": lists_range,
}
"""Each function by the name CEL calls it (``sets.*`` are edgewarden's, functions.py)."""
