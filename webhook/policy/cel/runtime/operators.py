"""CEL's operators with their exact semantics: heterogeneous equality (numbers compare by
value across int, uint and double; other kinds by type), int64/uint64 overflow errors,
division and modulo truncating toward zero, and no implicit conversion elsewhere."""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Mapping
from typing import Any

from webhook.policy.cel.runtime.values import (
    INT_MAX,
    INT_MIN,
    NONE,
    CelError,
    MissingKey,
    Optional,
    UInt,
    check_int,
    check_uint,
    no_overload,
    overflow,
    short_name,
)

_NUMBERS = (int, float)
# Timestamps are bounded to years 1..9999 in CEL; durations to about 10,000 years.
_MAX_DURATION = datetime.timedelta(seconds=315576000000)


def is_number(value: Any) -> bool:
    return isinstance(value, _NUMBERS) and not isinstance(value, bool)


def equal(a: Any, b: Any) -> bool:
    """CEL's ``==``: never an error, false across unrelated types."""
    ta, tb = type(a), type(b)
    if ta is tb and (ta is str or ta is int or ta is bool):
        return bool(a == b)
    if is_number(a):
        return is_number(b) and bool(a == b)
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if isinstance(a, str):
        return isinstance(b, str) and bool(a == b)
    if isinstance(a, list | tuple):
        if not isinstance(b, list | tuple) or len(a) != len(b):
            return False
        return all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping):
        if not isinstance(b, Mapping) or len(a) != len(b):
            return False
        for key, value in a.items():
            found, other = _lookup(b, key)
            if not found or not equal(value, other):
                return False
        return True
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bytes):
        return isinstance(b, bytes) and a == b
    if isinstance(a, datetime.datetime):
        return isinstance(b, datetime.datetime) and a == b
    if isinstance(a, datetime.timedelta):
        return isinstance(b, datetime.timedelta) and a == b
    if isinstance(a, Optional):
        if not isinstance(b, Optional) or a.present != b.present:
            return False
        return not a.present or equal(a.value, b.value)
    return type(a) is type(b) and bool(a == b)


def _lookup(mapping: Mapping[Any, Any], key: Any) -> tuple[bool, Any]:
    """A map entry by CEL key equality: 1, 1u and 1.0 name the same key; true is no 1."""
    if isinstance(key, float):
        if not key.is_integer():
            return False, None
        key = int(key)
    elif not isinstance(key, str | int):
        return False, None
    try:
        value = mapping[key]
    except (KeyError, TypeError):
        return False, None
    if type(key) is not str:
        # Python finds True under 1 and 1 under True: CEL's bool and int keys are distinct.
        stored = next(k for k in mapping if type(k) is not str and k == key)
        if isinstance(stored, bool) != isinstance(key, bool):
            return False, None
    return True, value


def get_key(mapping: Mapping[Any, Any], key: Any) -> Any:
    """``map[key]``: the value, or CEL's no-such-key error."""
    if type(key) is str:
        try:
            return mapping[key]
        except KeyError:
            raise MissingKey(key) from None
    found, value = _lookup(mapping, key)
    if not found:
        raise MissingKey(key)
    return value


def contains(item: Any, container: Any) -> bool:
    """``item in container``."""
    if type(container) is dict and type(item) is str:
        return item in container  # only a str key equals a str: as _lookup finds it
    if isinstance(container, list | tuple):
        if type(item) is str:
            return any((type(x) is str and x == item) or (type(x) is not str and equal(item, x))
                       for x in container)
        return any(equal(item, x) for x in container)
    if isinstance(container, Mapping):
        return _lookup(container, item)[0]
    raise no_overload(f"{short_name(item)} in {short_name(container)}")


def index(value: Any, key: Any) -> Any:
    """``value[key]``: a list position or a map key; on an optional, an optional (none
    when it is none or lacks the entry), as cel-go's optional chaining."""
    if isinstance(value, Optional):
        if not value.present:
            return NONE
        try:
            return Optional.of(index(value.value, key))
        except MissingKey:
            return NONE
        except CelError as error:
            if error.message == "index out of range":
                return NONE
            raise
    if isinstance(value, list | tuple):
        if isinstance(key, bool) or not is_number(key):
            raise no_overload(f"{short_name(value)}[{short_name(key)}]")
        if isinstance(key, float):
            if not key.is_integer():
                raise CelError("invalid list index: not an integral value")
            key = int(key)
        if not 0 <= key < len(value):
            raise CelError("index out of range")
        return value[key]
    if isinstance(value, Mapping):
        return get_key(value, key)
    raise no_overload(f"{short_name(value)}[{short_name(key)}]")


def select(value: Any, name: str) -> Any:
    """``value.name``: a map's key (a JSON object's field); on an optional, an optional
    (none when it is none or lacks the field), as cel-go's optional chaining."""
    if isinstance(value, Mapping):
        try:
            return value[name]
        except KeyError:
            raise MissingKey(name) from None
    if isinstance(value, Optional):
        if not value.present:
            return NONE
        inner = value.value
        if isinstance(inner, Mapping):
            return Optional.of(inner[name]) if name in inner else NONE
    raise CelError(f"no such field: {name} on {short_name(value)}")


def has(value: Any, name: str) -> bool:
    """``has(value.name)``: whether the map holds the key (an optional: its value does)."""
    if isinstance(value, Mapping):
        return name in value
    if isinstance(value, Optional):
        return value.present and has(value.value, name)
    raise CelError(f"no such overload: has() on {short_name(value)}")


def compare(op: str, a: Any, b: Any) -> int:
    """-1, 0 or 1 for ``<`` ``<=`` ``>`` ``>=``; an error across unrelated types."""
    if is_number(a) and is_number(b):
        if type(a) is float or type(b) is float:
            # As cel-go: an int or uint against a double compares as doubles.
            a, b = float(a), float(b)
            if math.isnan(a) or math.isnan(b):
                return 2  # NaN: every ordering is false
        return -1 if a < b else 1 if a > b else 0
    ta, tb = type(a), type(b)
    if (ta is tb and ta in (str, bytes, bool)) or (
        isinstance(a, datetime.datetime) and isinstance(b, datetime.datetime)
    ) or (isinstance(a, datetime.timedelta) and isinstance(b, datetime.timedelta)):
        return -1 if a < b else 1 if a > b else 0
    if isinstance(a, str) and isinstance(b, str):
        return -1 if a < b else 1 if a > b else 0
    raise no_overload(f"{short_name(a)} {op} {short_name(b)}")


def _int_pair(a: Any, b: Any) -> int:
    """0: not both integers; 1: both int; 2: both uint; else an error (int with uint)."""
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        return 1
    if ta is UInt and tb is UInt:
        return 2
    return 0


def add(a: Any, b: Any) -> Any:
    kind = _int_pair(a, b)
    if kind == 1:
        result = a + b
        if INT_MIN <= result <= INT_MAX:
            return result
        raise overflow()
    if kind == 2:
        return check_uint(a + b)
    ta, tb = type(a), type(b)
    if ta is float and tb is float:
        return a + b
    if ta is str and tb is str:
        return a + b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return [*a, *b]
    if ta is bytes and tb is bytes:
        return a + b
    if isinstance(a, datetime.timedelta) and isinstance(b, datetime.timedelta):
        return _duration(a + b)
    if isinstance(a, datetime.datetime) and isinstance(b, datetime.timedelta):
        return _timestamp(lambda: a + b)
    if isinstance(a, datetime.timedelta) and isinstance(b, datetime.datetime):
        return _timestamp(lambda: b + a)
    if isinstance(a, str) and isinstance(b, str):
        return str(a) + str(b)
    raise no_overload(f"{short_name(a)} + {short_name(b)}")


def subtract(a: Any, b: Any) -> Any:
    kind = _int_pair(a, b)
    if kind == 1:
        return check_int(a - b)
    if kind == 2:
        return check_uint(a - b)
    if type(a) is float and type(b) is float:
        return a - b
    if isinstance(a, datetime.datetime) and isinstance(b, datetime.datetime):
        return _duration(a - b)
    if isinstance(a, datetime.datetime) and isinstance(b, datetime.timedelta):
        return _timestamp(lambda: a - b)
    if isinstance(a, datetime.timedelta) and isinstance(b, datetime.timedelta):
        return _duration(a - b)
    raise no_overload(f"{short_name(a)} - {short_name(b)}")


def multiply(a: Any, b: Any) -> Any:
    kind = _int_pair(a, b)
    if kind == 1:
        return check_int(a * b)
    if kind == 2:
        return check_uint(a * b)
    if type(a) is float and type(b) is float:
        return a * b
    raise no_overload(f"{short_name(a)} * {short_name(b)}")


def _truncated(a: int, b: int) -> int:
    quotient = abs(a) // abs(b)
    return quotient if (a < 0) == (b < 0) else -quotient


def divide(a: Any, b: Any) -> Any:
    kind = _int_pair(a, b)
    if kind:
        if b == 0:
            raise CelError("division or modulo by zero")
        if kind == 1:
            return check_int(_truncated(a, b))
        return UInt(a // b)
    if type(a) is float and type(b) is float:
        if b == 0.0:
            if a == 0.0 or math.isnan(a):
                return math.nan
            return math.copysign(math.inf, a) * math.copysign(1.0, b)
        return a / b
    raise no_overload(f"{short_name(a)} / {short_name(b)}")


def modulo(a: Any, b: Any) -> Any:
    kind = _int_pair(a, b)
    if kind:
        if b == 0:
            raise CelError("division or modulo by zero")
        if kind == 1:
            return a - b * _truncated(a, b)
        return UInt(a % b)
    raise no_overload(f"{short_name(a)} % {short_name(b)}")


def negate(value: Any) -> Any:
    kind = type(value)
    if kind is int:
        return check_int(-value)
    if kind is float:
        return -value
    if isinstance(value, datetime.timedelta):
        return _duration(-value)
    raise no_overload(f"-{short_name(value)}")


def logical_not(value: Any) -> bool:
    if value is True:
        return False
    if value is False:
        return True
    raise no_overload(f"!{short_name(value)}")


def _duration(value: datetime.timedelta) -> datetime.timedelta:
    if -_MAX_DURATION <= value <= _MAX_DURATION:
        return value
    raise CelError("duration out of range")


def _timestamp(compute: Callable[[], datetime.datetime]) -> datetime.datetime:
    try:
        return compute()
    except OverflowError:
        raise CelError("timestamp out of range") from None


ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "_+_": add,
    "_-_": subtract,
    "_*_": multiply,
    "_/_": divide,
    "_%_": modulo,
}
