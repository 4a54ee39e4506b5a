"""CEL's standard functions: size, the string tests, conversions, type(), timestamps and
durations, and the optional type's functions. The extension libraries (strings, lists,
math, sets, Kubernetes') are Python functions bound beside these (expression.py)."""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from webhook.policy.cel.runtime.text import compile_pattern, go_float
from webhook.policy.cel.runtime.values import (
    INT_MAX,
    INT_MIN,
    NONE,
    TYPES,
    UINT_MAX,
    CelError,
    CelType,
    Optional,
    UInt,
    check_int,
    no_overload,
    overflow,
    short_name,
    type_name,
)

_UTC = datetime.UTC
_MIN_TIME = datetime.datetime(1, 1, 1, tzinfo=_UTC)
_MAX_TIME = datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=_UTC)


def size(value: Any) -> int:
    if isinstance(value, str | bytes | list | tuple | Mapping):
        return len(value)
    raise no_overload(f"size({short_name(value)})")


def _strings(name: str, test: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    def function(target: Any, arg: Any) -> bool:
        if not isinstance(target, str) or not isinstance(arg, str):
            raise no_overload(f"{short_name(target)}.{name}({short_name(arg)})")
        return test(target, arg)

    return function


def matches(text: Any, pattern: Any) -> bool:
    if not isinstance(text, str) or not isinstance(pattern, str):
        raise no_overload(f"{short_name(text)}.matches({short_name(pattern)})")
    try:
        compiled = compile_pattern(pattern)
    except re.error:
        raise CelError("matches() failed: the pattern does not compile") from None
    return compiled.search(text) is not None


def to_int(value: Any) -> int:
    kind = type(value)
    if kind is int:
        return value  # type: ignore[no-any-return]
    if kind is UInt:
        return check_int(int(value))
    if kind is float:
        if math.isnan(value) or not -(2.0**63) < value < 2.0**63:  # cel-go: both ends out
            raise overflow()
        return check_int(int(value))
    if kind is str:
        try:
            return check_int(int(value, 10))
        except ValueError:
            raise CelError("int() failed: the string is not an integer") from None
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() // 1)
    raise no_overload(f"int({short_name(value)})")


def to_uint(value: Any) -> UInt:
    kind = type(value)
    if kind is UInt:
        return value  # type: ignore[no-any-return]
    if kind is int:
        if value < 0:
            raise overflow()
        return UInt(value)
    if kind is float:
        if math.isnan(value) or not -1.0 < value < 2.0**64:
            raise overflow()
        return UInt(int(value))
    if kind is str:
        try:
            parsed = int(value, 10)
        except ValueError:
            raise CelError("uint() failed: the string is not an unsigned integer") from None
        if not 0 <= parsed <= UINT_MAX:
            raise overflow()
        return UInt(parsed)
    raise no_overload(f"uint({short_name(value)})")


_FLOAT = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[iI]nf(?:inity)?|NaN)")


def to_double(value: Any) -> float:
    kind = type(value)
    if kind is float:
        return value  # type: ignore[no-any-return]
    if kind is int or kind is UInt:
        return float(value)
    if kind is str:
        if not _FLOAT.fullmatch(value):
            raise CelError("double() failed: the string is not a number")
        return float(value)
    raise no_overload(f"double({short_name(value)})")


def to_string(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is UInt:
        return str(int(value))
    if kind is float:
        return go_float(value)
    if kind is bytes:
        try:
            return value.decode("utf-8")  # type: ignore[no-any-return]
        except UnicodeDecodeError:
            raise CelError("string() failed: the bytes are not UTF-8") from None
    if isinstance(value, datetime.datetime):
        return format_timestamp(value)
    if isinstance(value, datetime.timedelta):
        return format_duration(value)
    if isinstance(value, str):
        return str(value)
    raise no_overload(f"string({short_name(value)})")


def to_bytes(value: Any) -> bytes:
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise no_overload(f"bytes({short_name(value)})")


def type_of(value: Any) -> CelType:
    return TYPES.get(type_name(value)) or CelType(type_name(value))


def dyn(value: Any) -> Any:
    return value


# -- timestamps and durations ------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)


def timestamp(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value
    if type(value) is int:
        try:
            result = datetime.datetime.fromtimestamp(value, _UTC)
        except (OverflowError, ValueError, OSError):
            raise CelError("timestamp out of range") from None
        return _in_range(result)
    if not isinstance(value, str):
        raise no_overload(f"timestamp({short_name(value)})")
    found = _RFC3339.fullmatch(value)
    if found is None:
        raise CelError("timestamp() failed: the string is not an RFC 3339 timestamp")
    year, month, day, hour, minute, second = (int(found[i]) for i in range(1, 7))
    micros = int((found[7] or "0").ljust(9, "0")[:6])
    zone = found[8]
    try:
        offset = datetime.timedelta(0) if zone in "Zz" else (
            (1 if zone[0] == "+" else -1)
            * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        parsed = datetime.datetime(year, month, day, hour, minute, second, micros,
                                   tzinfo=datetime.timezone(offset))
        return _in_range(parsed.astimezone(_UTC))
    except (ValueError, OverflowError):
        raise CelError("timestamp() failed: the string is not an RFC 3339 timestamp") from None


def _in_range(value: datetime.datetime) -> datetime.datetime:
    if _MIN_TIME <= value <= _MAX_TIME:
        return value
    raise CelError("timestamp out of range")


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NANOS = {"ns": 1, "us": 1000, "µs": 1000, "μs": 1000, "ms": 10**6, "s": 10**9,
               "m": 60 * 10**9, "h": 3600 * 10**9}


def duration(value: Any) -> datetime.timedelta:
    """Go's ``time.ParseDuration``: ``1h30m``, ``1.5s``, ``-300ms``, ``0``."""
    if isinstance(value, datetime.timedelta):
        return value
    if not isinstance(value, str):
        raise no_overload(f"duration({short_name(value)})")
    text = value
    sign = 1
    if text[:1] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return datetime.timedelta(0)
    position, nanos = 0, 0
    if not text:
        raise CelError("duration() failed: the string is not a duration")
    while position < len(text):
        part = _DURATION_PART.match(text, position)
        if part is None:
            raise CelError("duration() failed: the string is not a duration")
        number, unit = part[1], part[2]
        whole, _, fraction = number.partition(".")
        scale = _UNIT_NANOS[unit]
        nanos += int(whole or "0") * scale
        if fraction:
            nanos += int(fraction) * scale // 10 ** len(fraction)
        position = part.end()
    if nanos > 2**63 - 1:
        raise CelError("duration() failed: the duration is out of range")
    return datetime.timedelta(microseconds=sign * nanos // 1000 if sign > 0
                              else -(nanos // 1000))


def format_duration(value: datetime.timedelta) -> str:
    """cel-go's ``string(duration)``: seconds with up to nine decimals, ``1.5s``."""
    micros = (value.days * 86400 + value.seconds) * 10**6 + value.microseconds
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    seconds, fraction = divmod(micros, 10**6)
    if not fraction:
        return f"{sign}{seconds}s"
    return f"{sign}{seconds}.{str(fraction).rjust(6, '0').rstrip('0')}s"


def format_timestamp(value: datetime.datetime) -> str:
    """RFC 3339 in UTC, as cel-go prints a timestamp."""
    value = value.astimezone(_UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += "." + str(value.microsecond).rjust(6, "0").rstrip("0")
    return text + "Z"


def _zone(name: Any) -> datetime.tzinfo:
    if not isinstance(name, str):
        raise no_overload("timestamp getter's time zone")
    found = re.fullmatch(r"([+-]?)(\d{1,2}):(\d{2})", name)
    if found:
        offset = datetime.timedelta(hours=int(found[2]), minutes=int(found[3]))
        return datetime.timezone(-offset if found[1] == "-" else offset)
    try:
        import zoneinfo

        return zoneinfo.ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        raise CelError("time zone not found") from None
    except Exception:
        raise CelError("time zone not found") from None


def _getter(name: str, read: Callable[[datetime.datetime], int],
            of_duration: Callable[[datetime.timedelta], int] | None = None
            ) -> Callable[..., int]:
    def getter(value: Any, zone: Any = None) -> int:
        if isinstance(value, datetime.datetime):
            local = value.astimezone(_UTC if zone is None else _zone(zone))
            return read(local)
        if of_duration is not None and isinstance(value, datetime.timedelta) and zone is None:
            return of_duration(value)
        raise no_overload(f"{short_name(value)}.{name}()")

    return getter


def _total_micros(value: datetime.timedelta) -> int:
    return (value.days * 86400 + value.seconds) * 10**6 + value.microseconds


def _towards_zero(micros: int, unit: int) -> int:
    return micros // unit if micros >= 0 else -(-micros // unit)


TIME_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "getFullYear": _getter("getFullYear", lambda t: t.year),
    "getMonth": _getter("getMonth", lambda t: t.month - 1),
    "getDate": _getter("getDate", lambda t: t.day),
    "getDayOfMonth": _getter("getDayOfMonth", lambda t: t.day - 1),
    "getDayOfWeek": _getter("getDayOfWeek", lambda t: (t.weekday() + 1) % 7),
    "getDayOfYear": _getter("getDayOfYear", lambda t: t.timetuple().tm_yday - 1),
    "getHours": _getter("getHours", lambda t: t.hour,
                        lambda d: _towards_zero(_total_micros(d), 3600 * 10**6)),
    "getMinutes": _getter("getMinutes", lambda t: t.minute,
                          lambda d: _towards_zero(_total_micros(d), 60 * 10**6)),
    "getSeconds": _getter("getSeconds", lambda t: t.second,
                          lambda d: _towards_zero(_total_micros(d), 10**6)),
    "getMilliseconds": _getter("getMilliseconds", lambda t: t.microsecond // 1000,
                               lambda d: _towards_zero(_total_micros(d), 1000) % 1000
                               if _total_micros(d) >= 0
                               else -(_towards_zero(-_total_micros(d), 1000) % 1000)),
}


# -- optionals ---------------------------------------------------------------------------------


def _optional(value: Any, name: str) -> Optional:
    if not isinstance(value, Optional):
        raise no_overload(f"{short_name(value)}.{name}()")
    return value


def optional_value(value: Any) -> Any:
    found = _optional(value, "value")
    if not found.present:
        raise CelError("optional.none() dereference")
    return found.value


def optional_or_value(value: Any, default: Any) -> Any:
    found = _optional(value, "orValue")
    return found.value if found.present else default


def optional_or(value: Any, other: Any) -> Optional:
    found = _optional(value, "or")
    if found.present:
        return found
    return _optional(other, "or")


def of_non_zero(value: Any) -> Optional:
    zero = value is None or value is False or (
        type(value) in (int, UInt, float) and value == 0
    ) or (isinstance(value, str | bytes | list | tuple | Mapping) and len(value) == 0)
    return NONE if zero else Optional.of(value)


BUILTINS: dict[str, Callable[..., Any]] = {
    "size": size,
    "contains": _strings("contains", lambda a, b: b in a),
    "startsWith": _strings("startsWith", str.startswith),
    "endsWith": _strings("endsWith", str.endswith),
    "matches": matches,
    "int": to_int,
    "uint": to_uint,
    "double": to_double,
    "string": to_string,
    "bytes": to_bytes,
    "type": type_of,
    "dyn": dyn,
    "timestamp": timestamp,
    "duration": duration,
    "optional.of": Optional.of,
    "optional.ofNonZeroValue": of_non_zero,
    "optional.none": Optional.none,
    "hasValue": lambda value: _optional(value, "hasValue").present,
    "value": optional_value,
    "orValue": optional_or_value,
    "or": optional_or,
    **TIME_FUNCTIONS,
}
"""Each function by the name CEL calls it; a method ``x.f(a)`` calls ``f(x, a)``."""

__all__ = ["BUILTINS", "INT_MAX", "INT_MIN"]
