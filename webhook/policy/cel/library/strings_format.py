"""cel-go's ``string.format(list)`` (the strings extension, version 2, which Kubernetes
enables): ``%s %d %f %e %b %x %X %o`` and ``%%``, an optional precision (``%.2f``), with
cel-go's rendering of each type (ext/formatting.go) and its error messages."""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Callable
from typing import Any

from webhook.policy.cel.library.errors import LibraryError, no_such_overload
from webhook.policy.cel.runtime.text import go_float as _go_float
from webhook.policy.cel.runtime.values import CelType

_DEFAULT_PRECISION = 6
_SUPERSCRIPT = dict(zip("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹", strict=True))


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    return {str: "string", bytes: "bytes", list: "list", dict: "map",
            type(None): "null_type"}.get(type(value), "dyn")


def _string(value: Any) -> str:
    """``%s``: what ``string(x)`` gives, lists and maps as CEL literals."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return "[" + ", ".join(_member(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = sorted((_member(key), _member(item)) for key, item in value.items())
        return "{" + ", ".join(f"{key}:{item}" for key, item in pairs) + "}"
    if isinstance(value, datetime.timedelta):
        return f"{value.total_seconds():g}s"
    if isinstance(value, CelType):
        return value.name
    raise LibraryError("error during formatting: string clause can only be used on strings, "
                       "bools, bytes, ints, doubles, maps, lists, types, durations, and "
                       f"timestamps, was given {_type_name(value)}")


def _member(value: Any) -> str:
    """A list element or map entry: strings quoted, doubles with six decimals."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes):
        return "b" + json.dumps(value.decode("utf-8", errors="replace"), ensure_ascii=False)
    if isinstance(value, float):
        text = f"{value:.{_DEFAULT_PRECISION}f}"
        if math.isinf(value) or math.isnan(value):
            return json.dumps({"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}[text])
        return text
    return _string(value)


def _integer(value: Any, clause: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LibraryError(f"error during formatting: {clause}, was given {_type_name(value)}")
    return value


def _clause(kind: str, precision: int | None, value: Any) -> str:
    if kind == "s":
        return _string(value)
    if kind == "d":
        return str(_integer(value, "decimal clause can only be used on integers"))
    if kind in ("f", "e"):
        what = "fixed-point" if kind == "f" else "scientific"
        if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
            value = float(value.replace("Infinity", "inf"))
        if not isinstance(value, float):
            raise LibraryError(f"error during formatting: {what} clause can only be used on "
                               f"doubles, was given {_type_name(value)}")
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if kind == "f":  # golang.org/x/text's printer: grouped thousands
            digits = _DEFAULT_PRECISION if precision is None else precision
            return f"{value:,.{digits}f}"
        # cel-go passes the precision as a width ("%6e"), so six decimals always; the
        # printer writes the exponent as a power of ten in superscript digits.
        mantissa, _, power = f"{value:.{_DEFAULT_PRECISION}e}".partition("e")
        exponent = int(power)
        raised = "".join(_SUPERSCRIPT[d] for d in f"{abs(exponent):02d}")
        written = f"{mantissa}\u00d710{'⁻' if exponent < 0 else ''}{raised}"  # times ten to the
        return written.rjust(precision or 0)
    if kind == "b":
        if isinstance(value, bool):
            return "1" if value else "0"
        number = _integer(value, "only integers and bools can be formatted as binary")
        return format(number, "b")
    if kind in ("x", "X"):
        if isinstance(value, str):
            value = value.encode()
        if isinstance(value, bytes):
            text = value.hex()
        else:
            text = format(_integer(value, "only integers, byte buffers, and strings can be "
                                          "formatted as hex"), "x")
        return text.upper() if kind == "X" else text
    number = _integer(value, "octal clause can only be used on integers")
    return format(number, "o")


_CLAUSE = re.compile(r"(?:\.([0-9]*))?(.)", re.S)


def string_format(template: Any, args: Any) -> str:
    if not isinstance(template, str) or not isinstance(args, list):
        raise no_such_overload("format")
    built: list[str] = []
    position = 0
    used = 0
    while position < len(template):
        char = template[position]
        if char != "%":
            built.append(char)
            position += 1
            continue
        if template[position + 1:position + 2] == "%":
            built.append("%")
            position += 2
            continue
        if used >= len(args):
            raise LibraryError(f"index {used} out of range")
        if position + 1 >= len(template):
            raise LibraryError("unexpected end of string")
        matched = _CLAUSE.match(template, position + 1)
        if matched is None or (matched.group(1) is not None and matched.end() > len(template)):
            raise LibraryError("could not parse formatting clause: could not find end of "
                               "precision specifier")
        precision_text, kind = matched.groups()
        if kind not in "sdfebxXo":
            raise LibraryError("could not parse formatting clause: unrecognized formatting "
                               f"clause \"{kind}\"")
        precision = int(precision_text) if precision_text else (
            0 if precision_text == "" else None)
        built.append(_clause(kind, precision, args[used]))
        used += 1
        position = matched.end()
    return "".join(built)


# A value of each kind, for checking a literal template against its arguments' types.
_SAMPLES = {"int": 0, "uint": 0, "double": 0.5, "string": "", "bytes": b"", "bool": False,
            "null": None, "list": [], "map": {}}


def template_problem(template: str, kinds: list[str | None]) -> str | None:
    """What cel-go's compile-time check says of ``template.format([...])`` with arguments of
    these kinds (None: unknown, never an error), or None when it fits."""
    samples = [_SAMPLES.get(kind or "", _Unknown()) for kind in kinds]
    try:
        _check(template, samples)
    except LibraryError as error:
        return str(error)
    return None


class _Unknown:
    """An argument of a type the checker does not know: any clause takes it."""


def _check(template: str, samples: list[Any]) -> None:
    position = 0
    used = 0
    while position < len(template):
        if template[position] != "%":
            position += 1
            continue
        if template[position + 1:position + 2] == "%":
            position += 2
            continue
        if used >= len(samples):
            raise LibraryError(f"index {used} out of range")
        if position + 1 >= len(template):
            raise LibraryError("unexpected end of string")
        matched = _CLAUSE.match(template, position + 1)
        assert matched is not None
        if matched.group(2) not in "sdfebxXo":
            raise LibraryError("could not parse formatting clause: unrecognized formatting "
                               f"clause \"{matched.group(2)}\"")
        if not isinstance(samples[used], _Unknown):
            _clause(matched.group(2), None, samples[used])
        used += 1
        position = matched.end()


FUNCTIONS: dict[str, Callable[..., Any]] = {"format": string_format}
